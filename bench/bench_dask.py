"""Peak memory and time of PoissonNMF on a zarr cube: in memory against dask chunk by chunk.

A low-dose cube (n_pixels x C, uint16) is written to a zarr store chunk by chunk.
Each mode then runs in a fresh subprocess, so that its peak resident memory
(ru_maxrss) is its own:

- ``memory``:  the whole cube read into numpy, ``PoissonNMF.fit`` in memory;
- ``dask``:    ``da.from_zarr`` on the threaded scheduler, counts re-read from the
  store every iteration (``PERSIST_LIMIT_BYTES = 0``: as if larger than memory);
- ``persist``: the same with the working-format counts persisted once;
- ``cluster``: ``persist`` on a dask.distributed LocalCluster of 2 spawned worker
  processes, 1 thread each (peak memory not reported: it is the workers').

Same custom initialisation and iteration count in every mode; the table gives the
peak RSS (above the interpreter's after imports), the time per iteration (reading
the store plus fitting, divided by the iterations: reading is part of every mode),
their ratios to ``memory``, and the relative difference of the final loss.
Run: ``python bench/bench_dask.py [--pixels 131072 --iterations 5]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K = 4


def write_cube(path, n_pixels, n_channels, chunk, mean_per_channel, seed=0):
    import zarr

    rng = np.random.default_rng(seed)
    spectra = rng.gamma(0.3, 1.0, (K, n_channels))
    spectra /= spectra.sum(axis=1, keepdims=True)
    store = zarr.open_array(
        str(path), mode="w", shape=(n_pixels, n_channels), chunks=(chunk, n_channels), dtype="u2"
    )
    for start in range(0, n_pixels, chunk):
        n = min(chunk, n_pixels - start)
        maps = rng.dirichlet(np.full(K, 0.5), n) * mean_per_channel * n_channels
        store[start : start + n] = rng.poisson(maps @ spectra)


def start_factors(n_pixels, n_channels):
    rng = np.random.default_rng(1)
    return rng.uniform(0.1, 1.0, (n_pixels, K)), rng.uniform(0.1, 1.0, (K, n_channels))


def run_mode(mode, path, iterations):
    """Runs in the subprocess: prints a JSON line with peak RSS, time and loss."""
    import dask
    import dask.array as da

    from psnmf import PoissonNMF, _dask

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lazy = da.from_zarr(str(path))
    W, H = start_factors(*lazy.shape)
    model = PoissonNMF(K, init="custom", max_iter=iterations, tol=0)
    start = time.perf_counter()
    read_seconds = None
    if mode == "memory":
        cube = lazy.compute()
        read_seconds = time.perf_counter() - start
        model.fit(cube, W=W, H=H)
    elif mode == "cluster":
        import distributed

        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            client.run(lambda: __import__("psnmf"))  # worker start-up is not fit time
            start = time.perf_counter()
            model.fit(lazy, W=W, H=H)
            seconds = time.perf_counter() - start
    else:
        if mode == "dask":
            _dask.PERSIST_LIMIT_BYTES = 0
        with dask.config.set(scheduler="threads"):
            model.fit(lazy, W=W, H=H)
    if mode != "cluster":
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "mode": mode,
                "peak_mb": peak / 1024,
                "above_start_mb": (peak - baseline) / 1024,
                "s_per_iter": seconds / iterations,
                "loss": model.reconstruction_err_,
                "read_s": read_seconds,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=131072)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=8192, help="pixels per zarr chunk")
    parser.add_argument("--mean", type=float, default=0.1, help="mean counts per channel")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        run_mode(args.mode, args.store, args.iterations)
        return

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "cube.zarr"
        write_cube(store, args.pixels, args.channels, args.chunk, args.mean)
        dense_mb = args.pixels * args.channels * 2 / 2**20
        rows = []
        for mode in ("memory", "dask", "persist", "cluster"):
            out = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--store", str(store)]
                + ["--iterations", str(args.iterations)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    print(f"# {platform.node()} {platform.machine()}, python {platform.python_version()}")
    print(
        f"# cube {args.pixels} x {args.channels} uint16 ({dense_mb:.0f} MB dense), "
        f"chunks of {args.chunk} pixels, mean {args.mean} counts/channel, k={K}, "
        f"{args.iterations} iterations"
    )
    reference = rows[0]
    print(
        f"{'mode':<8} {'peak MB':>8} {'above start MB':>15} {'mem ratio':>9} "
        f"{'s/iter':>8} {'time ratio':>10} {'loss rel diff':>13}"
    )
    for r in rows:
        if r["mode"] == "cluster":
            memory = f"{'-':>8} {'-':>15} {'-':>9}"
        else:
            memory = (
                f"{r['peak_mb']:8.0f} {r['above_start_mb']:15.0f} "
                f"{r['above_start_mb'] / reference['above_start_mb']:9.2f}"
            )
        print(
            f"{r['mode']:<8} {memory} {r['s_per_iter']:8.3f} "
            f"{r['s_per_iter'] / reference['s_per_iter']:10.2f} "
            f"{abs(r['loss'] - reference['loss']) / reference['loss']:13.1e}"
        )

    print(f"# memory: {reference['read_s']:.2f} s of its total went to reading the store")


if __name__ == "__main__":
    main()
