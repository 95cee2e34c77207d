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
from ._memory import check_allocation
from ._validation import (
    FLOAT64_EXACT_LIMIT,
    check_counts,
    check_counts_values,
    check_n_threads,
)

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


def _check_values(values: np.ndarray, name: str, sparse_data: bool = False) -> None:
    check_counts_values(values, name, sparse_data=sparse_data)


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
        C-contiguous float32/float64 dense input of density >= 0.5, and CSR input
        or COO input in row order (canonical within rows) with int32 indices
        and float32/float64 values, are used without copying.
    """
    if sp.issparse(X):
        return _sparse_to_counts(X, name, n_threads)
    X = check_counts(X, name, ndim=2, check_values=False)  # the compiled scan checks them
    if X.dtype == bool:
        X = X.astype(np.uint8)  # 0 or 1: a view would pass on any other byte a bool holds
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    if not X.dtype.isnative:
        X = X.astype(X.dtype.newbyteorder("="))
    if X.dtype == np.uint64:
        check_counts_values(X, name)  # above 2**53 they are not exact in float64
    if X.dtype not in _CORE_DTYPES:
        # int8/int16 widen exactly; uint64 and long double go through float64.
        X = X.astype(np.int32 if X.dtype.kind == "i" else np.float64)
    if not (X.flags.c_contiguous or X.flags.f_contiguous):
        X = np.ascontiguousarray(X)
    # One compiled pass validates, counts the nonzeros per row and bounds the
    # maximum (exact above 2**24, never below 2**53 when above it); a second
    # copies the nonzeros. C and Fortran order, no copy.
    try:
        indptr, nonzero, max_value = _core.dense_scan(X, n_threads=n_threads)
    except ValueError:
        check_counts_values(X, name)  # names the first bad value and its index
        raise ValueError(
            f"{name} contains negative, NaN or infinite values; counts must be finite and >= 0"
        ) from None
    if max_value > FLOAT64_EXACT_LIMIT:
        check_counts_values(X, name)  # names the limit
    value_dtype = _value_dtype(X.dtype, max_value)
    check_allocation(_working_bytes(X, nonzero, value_dtype), f"the working copy of {name}")
    if nonzero < CSR_DENSITY_THRESHOLD * X.size:
        indices, values = _core.dense_fill(
            X, indptr, double_values=value_dtype == np.float64, n_threads=n_threads
        )
        return Counts(X.shape, indptr=indptr, indices=indices, values=values)
    dense = np.ascontiguousarray(X, dtype=value_dtype)
    return Counts(X.shape, dense=dense)


def _working_bytes(X: np.ndarray, nonzero: int, value_dtype: np.dtype) -> int:
    """Bytes the conversion allocates: CSR arrays, or the dense working copy, plus
    a contiguous copy of the input when it is not already in a usable layout."""
    n_rows, n_cols = X.shape
    copy = 0 if X.flags.c_contiguous else X.size * X.dtype.itemsize
    if nonzero < CSR_DENSITY_THRESHOLD * X.size:
        return copy + (n_rows + 1) * 8 + nonzero * (4 + value_dtype.itemsize)
    same = X.flags.c_contiguous and X.dtype == value_dtype
    return copy + (0 if same else X.size * value_dtype.itemsize)


def _sparse_to_counts(X, name: str, n_threads: int = 0) -> Counts:
    check_counts(X, name, ndim=2, check_values=False)  # the compiled pass checks them
    if X.shape[1] > np.iinfo(np.int32).max:
        raise ValueError(f"{name} has {X.shape[1]} channels; at most 2**31 - 1 are supported")
    check_allocation(X.nnz * 20 + (X.shape[0] + 1) * 8, f"the CSR working copy of {name}")
    if X.format == "coo":
        counts = _coo_in_row_order(X, name, n_threads)
        if counts is not None:
            return counts
    given = X
    X = X.tocsr()  # no copy for CSR; CSC and COO (duplicates summed) are converted by scipy
    converted = _convert_csr(
        X.indptr, X.indices, _core_data(X.data, name), X.shape, name, n_threads
    )
    if converted is None:
        # Unsorted or duplicate indices: scipy sorts and sums them, in place on
        # our own copy (never on the caller's matrix).
        if X is given or np.may_share_memory(X.data, getattr(given, "data", None)):
            X = X.copy()
        X.sum_duplicates()
        data = _core_data(X.data, name)
        converted = _convert_csr(X.indptr, X.indices, data, X.shape, name, n_threads)
    indices, values = converted
    indptr = X.indptr if X.indptr.dtype == np.int64 else X.indptr.astype(np.int64)
    return Counts(X.shape, indptr=indptr, indices=indices, values=values)


def _coo_in_row_order(X, name: str, n_threads: int):
    """Counts of a COO matrix whose entries are in row order and canonical
    within each row (as ``tocoo()`` and ``coo_matrix(dense)`` give them), from
    its own column and value arrays; None otherwise (scipy then sorts it)."""
    rows, cols = X.row, X.col
    if rows.dtype != cols.dtype or X.nnz > np.iinfo(rows.dtype).max:
        rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    try:
        indptr = _core.coo_row_offsets(np.ascontiguousarray(rows), X.shape[0], n_threads)
    except ValueError as err:
        problem = str(err).replace("counts: ", "")
        raise ValueError(f"{name} is not a valid sparse matrix: {problem}") from None
    if indptr is None:
        return None
    data = _core_data(X.data, name)
    converted = _convert_csr(indptr, np.ascontiguousarray(cols), data, X.shape, name, n_threads)
    if converted is None:
        return None
    indices, values = converted
    return Counts(
        X.shape, indptr=indptr.astype(np.int64, copy=False), indices=indices, values=values
    )


def _core_data(data: np.ndarray, name: str) -> np.ndarray:
    """Sparse values as a dtype the compiled pass takes (a copy only for the others)."""
    if data.dtype == bool:
        data = data.astype(np.uint8)  # 0 or 1, as for dense input
    if data.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold real numbers, got dtype {data.dtype}")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype == np.uint64:
        _check_values(data, name, sparse_data=True)  # above 2**53 they are not exact in float64
        return data.astype(np.int64)  # exact below 2**53; float32 values when small, as before
    if data.dtype not in _CORE_DTYPES:
        # int8/int16 widen exactly (float32 values), float16 and long double go to float64.
        data = data.astype(np.int32 if data.dtype.kind in "iu" else np.float64)
    return data


def _convert_csr(indptr, indices, data, shape, name: str, n_threads: int):
    """(indices int32, values float32/float64) from one compiled pass that also
    validates; the input arrays themselves when they already have those types.
    None when the indices are not canonical (unsorted or duplicated)."""
    if indices.dtype != indptr.dtype:
        index_type = np.promote_types(indices.dtype, indptr.dtype)
        indptr, indices = indptr.astype(index_type), indices.astype(index_type)
    # scipy leaves spare room after indptr[-1] (e.g. after eliminate_zeros()).
    nnz = int(indptr[-1]) if indptr.size else 0
    data, indices = data[:nnz], indices[:nnz]
    out_indices = None if indices.dtype == np.int32 else np.empty(nnz, np.int32)
    # Integer values go to float32 unless one exceeds 2**24 (then again to float64).
    value_dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)
    for _attempt in range(2):
        out_values = None if data.dtype == value_dtype else np.empty(nnz, value_dtype)
        try:
            canonical, max_value = _core.csr_convert(
                indptr, indices, data, shape[1], out_indices, out_values, n_threads
            )
        except ValueError as err:
            if "values" in str(err):
                _check_values(data, name, sparse_data=True)  # names the first bad value
            problem = str(err).replace("counts: ", "")
            raise ValueError(f"{name} is not a valid sparse matrix: {problem}") from None
        if not canonical:
            return None
        if max_value > FLOAT64_EXACT_LIMIT:
            _check_values(data, name, sparse_data=True)  # names the limit
        if _value_dtype(data.dtype, max_value) == value_dtype:
            break
        value_dtype = np.dtype(np.float64)
    indices = indices if out_indices is None else out_indices
    values = data if out_values is None else out_values
    return indices, values


def resolve_threads(n_threads) -> int:
    """Validate ``n_threads``: None -> 0 (OpenMP default, honours OMP_NUM_THREADS)."""
    return check_n_threads(n_threads)
