"""Cost of the validated boundary: bin_spatial (checks + core) against the bare core call.

The value checks (NaN, infinity, negative counts) of bin_spatial run inside the core's one
pass over the cube; Python scans only on failure (to name the bad index) and for 64-bit
integers. Reports medians over repeats and the ratio API / core, per dtype, side by side.
Run: ``python bench/bench_validation.py [--shape 256 256 1024 --factor 4 --repeats 7]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from functools import partial

import numpy as np

import psnmf
from psnmf import _core


def median_times(calls, repeats):
    """Median time of each call, the calls interleaved so that both see the same load."""
    times = [[] for _ in calls]
    for _ in range(repeats):
        for call, record in zip(calls, times):
            start = time.perf_counter()
            call()
            record.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 1024))
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, shape {tuple(args.shape)}, "
        f"factor {args.factor}, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'dtype':>8} {'core ms':>9} {'bin_spatial ms':>15} {'ratio':>6}")
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.1, tuple(args.shape))
    f = args.factor
    for dtype in (np.uint16, np.int32, np.float32, np.float64):
        cube = counts.astype(dtype)
        core, api = median_times(
            [
                partial(_core.bin_spatial, cube, f, f, "crop", args.threads),
                partial(psnmf.bin_spatial, cube, f, n_threads=args.threads),
            ],
            args.repeats,
        )
        print(f"{np.dtype(dtype).name:>8} {core * 1e3:9.1f} {api * 1e3:15.1f} {api / core:6.2f}")


if __name__ == "__main__":
    main()
