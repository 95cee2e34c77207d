"""The ``psnmf`` command line: ``psnmf demo`` runs the pipeline on embedded data."""

from __future__ import annotations

import argparse
import sys
import time
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="psnmf", description="Poisson NMF pan-sharpening of STEM-EDX spectrum images."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run PSNMF on an embedded simulated dataset")
    demo.add_argument("--out", type=Path, help="directory for the results (npz, CSV)")
    demo.add_argument("--threads", type=int, default=None, help="threads of the core")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.out, args.threads)
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2


if __name__ == "__main__":
    sys.exit(main())
