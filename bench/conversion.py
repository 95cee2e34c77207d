"""Throughput of input conversion (psnmf._counts.to_counts) and of binning.

GB/s of input bytes, each timed in alternation with a numpy copy of the same
number of bytes (memory speed; ratio = copy time / conversion time, medians of
the repeats), and, for dense input, scipy's own ``csr_matrix(dense)``.
Run alone: ``python bench/conversion.py [--quick]``; bench/run.py includes it.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from psnmf import bin_spatial
from psnmf._counts import to_counts
from psnmf.binning import bin_pixels


def _median_time(repeats, fn, *args):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def memcpy_gbs(nbytes, repeats=5):
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    return nbytes / _median_time(repeats, np.copyto, dst, src) / 1e9


def _side_by_side(repeats, nbytes, fn, *args):
    """Median seconds of fn(*args) and of a memcpy of the same nbytes, timed in
    alternation so that both see the same machine load."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    fn(*args)
    converts, copies = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        copies.append(time.perf_counter() - start)
        start = time.perf_counter()
        fn(*args)
        converts.append(time.perf_counter() - start)
    return float(np.median(converts)), float(np.median(copies))


def _sparse_bytes(X):
    if X.format == "coo":
        return X.data.nbytes + X.row.nbytes + X.col.nbytes
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


DENSE_DTYPES = (np.uint8, np.uint16, np.uint32, np.int32, np.int64, np.float32, np.float64)
THREADS = (1, 2)


def run(X, repeats, log, sparse=True):
    """X: float64 CSR counts. Rows: (input, GB/s, memcpy GB/s, ratio).

    Every dense dtype x order x thread count and (unless not `sparse`) the
    sparse inputs, each timed side by side with a numpy copy (one thread) of
    its own number of bytes."""
    rows = []

    def measure(name, nbytes, fn, *args):
        log(f"conversion {name}")
        seconds, copy_seconds = _side_by_side(repeats, nbytes, fn, *args)
        rows.append(
            (name, nbytes / seconds / 1e9, nbytes / copy_seconds / 1e9, copy_seconds / seconds)
        )

    counts16 = X.astype(np.uint16).toarray()
    for dtype in DENSE_DTYPES:
        for order in "CF":
            data = np.asarray(counts16.astype(dtype), order=order)
            for n_threads in THREADS:
                name = f"dense {np.dtype(dtype).name}, {order} order, {n_threads} thread(s)"
                measure(name, data.nbytes, lambda d=data, t=n_threads: to_counts(d, n_threads=t))
            del data
    log("scipy csr_matrix(dense uint16)")
    seconds, copy_seconds = _side_by_side(1, counts16.nbytes, sp.csr_matrix, counts16)
    rows.append(
        (
            "scipy csr_matrix(dense uint16), reference",
            counts16.nbytes / seconds / 1e9,
            counts16.nbytes / copy_seconds / 1e9,
            copy_seconds / seconds,
        )
    )
    del counts16
    if not sparse:
        return rows

    variants = {
        "CSR float64, int32 indices": X,
        "CSR float32, int32 indices": X.astype(np.float32),
        "CSR int32 data": X.astype(np.int32),
        "CSR float64, int64 indices": _with_int64_indices(X),
        "csr_array int64 data, int64 indices": sp.csr_array(
            _with_int64_indices(X.astype(np.int64))
        ),
        "CSR float64, unsorted rows": _unsorted(X),
        "CSC float64": X.tocsc(),
        "COO float64": X.tocoo(),
        "COO float64, every entry twice": _doubled(X.tocoo()),
    }
    for name, Y in variants.items():
        for n_threads in THREADS:
            measure(
                f"{name}, {n_threads} thread(s)",
                _sparse_bytes(Y),
                lambda y=Y, t=n_threads: to_counts(y, n_threads=t),
            )
    return rows


def _with_int64_indices(X):
    Y = X.copy()
    Y.indices = Y.indices.astype(np.int64)
    Y.indptr = Y.indptr.astype(np.int64)
    return Y


def _unsorted(X):
    """The same matrix with the entries of every row in reverse column order."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    order = np.lexsort((-X.indices, rows))
    Y = sp.csr_matrix((X.data[order], X.indices[order], X.indptr), shape=X.shape)
    Y.has_sorted_indices = False
    return Y


def _doubled(coo):
    """COO with every entry stored twice (duplicates to sum)."""
    return sp.coo_matrix(
        (np.tile(coo.data, 2), (np.tile(coo.row, 2), np.tile(coo.col, 2))), shape=coo.shape
    )


def binning(X, image_shape, repeats, log):
    """Rows: (input, factor, GB/s, memcpy GB/s)."""
    ny, nx = image_shape
    cube = X.astype(np.uint16).toarray().reshape(ny, nx, -1)
    copy_rate = memcpy_gbs(cube.nbytes)
    rows = []
    for factor in (2, 4):
        log(f"bin_spatial dense uint16, factor {factor}")
        seconds = _median_time(repeats, bin_spatial, cube, factor)
        rows.append(
            (
                f"bin_spatial, dense uint16 cube {cube.shape}",
                factor,
                cube.nbytes / seconds / 1e9,
                copy_rate,
            )
        )
    Y = X.astype(np.float32)
    for factor in (2, 4):
        log(f"bin_pixels CSR, factor {factor}")
        seconds = _median_time(repeats, bin_pixels, Y, image_shape, factor)
        rows.append(
            (
                f"bin_pixels, CSR float32 {Y.shape}",
                factor,
                _sparse_bytes(Y) / seconds / 1e9,
                copy_rate,
            )
        )
    return rows


if __name__ == "__main__":
    import argparse
    import sys

    from workloads import low_rank_counts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8192 x 512 instead of 65536 x 1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense", action="store_true", help="dense inputs only (no sparse rows)")
    args = parser.parse_args()
    shape = (8192, 512) if args.quick else (65536, 1024)
    X = low_rank_counts(*shape, 4, 0.1, seed=0)
    print(f"counts {shape}, {X.nnz / (shape[0] * shape[1]):.1%} nonzero", file=sys.stderr)
    print("| input | GB/s | memcpy GB/s | fraction of memcpy |\n|---|---|---|---|")

    def log(message):
        print(message, file=sys.stderr)

    for name, rate, copy, ratio in run(X, args.repeats, log, sparse=not args.dense):
        print(f"| {name} | {rate:.2f} | {copy:.2f} | {ratio:.2f} |")
