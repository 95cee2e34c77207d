"""Conversion of user counts into the core's working format, once per call.

The working format is either CSR (indptr int64, indices int32, values float32 or
float64) or a dense C-contiguous float32/float64 matrix. Sparse input stays
sparse; dense input becomes CSR when most of it is zero (the usual case for
low-dose EDX), so the kernels touch only the nonzeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _core

# Dense input with fewer nonzeros than this fraction is converted to CSR.
CSR_DENSITY_THRESHOLD = 0.5
# Counts above 2**24 are not exact in float32: keep float64 values then.
_FLOAT32_EXACT_LIMIT = 2**24
# Dense input types the compiled conversion takes directly.
_CORE_DTYPES = tuple(
    np.dtype(t)
    for t in (np.uint8, np.uint16, np.uint32, np.int32, np.int64, np.float32, np.float64)
)


@dataclass(frozen=True)
class Counts:
    """Counts matrix (n_pixels, n_channels) in the working format of the core."""

    shape: tuple[int, int]
    dense: np.ndarray | None = None
    indptr: np.ndarray | None = None
    indices: np.ndarray | None = None
    values: np.ndarray | None = None

    @property
    def is_sparse(self) -> bool:
        return self.dense is None

    @property
    def core(self):
        """The object the compiled core takes: a CSR tuple or the dense array."""
        if self.is_sparse:
            return (self.indptr, self.indices, self.values)
        return self.dense

    def multiply(self, dense: np.ndarray, *, transpose: bool = False, n_threads: int = 0):
        """``X @ dense`` (dense: (n_channels, w)) or ``X.T @ dense`` (dense: (n_pixels, w)).

        Summed over the nonzeros in a fixed order by the core, so CSR and dense
        counts give bitwise identical results for any thread count.
        """
        dense = np.ascontiguousarray(dense, dtype=np.float64)
        return _core.multiply(self.core, self.shape[1], dense, transpose, n_threads)

    def pixel_totals(self, n_threads: int = 0) -> np.ndarray:
        """Counts per pixel, shape (n_pixels,), float64."""
        return self.multiply(np.ones((self.shape[1], 1)), n_threads=n_threads)[:, 0]

    def total(self) -> float:
        return float(self.pixel_totals().sum())

    def mean(self) -> float:
        return self.total() / (self.shape[0] * self.shape[1])


def _value_dtype(dtype: np.dtype, max_value) -> np.dtype:
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind == "f":
        return np.dtype(np.float64)
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        return np.dtype(np.float32)
    return np.dtype(np.float64 if max_value > _FLOAT32_EXACT_LIMIT else np.float32)


def _check_values(values: np.ndarray, name: str) -> None:
    if values.size == 0:
        return
    if values.dtype.kind == "f":
        # min/max propagate NaN and expose inf without a full-size boolean temporary.
        low, high = values.min(), values.max()
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"{name} contains NaN or infinity")
    elif values.dtype.kind in "iu":
        low = values.min()
    else:
        raise TypeError(f"{name} must hold real numbers, got dtype {values.dtype}")
    if low < 0:
        raise ValueError(f"{name} contains negative values (minimum {low}); counts must be >= 0")


def to_counts(X, *, name: str = "X", n_threads: int = 0) -> Counts:
    """Convert counts to the working format.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix, shape (n_pixels, n_channels)
        Non-negative counts of any real numeric dtype.
    name : str
        Name used in error messages.
    n_threads : int
        Threads for the conversion (0: OpenMP default).

    Returns
    -------
    Counts
        C-contiguous float32/float64 dense input of density >= 0.5 and CSR input
        with int32 indices and float32/float64 values are used without copying.
    """
    if sp.issparse(X):
        return _sparse_to_counts(X, name)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_pixels, n_channels), got shape {X.shape}")
    if X.dtype == bool:
        X = X.view(np.uint8)
    if X.dtype.kind not in "uif" or X.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    if not X.dtype.isnative:
        X = X.astype(X.dtype.newbyteorder("="))
    if X.dtype not in _CORE_DTYPES:
        # int8/int16 widen exactly; uint64 and long double go through float64.
        X = X.astype(np.int32 if X.dtype.kind == "i" else np.float64)
    if not (X.flags.c_contiguous or X.flags.f_contiguous):
        X = np.ascontiguousarray(X)
    # One compiled pass validates, counts the nonzeros per row and finds the
    # maximum; a second copies the nonzeros. C and Fortran order, no copy.
    try:
        indptr, nonzero, max_value = _core.dense_scan(X, n_threads=n_threads)
    except ValueError:
        raise ValueError(
            f"{name} contains negative, NaN or infinite values; counts must be finite and >= 0"
        ) from None
    value_dtype = _value_dtype(X.dtype, max_value)
    if nonzero < CSR_DENSITY_THRESHOLD * X.size:
        indices, values = _core.dense_fill(
            X, indptr, double_values=value_dtype == np.float64, n_threads=n_threads
        )
        return Counts(X.shape, indptr=indptr, indices=indices, values=values)
    dense = np.ascontiguousarray(X, dtype=value_dtype)
    return Counts(X.shape, dense=dense)


def _sparse_to_counts(X, name: str) -> Counts:
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_pixels, n_channels), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    X = X.tocsr()
    if not X.has_canonical_format:
        # Duplicate entries would each enter x log(x / lambda) separately.
        X = X.copy()
        X.sum_duplicates()
    data = X.data
    if data.dtype == bool:
        data = data.view(np.uint8)
    if data.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold real numbers, got dtype {data.dtype}")
    _check_values(data, name)
    max_value = data.max() if data.size and data.dtype.kind in "ui" else 0
    values = np.ascontiguousarray(data, dtype=_value_dtype(data.dtype, max_value))
    return Counts(
        X.shape,
        indptr=np.ascontiguousarray(X.indptr, dtype=np.int64),
        indices=np.ascontiguousarray(X.indices, dtype=np.int32),
        values=values,
    )


def resolve_threads(n_threads) -> int:
    """Validate ``n_threads``: None -> 0 (OpenMP default, honours OMP_NUM_THREADS)."""
    if n_threads is None:
        return 0
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be None or a positive int, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return int(n_threads)
