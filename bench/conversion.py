"""Throughput of input conversion (psnmf._counts.to_counts) and of binning.

GB/s of input bytes, side by side with a numpy copy of the same bytes (memory
speed) and, for dense input, scipy's own ``csr_matrix(dense)``.
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


def _sparse_bytes(X):
    if X.format == "coo":
        return X.data.nbytes + X.row.nbytes + X.col.nbytes
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def run(X, repeats, log):
    """X: float64 CSR counts. Rows: (input, GB/s, memcpy GB/s, ratio)."""
    rows = []
    counts16 = X.astype(np.uint16).toarray()
    for dtype in (np.uint8, np.uint16, np.uint32, np.int32, np.int64):
        dense = counts16.astype(dtype)
        for order in "CF":
            data = np.asarray(dense, order=order)
            log(f"conversion dense {np.dtype(dtype).name} {order}")
            seconds = _median_time(repeats, to_counts, data)
            rows.append((f"dense {np.dtype(dtype).name}, {order} order", data.nbytes, seconds))
    log("scipy csr_matrix(dense uint16)")
    seconds = _median_time(1, sp.csr_matrix, counts16)
    rows.append(("scipy csr_matrix(dense uint16), reference", counts16.nbytes, seconds))
    del counts16, dense

    variants = {
        "CSR float64, int32 indices": X,
        "CSR float32, int32 indices": X.astype(np.float32),
        "CSR int32 data": X.astype(np.int32),
        "CSR float64, int64 indices": _with_int64_indices(X),
        "CSC float64": X.tocsc(),
        "COO float64": X.tocoo(),
    }
    for name, Y in variants.items():
        log(f"conversion {name}")
        seconds = _median_time(repeats, to_counts, Y)
        rows.append((name, _sparse_bytes(Y), seconds))
    copy_rate = memcpy_gbs(max(r[1] for r in rows))
    return [(name, n / s / 1e9, copy_rate, n / s / 1e9 / copy_rate) for name, n, s in rows]


def _with_int64_indices(X):
    Y = X.copy()
    Y.indices = Y.indices.astype(np.int64)
    Y.indptr = Y.indptr.astype(np.int64)
    return Y


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
