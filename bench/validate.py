"""Validation of PSNMF against its baselines on simulated spectrum images with known truth.

One command::

    python bench/validate.py            # 3 phantoms x doses 10, 50, 250 x 3 seeds
    python bench/validate.py --quick    # 1 seed, 64 x 64 images: a smoke run

For every phantom (particles in a matrix, core-shell catalyst, layered lamella), dose and
seed it runs, on the same cube:

* plain Poisson NMF at full resolution (``PoissonNMF``, nndsvda, up to 1000 iterations,
  tol 1e-6: a converged baseline, not a starved one);
* NMF on the binned data only (PSNMF's stage 1, maps upsampled, no stage 2);
* PSNMF with its defaults, and two variants (one stage-1 run; 100 refinement iterations);
* Poisson-weighted PCA denoising (``denoise_pca``), for the reconstruction only;

and scores each against the truth: median spectral angle (Hungarian matching), median map
nRMSE, the worst and mean at% error of the compositions quantified from the spectra
(``psnmf.quantify``, default ``method="fit"``, true lines and k-factors), and the relative
Frobenius error of the reconstruction against the noise-free cube. Medians over seeds go into
``bench/VALIDATION.md`` with the issue's targets checked, and figures of maps and spectra
against the truth for one case per phantom into ``bench/figures/``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PHANTOMS = ("particles_in_matrix", "core_shell_catalyst", "layered_lamella")
DOSES = (10.0, 50.0, 250.0)
METHODS = (
    "NMF (full resolution)",
    "NMF (binned only)",
    "PSNMF (defaults)",
    "PSNMF, n_init=1",
    "PSNMF, refine_iter=100",
    "PCA (Poisson-weighted)",
)
METRICS = ("angle", "nrmse", "at_max", "at_mean", "recon", "seconds")


def _factors_of(model_spectra, model_maps):
    """Normalised spectra (k, C) and maps (k, ny, nx) in counts."""
    totals = model_spectra.sum(axis=1)
    totals[totals == 0] = 1.0
    return model_spectra / totals[:, None], model_maps * totals[:, None, None]


def _score(data, spectra, maps):
    from psnmf import metrics, quantify

    order = metrics.match_components(data.spectra, spectra)
    angles = metrics.spectral_angles(data.spectra, spectra, order)
    nrmse = metrics.map_nrmse(data.maps, maps, order)
    counts = maps[order].reshape(len(order), -1).sum(axis=1)
    result = quantify(
        spectra[order],
        data.energy,
        list(data.lines),
        data.k_factors,
        counts=counts,
        beam_energy=data.beam_energy,
        fwhm_mnka=data.fwhm_mnka,
    )
    error = np.abs(result.atomic_percent - data.atomic_percent)
    k = maps.shape[0]
    recon = maps.reshape(k, -1).T @ spectra
    return {
        "angle": float(np.median(angles)),
        "nrmse": float(np.median(nrmse)),
        "at_max": float(error.max()),
        "at_mean": float(error.mean()),
        "recon": metrics.reconstruction_error(data.expected, recon),
    }


def _run_case(case):
    """All methods on one (phantom, dose, seed); returns rows and the figure inputs."""
    from sklearn.exceptions import ConvergenceWarning

    import psnmf
    from psnmf import _stages, metrics, simulate

    warnings.simplefilter("ignore", ConvergenceWarning)
    phantom, dose, seed, size = case
    data = getattr(simulate, phantom)((size, size), dose=dose, seed=seed)
    cube = data.counts
    k = data.n_components
    pixels = cube.reshape(-1, cube.shape[-1])
    rows, kept = {}, {}

    def timed(name, fit):
        start = time.perf_counter()
        spectra, maps = fit()
        elapsed = time.perf_counter() - start
        rows[name] = {**_score(data, spectra, maps), "seconds": elapsed}
        kept[name] = (spectra, maps)

    def plain():
        model = psnmf.PoissonNMF(k, max_iter=1000, tol=1e-6, random_state=0, n_threads=1)
        maps = model.fit_transform(pixels)
        return _factors_of(model.components_, maps.T.reshape(k, *data.shape))

    def psnmf_fit(**params):
        model = psnmf.PSNMF(k, random_state=0, n_threads=1, **params).fit(cube)
        return model

    default = {}

    def psnmf_default():
        default["model"] = psnmf_fit()
        return default["model"].spectra_, default["model"].maps_

    def binned_only():
        binned = default["model"].binned_
        maps = _stages.upsample_maps(binned.maps.reshape(k, -1).T, binned.factor, data.shape)
        return binned.spectra, maps.T.reshape(k, *data.shape)

    timed("NMF (full resolution)", plain)
    timed("PSNMF (defaults)", psnmf_default)
    timed("NMF (binned only)", binned_only)
    rows["NMF (binned only)"]["seconds"] = float("nan")  # part of the PSNMF run
    for name, params in (("PSNMF, n_init=1", {"n_init": 1}), ("PSNMF, refine_iter=100", {})):
        if name.endswith("refine_iter=100"):
            params = {"refine_iter": 100, "bin_factor": default["model"].bin_factor_}

        def variant(params=params):
            model = psnmf_fit(**params)
            return model.spectra_, model.maps_

        timed(name, variant)
    start = time.perf_counter()
    denoised = psnmf.denoise_pca(cube, k)
    rows["PCA (Poisson-weighted)"] = {
        "angle": float("nan"),
        "nrmse": float("nan"),
        "at_max": float("nan"),
        "at_mean": float("nan"),
        "recon": metrics.reconstruction_error(data.expected, denoised),
        "seconds": time.perf_counter() - start,
    }
    info = {"bin_factor": default["model"].bin_factor_[0]}
    figure = None
    if seed == 0 and dose == 50.0:
        figure = {
            "truth": (data.spectra, data.maps),
            "energy": data.energy,
            "names": data.phase_names,
            "methods": {m: kept[m] for m in ("NMF (full resolution)", "PSNMF (defaults)")},
        }
    return case, rows, info, figure


def _median_table(results, doses, size):
    """Markdown table: medians over seeds per phantom, dose and method."""
    lines = [
        "| phantom | dose | method | angle (deg) | map nRMSE | at% error worst | "
        "at% error mean | reconstruction error | time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for phantom in PHANTOMS:
        for dose in doses:
            for method in METHODS:
                values = [
                    rows[method]
                    for (p, d, _, _), rows, _, _ in results
                    if p == phantom and d == dose
                ]
                with warnings.catch_warnings():  # PCA has no spectra: its medians are NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = {m: float(np.nanmedian([v[m] for v in values])) for m in METRICS}
                summary[phantom, dose, method] = med
                cells = [
                    f"{med['angle']:.2f}",
                    f"{med['nrmse']:.3f}",
                    f"{med['at_max']:.2f}",
                    f"{med['at_mean']:.2f}",
                    f"{med['recon']:.4f}",
                    f"{med['seconds']:.1f}",
                ]
                cells = [c.replace("nan", "–") for c in cells]
                lines.append(f"| {phantom} | {dose:g} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines), summary


def _targets(summary, doses):
    """The issue's targets, per phantom and dose: list of (text, passed)."""
    checks = []
    plain, ps, pca = "NMF (full resolution)", "PSNMF (defaults)", "PCA (Poisson-weighted)"
    for phantom in PHANTOMS:
        for dose in doses:
            p, n, c = (summary[phantom, dose, m] for m in (ps, plain, pca))
            if dose == min(doses):
                checks.append(
                    (
                        f"{phantom}, dose {dose:g}: PSNMF mean at% error {p['at_mean']:.2f} <= "
                        f"half of plain NMF's {n['at_mean']:.2f}, angle {p['angle']:.2f} < "
                        f"{n['angle']:.2f}",
                        p["at_mean"] <= 0.5 * n["at_mean"] and p["angle"] < n["angle"],
                    )
                )
            checks.append(
                (
                    f"{phantom}, dose {dose:g}: PSNMF at least as accurate as plain NMF "
                    f"(angle {p['angle']:.2f} vs {n['angle']:.2f}, mean at% "
                    f"{p['at_mean']:.2f} vs {n['at_mean']:.2f})",
                    p["angle"] <= n["angle"] and p["at_mean"] <= n["at_mean"],
                )
            )
            checks.append(
                (
                    f"{phantom}, dose {dose:g}: PSNMF reconstruction {p['recon']:.4f} closer "
                    f"than PCA's {c['recon']:.4f}",
                    p["recon"] < c["recon"],
                )
            )
    return checks


