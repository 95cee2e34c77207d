"""Spatial binning of spectrum images: sum the counts of fy x fx neighbouring pixels."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from . import _core
from ._counts import resolve_threads

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
        uint8/16/32, int8/16/32/64, float16/32/64, bool.
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
    """
    fy, fx = as_factor(factor)
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"cube must be 3-D (ny, nx, n_channels), got shape {cube.shape}")
    if cube.dtype.kind == "c" or cube.dtype.kind not in "buif":
        raise TypeError(f"cube must hold real numbers, got dtype {cube.dtype}")
    if cube.dtype == np.uint64:
        raise TypeError("cube dtype uint64 is not supported: its sums could overflow; use int64")
    if cube.dtype in _WIDEN:
        cube = cube.astype(_WIDEN[cube.dtype])
    cube = np.ascontiguousarray(cube, dtype=cube.dtype.newbyteorder("="))
    return _core.bin_spatial(cube, fy, fx, remainder, resolve_threads(n_threads))


def binning_operator(image_shape, factor) -> sp.csr_matrix:
    """Sparse (n_binned_pixels, n_pixels) matrix of ones that sums pixels into bins.

    Pixels are unfolded row-major from ``image_shape = (ny, nx)``; trailing
    rows/columns that do not fill a bin are cropped.
    """
    ny, nx = image_shape
    fy, fx = as_factor(factor)
    if fy > ny or fx > nx:
        raise ValueError(f"factor ({fy}, {fx}) is larger than the image ({ny}, {nx})")
    nyb, nxb = ny // fy, nx // fx
    y, x = np.divmod(np.arange(ny * nx), nx)
    keep = (y < nyb * fy) & (x < nxb * fx)
    rows = (y[keep] // fy) * nxb + x[keep] // fx
    cols = np.flatnonzero(keep)
    ones = np.ones(cols.size, dtype=np.float32)
    return sp.csr_matrix((ones, (rows, cols)), shape=(nyb * nxb, ny * nx))


def bin_pixels(X, image_shape, factor):
    """Bin an unfolded spectrum image (n_pixels, n_channels), dense or sparse.

    Returns an array of the same kind (scipy CSR for sparse input) of shape
    (n_binned_pixels, n_channels).
    """
    if not sp.issparse(X):
        ny, nx = image_shape
        return bin_spatial(np.asarray(X).reshape(ny, nx, -1), factor).reshape(-1, X.shape[1])
    P = binning_operator(image_shape, factor)
    return (P @ sp.csr_matrix(X, dtype=np.float64)).tocsr()
