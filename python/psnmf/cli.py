"""The ``psnmf`` command line.

``psnmf demo`` runs the pipeline on embedded data; ``psnmf run FILE`` runs it on a microscope
file and writes figures, tables, results and an HTML report; ``psnmf scan FILE`` suggests the
number of components and the bin factor.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def _format_composition(elements, recovered, truth) -> str:
    return "  ".join(f"{el} {r:5.1f} ({t:5.1f})" for el, r, t in zip(elements, recovered, truth))


def run_demo(out: Path | None = None, n_threads: int | None = None) -> int:
    """Fit PSNMF to the embedded simulated dataset and print the phases against the truth."""
    from . import metrics, simulate
    from .pipeline import PSNMF
    from .quantify import quantify

    data = simulate.demo_dataset()
    ny, nx, n_channels = data.counts.shape
    k = data.n_components
    print(
        f"psnmf demo: simulated particles in a matrix, {ny} x {nx} pixels x {n_channels} "
        f"channels ({data.energy[0]:.2f}-{data.energy[-1]:.2f} keV), "
        f"{data.dose:g} counts/pixel, {k} phases, beam {data.beam_energy:g} keV"
    )
    start = time.perf_counter()
    model = PSNMF(k, random_state=0, n_threads=n_threads).fit(data.counts)
    elapsed = time.perf_counter() - start
    print(
        f"PSNMF: bin {model.bin_factor_[0]}x{model.bin_factor_[1]}, iterations "
        f"{model.n_iter_['binned']} (binned) + {model.n_iter_['full']} (full), {elapsed:.2f} s"
    )

    order = metrics.match_components(data.spectra, model.spectra_)
    angles = metrics.spectral_angles(data.spectra, model.spectra_, order)
    nrmse = metrics.map_nrmse(data.maps, model.maps_, order)
    counts = model.maps_[order].sum(axis=(1, 2))
    result = quantify(
        model.spectra_[order],
        data.energy,
        list(data.lines),
        data.k_factors,
        counts=counts,
        beam_energy=data.beam_energy,
        fwhm_mnka=data.fwhm_mnka,
        efficiency=data.detector.efficiency,  # the simulated instrument's, as a user's own
    )
    print("recovered phases (truth in brackets), at%:")
    for i, name in enumerate(data.phase_names):
        print(
            f"  {name:<12} angle {angles[i]:5.2f} deg  map nRMSE {nrmse[i]:5.3f}  "
            + _format_composition(data.elements, result.atomic_percent[i], data.atomic_percent[i])
        )
    worst = float(np.max(np.abs(result.atomic_percent - data.atomic_percent)))
    print(f"worst composition error {worst:.2f} at%")

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        np.savez(
            out / "psnmf_demo.npz",
            energy=data.energy,
            spectra=model.spectra_,
            maps=model.maps_,
            true_spectra=data.spectra,
            true_maps=data.maps,
        )
        (out / "compositions.csv").write_text(result.to_csv())
        print(f"wrote {out / 'psnmf_demo.npz'} and {out / 'compositions.csv'}")
    return 0


def _parse_list(text: str | None) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()] if text else []


def _parse_k_factors(text: str | None) -> dict[str, float]:
    factors = {}
    for item in _parse_list(text):
        line, sep, value = item.partition("=")
        try:
            factors[line.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--kfactors: expected LINE=K such as Fe_Ka=1.0, got {item!r}")
    return factors


def _resolve_lines(args, dataset, beam_energy, notes) -> list[str]:
    """Lines to quantify: --lines, else a default line for --elements or the file's elements."""
    from . import xray
    from .simulate import default_line

    if args.lines and args.elements:
        raise ValueError("give --lines or --elements, not both")
    span = (float(dataset.energy[0]), float(dataset.energy[-1]))
    if args.lines:
        lines = _parse_list(args.lines)
        for line in lines:
            xray.parse_line(line)  # a clear error for a malformed name
        return lines
    elements = _parse_list(args.elements)
    from_file = not elements
    if from_file:
        elements = list(dataset.elements)
    lines = []
    for element in elements:
        try:
            lines.append(default_line(element, beam_energy, span))
        except ValueError as err:
            if not from_file:
                raise
            notes.append(f"element {element} of the file is not quantified: {err}")
    if not lines:
        notes.append(
            "no elements given (--lines or --elements) and none in the file: no quantification"
        )
    return lines