def _defaults_win(summary, doses):
    """How often each PSNMF setting has the lowest worst at% error and angle."""
    settings = ("PSNMF (defaults)", "PSNMF, n_init=1", "PSNMF, refine_iter=100")
    lines = ["| setting | median angle (deg) | median mean at% | median reconstruction |"]
    lines.append("|---|---|---|---|")
    for name in settings:
        values = [summary[p, d, name] for p in PHANTOMS for d in doses]
        lines.append(
            f"| {name} | {np.median([v['angle'] for v in values]):.2f} | "
            f"{np.median([v['at_mean'] for v in values]):.2f} | "
            f"{np.median([v['recon'] for v in values]):.4f} |"
        )
    return "\n".join(lines)


def _figures(results, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from psnmf import metrics

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (phantom, dose, seed, _), _, _, figure in results:
        if figure is None:
            continue
        true_spectra, true_maps = figure["truth"]
        methods = figure["methods"]
        k = true_spectra.shape[0]
        fig, axes = plt.subplots(
            len(methods) + 2, k, figsize=(3.2 * k, 2.6 * (len(methods) + 2)), squeeze=False
        )
        for q in range(k):
            axes[0, q].imshow(true_maps[q], cmap="magma")
            axes[0, q].set_title(f"truth: {figure['names'][q]}", fontsize=8)
        for row, (name, (spectra, maps)) in enumerate(methods.items(), start=1):
            order = metrics.match_components(true_spectra, spectra)
            for q in range(k):
                axes[row, q].imshow(maps[order[q]], cmap="magma")
                axes[row, q].set_title(name, fontsize=8)
        for q in range(k):
            ax = axes[-1, q]
            ax.plot(figure["energy"], true_spectra[q], color="k", lw=1, label="truth")
            for name, (spectra, _) in methods.items():
                order = metrics.match_components(true_spectra, spectra)
                ax.plot(figure["energy"], spectra[order[q]], lw=0.7, label=name)
            ax.set_xlim(0, 12)
            ax.set_xlabel("energy (keV)", fontsize=8)
            ax.legend(fontsize=6)
        for ax in axes[:-1].ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{phantom}, {dose:g} counts/pixel, seed {seed}")
        fig.tight_layout()
        path = out_dir / f"{phantom}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 64 x 64: smoke run")
    parser.add_argument("--size", type=int, default=None, help="image side (default 96)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per case (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes (1 thread each)")
    parser.add_argument("--out", type=Path, default=HERE / "VALIDATION.md")
    args = parser.parse_args(argv)
    size = args.size or (64 if args.quick else 96)
    n_seeds = args.seeds or (1 if args.quick else 3)
    cases = [(p, d, s, size) for p in PHANTOMS for d in DOSES for s in range(n_seeds)]

    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")  # libgomp is not fork-safe
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        results = []
        for result in pool.map(_run_case, cases):
            (phantom, dose, seed, _), rows, info, _ = result
            print(
                f"{phantom:20s} dose {dose:5g} seed {seed}: bin {info['bin_factor']}, "
                + ", ".join(f"{m}: {rows[m]['angle']:.1f} deg" for m in METHODS[:3]),
                flush=True,
            )
            results.append(result)
    elapsed = time.perf_counter() - start

    table, summary = _median_table(results, DOSES, size)
    checks = _targets(summary, DOSES)
    figures = _figures(results, args.out.parent / "figures")
    import psnmf

    bins = {
        (p, d): sorted(
            {info["bin_factor"] for (pp, dd, _, _), _, info, _ in results if pp == p and dd == d}
        )
        for p in PHANTOMS
        for d in DOSES
    }
    text = [
        "# PSNMF validation on simulated spectrum images",
        "",
        f"`python bench/validate.py{' --quick' if args.quick else ''}`: {len(cases)} cubes "
        f"({size} x {size} pixels x 1024 channels; phantoms x doses {DOSES} counts/pixel x "
        f"{n_seeds} seed(s)), psnmf {psnmf.__version__}, {platform.machine()}, "
        f"{multiprocessing.cpu_count()} cores, {elapsed / 60:.1f} min.",
        "",
        "Medians over seeds. Angle: median over phases of the spectral angle to the matched "
        "true spectrum. Map nRMSE: median over phases. at% error: absolute error of the "
        "compositions quantified from the learned spectra (`psnmf.quantify`, defaults, true lines "
        "and k-factors), worst and mean over phases and elements. Reconstruction error: "
        "‖R − E‖_F / ‖E‖_F against the noise-free cube E. PCA gives a reconstruction only.",
        "",
        table,
        "",
        '## Bin factors chosen by `bin_factor="auto"`',
        "",
        "| phantom | dose | factors (over seeds) |",
        "|---|---|---|",
        *[f"| {p} | {d:g} | {', '.join(map(str, bins[p, d]))} |" for p in PHANTOMS for d in DOSES],
        "",
        "## Targets",
        "",
        *[f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks],
        "",
        f"{sum(ok for _, ok in checks)} of {len(checks)} checks pass.",
        "",
        "## PSNMF settings compared (medians over all phantoms and doses)",
        "",
        _defaults_win(summary, DOSES),
        "",
        "## Figures",
        "",
        *[f"![{p.stem}](figures/{p.name})" for p in figures],
        "",
    ]
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out} ({sum(ok for _, ok in checks)}/{len(checks)} checks pass)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
