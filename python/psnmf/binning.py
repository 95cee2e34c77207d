"""Spatial binning of spectrum images: sum the counts of fy x fx neighbouring pixels."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from . import _core
from ._counts import Counts, resolve_threads, to_counts
from ._memory import check_allocation
from ._validation import check_choice, check_counts, check_counts_values

_WIDEN = {
    np.dtype(np.bool_): np.uint8,
    np.dtype(np.int8): np.int32,
    np.dtype(np.int16): np.int32,
    np.dtype(np.float16): np.float32,
}


def as_factor(factor) -> tuple[int, int]:
    """Validate a bin factor: an int or a pair (fy, fx) of ints >= 1."""
    pair = (factor, factor) if not isinstance(factor, (tuple, list, np.ndarray)) else factor
    if len(pair) != 2:
        raise ValueError(f"factor must be an int or a pair (fy, fx), got {factor!r}")
    for f in pair:
        if isinstance(f, bool) or not isinstance(f, numbers.Integral):
            raise TypeError(f"factor must hold integers, got {factor!r}")
        if f < 1:
            raise ValueError(f"factor must be >= 1, got {factor!r}")
    return int(pair[0]), int(pair[1])


def bin_spatial(cube, factor, *, remainder="crop", n_threads=None):
    """Sum counts over blocks of fy x fx pixels.

    Parameters
    ----------
    cube : ndarray of shape (ny, nx, n_channels)
        Spectrum image (HyperSpy's layout of a 2-D EDX map), any real dtype among
        uint8/16/32/64, int8/16/32/64, float16/32/64, bool, in any memory layout or
        byte order. Counts must be finite, >= 0 and (integers) <= 2**53.
    factor : int or (int, int)
        Bin size (fy, fx) in pixels; an int bins both axes alike.
    remainder : {"crop", "error"}, default="crop"
        Trailing rows/columns that do not fill a whole bin are dropped ("crop"),
        or raise ValueError ("error").
    n_threads : int or None
        Threads; None uses the OpenMP default.

    Returns
    -------
    ndarray of shape (ny // fy, nx // fx, n_channels)
        Summed counts. Integer sums widen so they cannot overflow: unsigned input
        gives uint64, signed gives int64; float32 stays float32 (accumulated in
        float64), float64 stays float64. Total counts are preserved up to cropping.

    Raises
    ------
    ValueError
        Bad shape, empty cube, NaN/inf/negative counts, a factor < 1 or larger than
        the image, sums that would overflow 64-bit integers.
    TypeError
        Non-integer factor, non-real dtype.
    MemoryError
        The binned cube would not fit in the available memory.
    """
    fy, fx = as_factor(factor)
    # Values are checked by the core inside its one pass over the cube (NaN, inf, < 0);
    # here only on failure, to name the first bad index, and for 64-bit integers.
    cube = check_counts(cube, "cube", ndim=3, allow_sparse=False, check_values=False)
    given = cube
    check_choice(remainder, "remainder", ("crop", "error"))
    n_threads = resolve_threads(n_threads)
    ny, nx, n_channels = cube.shape
    if fy > ny or fx > nx:
        raise ValueError(f"factor ({fy}, {fx}) is larger than the image ({ny}, {nx})")
    check_allocation(
        (ny // fy) * (nx // fx) * n_channels * 8 + (0 if cube.flags.c_contiguous else cube.nbytes),
        "the binned cube",
    )
    unsigned64 = cube.dtype == np.uint64
    if cube.dtype.kind in "iu" and cube.dtype.itemsize == 8:
        check_counts_values(cube, "cube")
        # Sums of 64-bit counts must fit int64 (counts are <= 2**53, checked above).
        if int(cube.max()) * fy * fx > np.iinfo(np.int64).max:
            raise ValueError(
                f"cube: sums of {fy} x {fx} pixels of counts up to {int(cube.max())} "
                "overflow 64-bit integers; use a smaller factor"
            )
        cube = cube.astype(np.int64, copy=False)  # exact: values < 2**63
    if cube.dtype in _WIDEN:
        cube = cube.astype(_WIDEN[cube.dtype])
    cube = np.ascontiguousarray(cube, dtype=cube.dtype.newbyteorder("="))
    try:
        binned = _core.bin_spatial(cube, fy, fx, remainder, n_threads)
    except ValueError:
        check_counts_values(given, "cube")  # raises with the location of the bad value
        raise
    if binned.dtype.kind == "f" and binned.size and not np.isfinite(binned.max()):
        # The binned cube is fy * fx times smaller than the input: this scan is cheap.
        raise ValueError(
            f"cube: sums of {fy} x {fx} pixels overflow {binned.dtype} (counts up to "
            f"{float(np.max(given))}); convert the cube to float64 or use a smaller factor"
        )
    return binned.view(np.uint64) if unsigned64 else binned


# Binned sums up to this value are exact in float32 (integer counts).
_FLOAT32_EXACT_LIMIT = 2**24


def bin_pixels(X, image_shape, factor, *, n_threads=0):
    """Bin an unfolded spectrum image (n_pixels, n_channels), dense or sparse.

    Parameters
    ----------
    X : ndarray, scipy.sparse or Counts, shape (ny * nx, n_channels)
        Counts, pixels unfolded row-major; a sparse-format :class:`Counts` (the
        core's working format) is binned without any conversion.
    image_shape : (int, int)
        (ny, nx).
    factor : int or (int, int)
        Bin size (fy, fx); trailing rows/columns that do not fill a bin are cropped.
    n_threads : int or None
        Threads (0 or None: the OpenMP default).

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix of shape (ny // fy * nx // fx, n_channels)
        The same kind as X (CSR for sparse X and sparse Counts): summed counts.
        Sparse sums are computed in the core, without a dense or float64 copy of
        X; they are float32 when X holds float32 values and every sum stays
        exact in float32 (below 2**24), else float64, with sorted column indices.
    """
    if n_threads != 0:  # 0: the OpenMP default, as the estimators pass it on
        n_threads = resolve_threads(n_threads)
    if isinstance(X, Counts):
        counts = X
        if not counts.is_sparse:
            X = counts.dense
    elif sp.issparse(X):
        counts = to_counts(X, n_threads=n_threads)
    else:
        counts = None
    if counts is None or not counts.is_sparse:
        ny, nx = image_shape
        return bin_spatial(np.asarray(X).reshape(ny, nx, -1), factor).reshape(-1, X.shape[1])
    return _bin_csr(counts, image_shape, factor, n_threads)


def _bin_csr(counts: Counts, image_shape, factor, n_threads: int) -> sp.csr_matrix:
    ny, nx = image_shape
    fy, fx = as_factor(factor)
    if ny * nx != counts.shape[0]:
        raise ValueError(
            f"image_shape {image_shape} holds {ny * nx} pixels, X has {counts.shape[0]}"
        )
    if fy > ny or fx > nx:
        raise ValueError(f"factor ({fy}, {fx}) is larger than the image ({ny}, {nx})")
    values = counts.values
    largest = float(values.max()) if values.size else 0.0
    double_values = values.dtype != np.float32 or largest * fy * fx > _FLOAT32_EXACT_LIMIT
    n_binned = (ny // fy) * (nx // fx)
    # Upper bound: the binned matrix has at most the nonzeros of X.
    check_allocation(
        (n_binned + 1) * 8 + values.size * (4 + (8 if double_values else 4)), "the binned counts"
    )
    indptr, indices, sums = _core.bin_csr(
        counts.core, counts.shape[1], ny, nx, fy, fx, double_values, n_threads
    )
    binned = sp.csr_matrix((sums, indices, indptr), shape=(n_binned, counts.shape[1]), copy=False)
    binned.has_canonical_format = True  # sorted, no duplicates: the core writes it so
    return binned