def _resolve_k_factors(lines, given, notes) -> dict[str, float]:
    """User k-factors; the others from the simulator's theoretical law, with a note."""
    from .simulate import default_k_factor

    unknown = sorted(set(given) - set(lines))
    if unknown:
        raise ValueError(f"--kfactors names lines that are not quantified: {unknown}")
    missing = [line for line in lines if line not in given]
    if missing:
        notes.append(
            "k-factors not given for "
            + ", ".join(missing)
            + ": using psnmf's theoretical k-factors (psnmf.simulate.default_k_factor, Si Ka = "
            "1), which are not measured values; pass --kfactors for quantitative results"
        )
    return {line: given[line] if line in given else default_k_factor(line) for line in lines}


def _optional(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def _bin_option(text: str):
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--bin must be 'auto' or an integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--bin must be >= 1, got {value}")
    return value


def run_file(args) -> int:
    """``psnmf run``: PSNMF on a file, then figures, tables, results and the HTML report."""
    from . import figures, report
    from .io import load, save_results
    from .pipeline import PSNMF
    from .progress import step
    from .quantify import quantify

    out = Path(args.out)
    notes: list[str] = []
    with step(f"reading {Path(args.file).name}", quiet=args.quiet):
        dataset = load(args.file)
    counts = dataset.counts
    ny, nx, n_channels = counts.shape
    beam_energy = dataset.beam_energy
    if beam_energy is None:
        beam_energy = 200.0
        notes.append("the file gives no beam energy: 200 keV assumed")
    fwhm = dataset.energy_resolution_MnKa
    if fwhm is None:
        fwhm = 130.0
        notes.append("the file gives no detector resolution: 130 eV at Mn Ka assumed")
    lines = _resolve_lines(args, dataset, beam_energy, notes)
    k_factors = _resolve_k_factors(lines, _parse_k_factors(args.kfactors), notes) if lines else {}
    if not args.quiet:
        print(f"psnmf run: {dataset}")

    start = time.perf_counter()
    with step(f"PSNMF k={args.k}", quiet=args.quiet):
        model = PSNMF(
            args.k, bin_factor=args.bin, random_state=args.seed, n_threads=args.threads
        ).fit(counts)
    elapsed = time.perf_counter() - start
    names = [f"phase {i}" for i in range(args.k)]
    phase_counts = model.maps_.sum(axis=(1, 2))

    quantification = None
    if lines:
        with step("quantification", quiet=args.quiet):
            quantification = quantify(
                model.spectra_,
                dataset.energy,
                lines,
                k_factors,
                counts=phase_counts,
                beam_energy=beam_energy,
                fwhm_mnka=fwhm,
            )

    out.mkdir(parents=True, exist_ok=True)
    with step("figures", quiet=args.quiet):
        axis = dataset.navigation_axes[-1] if dataset.navigation_axes else {}
        maps_png = figures.png_bytes(
            figures.maps_figure(
                model.maps_,
                names,
                pixel_size=axis.get("scale") if axis.get("units") else None,
                pixel_units=str(axis.get("units") or ""),
            )
        )
        spectra_png = figures.png_bytes(
            figures.spectra_figure(
                model.spectra_, dataset.energy, names=names, lines=lines, beam_energy=beam_energy
            )
        )
        (out / "maps.png").write_bytes(maps_png)
        (out / "spectra.png").write_bytes(spectra_png)
    with step("writing results", quiet=args.quiet):
        paths = save_results(out, model.spectra_, model.maps_, dataset.energy, dataset=dataset)
        if quantification is not None:
            quantification.to_csv(out / "composition.csv")
            quantification.to_json(out / "composition.json", indent=1)
        total = float(phase_counts.sum()) or 1.0
        parameters = {
            "file": str(args.file),
            "n_components": args.k,
            "bin (asked)": args.bin,
            "bin factor": "x".join(map(str, model.bin_factor_)),
            "iterations (binned + full)": f"{model.n_iter_['binned']} + {model.n_iter_['full']}",
            "fit time (s)": f"{elapsed:.2f}",
            "threads": args.threads or "default",
            "seed": args.seed,
            "beam energy (keV)": beam_energy,
            "FWHM at Mn Ka (eV)": fwhm,
            "lines": ", ".join(lines) or "-",
        }
        source = {
            "file": Path(args.file).name,
            "title": dataset.title,
            "pixels": f"{ny} x {nx}",
            "channels": n_channels,
            "energy (keV)": f"{dataset.energy[0]:.3f} - {dataset.energy[-1]:.3f}",
            "counts": f"{float(counts.sum()):.4g}",
            "take-off angle (deg)": _optional(dataset.take_off_angle, "{:.2f}"),
            "live time (s)": _optional(dataset.live_time, "{:.4g}"),
            "elements (file)": ", ".join(dataset.elements) or "-",
        }
        report.write_report(
            out / "report.html",
            title=f"psnmf: {Path(args.file).name}",
            source=source,
            names=names,
            maps_png=maps_png,
            spectra_png=spectra_png,
            phase_rows=[
                [n, f"{c:.4g}", f"{100 * c / total:.1f}"] for n, c in zip(names, phase_counts)
            ],
            quantification=quantification,
            parameters=parameters,
            notes=notes,
        )
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if not args.quiet:
        print(f"PSNMF: bin {model.bin_factor_[0]}x{model.bin_factor_[1]}, {elapsed:.2f} s")
        if quantification is not None:
            print(quantification)
        written = ["maps.png", "spectra.png", "report.html", *(p.name for p in paths.values())]
        if quantification is not None:
            written += ["composition.csv", "composition.json"]
        print(f"wrote to {out}: " + ", ".join(written))
    return 0


def scan_file(args) -> int:
    """``psnmf scan``: suggested number of components and bin factor."""
    from .io import load
    from .progress import counter, step
    from .scan import scan

    with step(f"reading {Path(args.file).name}", quiet=args.quiet):
        dataset = load(args.file)
    with counter("held-out fits (k = 1..kmax)", args.kmax, quiet=args.quiet) as tick:
        result = scan(
            np.asarray(dataset.counts),
            kmax=args.kmax,
            seed=args.seed,
            n_threads=args.threads,
            progress=tick,
        )
    ny, nx, c = dataset.counts.shape
    print(
        f"psnmf scan: {Path(args.file).name}, {ny} x {nx} x {c}, "
        f"evaluated binned {result.scan_bin_factor}x{result.scan_bin_factor}"
    )
    print(f"{'k':>3} {'singular value / noise edge':>28} {'held-out KL per count':>22}")
    for i, k in enumerate(result.ks):
        print(
            f"{k:>3} {result.singular_values[i] / result.noise_edge:>28.3f} "
            f"{result.heldout[i]:>22.6f}"
        )
    print(
        f"suggested k: {result.k_scree} (scree: singular values above the Poisson noise "
        f"edge), {result.k_heldout} (held-out likelihood)"
    )
    print(f"suggested bin factor for k = {result.k_heldout}: {result.bin_factor}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="psnmf", description="Poisson NMF pan-sharpening of STEM-EDX spectrum images."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run PSNMF on an embedded simulated dataset")
    demo.add_argument("--out", type=Path, help="directory for the results (npz, CSV)")
    demo.add_argument("--threads", type=int, default=None, help="threads of the core")

    run = commands.add_parser(
        "run", help="PSNMF on a file: maps, spectra, compositions, results, HTML report"
    )
    run.add_argument("file", help="EDX spectrum image (any RosettaSciIO format)")
    run.add_argument("-k", type=int, required=True, help="number of phases")
    run.add_argument("--bin", type=_bin_option, default="auto", help="'auto' or a factor")
    run.add_argument("--lines", help="lines to quantify, e.g. Fe_Ka,Pt_La")
    run.add_argument(
        "--elements",
        help="elements to quantify on their default lines, e.g. Fe,Pt (default: the file's)",
    )
    run.add_argument(
        "--kfactors",
        help="Cliff-Lorimer k-factors, e.g. Fe_Ka=1.0,Pt_La=1.9; lines without one get "
        "psnmf's theoretical k-factors (Si Ka = 1), with a warning",
    )
    run.add_argument("--out", type=Path, required=True, help="output directory")

    scan = commands.add_parser("scan", help="suggest the number of phases and the bin factor")
    scan.add_argument("file", help="EDX spectrum image (any RosettaSciIO format)")
    scan.add_argument("--kmax", type=int, default=8, help="largest k tried (default 8)")
    for sub in (run, scan):
        sub.add_argument("--threads", type=int, default=None, help="threads of the core")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sub.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.out, args.threads)
    try:
        if args.command == "run":
            return run_file(args)
        return scan_file(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"psnmf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
