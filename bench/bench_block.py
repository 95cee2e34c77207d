"""One block iteration of the chunked (dask) fit against one in-memory iteration, same data.

The dask fit runs ``_core.update_block`` on every block and ``apply_spectra_update`` once
per iteration; the in-memory fit runs ``fit_poisson_nmf``. On one block holding the whole
matrix both do the same work, so the ratio of their times is the overhead of the block
path. In-memory per-iteration times are slopes of wall time against the iteration count
(fits of two lengths: the fixed cost of a fit is left out), with the loss recorded every
LOSS_EVERY iterations as PoissonNMF does; block times are medians of single calls.
Variants, each against the in-memory fit that does the same updates:

- ``both``: maps and spectra (the PoissonNMF fit), without the loss;
- ``both+loss``: the same on an iteration that records the loss (log per nonzero);
- ``both, mean``: the dask driver's mean, one loss every LOSS_EVERY iterations;
- ``maps``, ``maps+loss``, ``maps, mean``: the same with the maps only, spectra fixed
  (``transform``, PSNMF stage 2).

Run: ``python bench/bench_block.py [--pixels 65536 --channels 1024 --mean 0.1 --threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import scipy.sparse as sp

from psnmf import _core
from psnmf._counts import to_counts
from psnmf.nmf import LOSS_EVERY

K = 4


def make_counts(n_pixels, n_channels, mean_per_channel, seed=0, rows_per_draw=8192):
    """Low-dose Poisson counts of a k = 4 model as CSR, drawn a slab of rows at a time."""
    rng = np.random.default_rng(seed)
    spectra = rng.gamma(0.3, 1.0, (K, n_channels))
    spectra /= spectra.sum(axis=1, keepdims=True)
    slabs = []
    for start in range(0, n_pixels, rows_per_draw):
        n = min(rows_per_draw, n_pixels - start)
        maps = rng.dirichlet(np.full(K, 0.5), n) * mean_per_channel * n_channels
        slabs.append(sp.csr_matrix(rng.poisson(maps @ spectra).astype(np.uint16)))
    return sp.vstack(slabs, format="csr")


def start_factors(n_pixels, n_channels):
    rng = np.random.default_rng(1)
    return rng.uniform(0.1, 1.0, (n_pixels, K)), rng.uniform(0.1, 1.0, (K, n_channels))


def block_call(counts, maps, spectra, accumulate_spectra, with_loss, n_threads):
    """One update_block call as the dask driver makes it (counts validated once, by to_counts).

    Kept apart so that another version of the API can be timed alike.
    """
    return _core.update_block(
        counts.core,
        counts.shape[1],
        maps,
        spectra,
        accumulate_spectra=accumulate_spectra,
        with_loss=with_loss,
        check_counts=False,
        n_threads=n_threads,
    )


def block_iteration(counts, maps, spectra, update_spectra, with_loss, n_threads):
    """Seconds of one block iteration: update_block, then the spectra update if any."""
    start = time.perf_counter()
    out = block_call(counts, maps, spectra, update_spectra, with_loss, n_threads)
    if update_spectra:
        _core.apply_spectra_update(spectra, out["spectra_numerator"], out["maps_colsum"])
    return time.perf_counter() - start


def memory_fit(counts, maps, spectra, n_iter, update_spectra, n_threads):
    start = time.perf_counter()
    _core.fit_poisson_nmf(
        counts.core,
        counts.shape[1],
        maps,
        spectra,
        max_iter=n_iter,
        tol=0.0,
        update_spectra=update_spectra,
        n_threads=n_threads,
        loss_every=LOSS_EVERY,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=65536)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--mean", type=float, default=0.1, help="mean counts per channel")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="repeats; medians are reported")
    parser.add_argument("--calls", type=int, default=10, help="block calls per round")
    args = parser.parse_args()

    counts = to_counts(make_counts(args.pixels, args.channels, args.mean))
    W0, H0 = start_factors(args.pixels, args.channels)
    short, long = 5, 25
    memory = {True: [], False: []}  # update_spectra -> per-iteration seconds of each round
    # variant -> (update_spectra, with_loss)
    variants = {
        "both": (True, False),
        "both+loss": (True, True),
        "maps": (False, False),
        "maps+loss": (False, True),
    }
    block = {name: [] for name in variants}
    for _ in range(args.rounds):
        for update_spectra in (True, False):
            seconds = [
                memory_fit(counts, W0.copy(), H0.copy(), n, update_spectra, args.threads)
                for n in (short, long)
            ]
            memory[update_spectra].append((seconds[1] - seconds[0]) / (long - short))
        maps, spectra = W0.copy(), H0.copy()
        for _ in range(args.calls):
            for name, (update_spectra, with_loss) in variants.items():
                block[name].append(
                    block_iteration(counts, maps, spectra, update_spectra, with_loss, args.threads)
                )

    medians = {name: float(np.median(t)) for name, t in block.items()}
    reference = {}
    for name, update_spectra in (("both", True), ("maps", False)):
        medians[f"{name}, mean"] = (
            (LOSS_EVERY - 1) * medians[name] + medians[f"{name}+loss"]
        ) / LOSS_EVERY
        for variant in (name, f"{name}+loss", f"{name}, mean"):
            reference[variant] = float(np.median(memory[update_spectra]))
    print(
        f"# {platform.node()} {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}"
    )
    print(
        f"# {args.pixels} x {args.channels} CSR, {counts.indices.size} nonzeros, mean "
        f"{args.mean} counts/channel, k={K}, {args.threads} thread(s), medians of "
        f"{args.rounds} rounds ({args.calls} block calls each)"
    )
    print(f"{'variant':<11} {'block ms':>9} {'in-memory ms/iter':>18} {'ratio':>6}")
    for name in ("both", "both+loss", "both, mean", "maps", "maps+loss", "maps, mean"):
        print(
            f"{name:<11} {1e3 * medians[name]:9.2f} {1e3 * reference[name]:18.2f} "
            f"{medians[name] / reference[name]:6.2f}"
        )


if __name__ == "__main__":
    main()
