"""Conversion of user counts into the working format, against scipy's own CSR."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from psnmf import _core
from psnmf._counts import to_counts

DENSE_DTYPES = [np.uint8, np.uint16, np.uint32, np.int32, np.int64, np.float32, np.float64]


def sparse_counts(n_rows, n_cols, density, seed=0, high=200):
    """Integer counts with empty rows and columns, as float64 dense."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, high, (n_rows, n_cols)) * (rng.random((n_rows, n_cols)) < density)
    counts[::7] = 0  # empty rows
    counts[:, ::11] = 0  # empty columns
    return counts.astype(np.float64)


def assert_matches_scipy(counts, reference):
    expected = sp.csr_matrix(reference)
    assert counts.is_sparse
    assert counts.shape == reference.shape
    assert counts.indptr.dtype == np.int64 and counts.indices.dtype == np.int32
    np.testing.assert_array_equal(counts.indptr, expected.indptr)
    np.testing.assert_array_equal(counts.indices, expected.indices)
    np.testing.assert_array_equal(counts.values, expected.data.astype(counts.values.dtype))


@pytest.mark.parametrize("dtype", DENSE_DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_dense_to_csr_matches_scipy(dtype, order, n_threads):
    # 130 columns: two full groups of 64 and a remainder; 4099 rows span the
    # column-major row blocks unevenly.
    reference = sparse_counts(4099, 130, 0.1, seed=int(np.dtype(dtype).itemsize))
    data = np.asarray(reference.astype(dtype), order=order)
    counts = to_counts(data, n_threads=n_threads)
    assert_matches_scipy(counts, reference)
    assert counts.values.dtype == np.float32 or np.dtype(dtype) == np.float64


@pytest.mark.parametrize("shape", [(1, 1), (1, 200), (200, 1), (3, 64), (5, 65)])
def test_dense_edge_shapes(shape):
    reference = sparse_counts(*shape, 0.3, seed=5)
    reference[0, -1] = 3  # at least one nonzero, at the last column
    for order in "CF":
        counts = to_counts(np.asarray(reference.astype(np.uint16), order=order))
        if np.count_nonzero(reference) < 0.5 * reference.size:
            assert_matches_scipy(counts, reference)
        else:
            np.testing.assert_array_equal(counts.dense, reference)


def test_non_contiguous_input_is_converted():
    reference = sparse_counts(300, 90, 0.1, seed=7)
    strided = reference.astype(np.int32)[::2, ::3]
    assert not (strided.flags.c_contiguous or strided.flags.f_contiguous)
    assert_matches_scipy(to_counts(strided), reference[::2, ::3])


def test_large_integer_counts_keep_float64_values():
    reference = sparse_counts(50, 40, 0.2, seed=3)
    reference[4, 5] = 2**24 + 1  # not exact in float32
    for dtype in (np.int64, np.uint32):
        counts = to_counts(reference.astype(dtype))
        assert counts.values.dtype == np.float64
        assert_matches_scipy(counts, reference)
    small = to_counts(sparse_counts(50, 40, 0.2, seed=3).astype(np.int64))
    assert small.values.dtype == np.float32


def test_mostly_nonzero_input_stays_dense():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 50, (40, 30)).astype(np.uint16)
    X[0, 0] = 0
    for order in "CF":
        counts = to_counts(np.asarray(X, order=order))
        assert not counts.is_sparse
        assert counts.dense.flags.c_contiguous and counts.dense.dtype == np.float32
        np.testing.assert_array_equal(counts.dense, X)


@pytest.mark.parametrize(
    ("bad", "dtype"),
    [
        (-1, np.int32),
        (-(2**62), np.int64),
        (-0.5, np.float32),
        (np.nan, np.float64),
        (np.inf, np.float32),
        (-np.inf, np.float64),
    ],
)
@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_invalid_values_raise(bad, dtype, order):
    X = sparse_counts(20, 70, 0.2).astype(dtype)
    X[13, 66] = bad
    # the compiled scan finds it; the message names the parameter, the kind and the index
    with pytest.raises(ValueError, match=r"counts contains (negative|NaN|inf).*\(13, 66\)"):
        to_counts(np.asarray(X, order=order), name="counts")


@pytest.mark.parametrize(
    ("bad", "dtype"), [(-1, np.int64), (np.nan, np.float32), (-0.5, np.float64)]
)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("at", [(0, 0), (5, 3), (40, 31), (69, 40), (69, 69)])
def test_dense_invalid_values_raise_anywhere(bad, dtype, order, at):
    # Inside the 32-value vector blocks of either order, and in their remainders.
    X = patterned_counts(70, 70, seed=1).astype(dtype)
    X[at] = bad
    with pytest.raises(ValueError, match=rf"counts contains (negative|NaN).*\({at[0]}, {at[1]}\)"):
        to_counts(np.asarray(X, order=order), name="counts", n_threads=2)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_sparse_formats_match_scipy(fmt, dtype):
    reference = sparse_counts(300, 120, 0.1, seed=11)
    X = sp.csr_matrix(reference.astype(dtype)).asformat(fmt)
    assert_matches_scipy(to_counts(X), reference)


def test_sparse_int64_indices_and_duplicates():
    reference = sparse_counts(200, 80, 0.1, seed=13)
    csr = sp.csr_matrix(reference)
    wide = sp.csr_matrix(
        (csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)), shape=csr.shape
    )
    assert_matches_scipy(to_counts(wide), reference)
    coo = sp.coo_matrix(reference)
    doubled = sp.coo_matrix(
        (np.concatenate([coo.data, coo.data]), (np.tile(coo.row, 2), np.tile(coo.col, 2))),
        shape=coo.shape,
    )
    assert_matches_scipy(to_counts(doubled), 2 * reference)


def csr_from_arrays(reference, indices_dtype, data_dtype, cls=sp.csr_matrix):
    csr = sp.csr_matrix(reference)
    return cls(
        (
            csr.data.astype(data_dtype),
            csr.indices.astype(indices_dtype),
            csr.indptr.astype(indices_dtype),
        ),
        shape=csr.shape,
    )


@pytest.mark.parametrize("cls", [sp.csr_matrix, sp.csr_array])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize(
    "data_dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.int64, np.uint64, np.float32]
)
def test_sparse_index_and_value_types_match_scipy(cls, index_dtype, data_dtype):
    reference = sparse_counts(500, 130, 0.1, seed=17)
    counts = to_counts(csr_from_arrays(reference, index_dtype, data_dtype, cls), n_threads=2)
    assert_matches_scipy(counts, reference)
    assert counts.values.dtype == np.float32  # small integer counts are exact in float32


@pytest.mark.parametrize("data_dtype", [np.int32, np.uint32, np.int64, np.uint64])
def test_sparse_large_integer_counts_keep_float64_values(data_dtype):
    reference = sparse_counts(50, 40, 0.2, seed=3)
    reference[4, 5] = 2**24 + 1  # not exact in float32
    counts = to_counts(csr_from_arrays(reference, np.int64, data_dtype))
    assert counts.values.dtype == np.float64
    assert_matches_scipy(counts, reference)
    reference[4, 5] = 2**24  # exact in float32: stays float32
    assert to_counts(csr_from_arrays(reference, np.int32, data_dtype)).values.dtype == np.float32


def test_sparse_unsorted_rows_are_sorted_without_touching_the_input():
    reference = sparse_counts(300, 90, 0.2, seed=19)
    csr = sp.csr_matrix(reference)
    rng = np.random.default_rng(0)
    indices, data = csr.indices.copy(), csr.data.copy()
    for i in range(0, csr.shape[0], 3):  # reverse or shuffle some rows
        row = slice(csr.indptr[i], csr.indptr[i + 1])
        order = rng.permutation(row.stop - row.start)
        indices[row], data[row] = indices[row][order], data[row][order]
    unsorted = sp.csr_matrix((data, indices, csr.indptr.copy()), shape=csr.shape)
    unsorted.has_sorted_indices = False
    kept = (unsorted.indices.copy(), unsorted.data.copy())
    assert_matches_scipy(to_counts(unsorted), reference)
    np.testing.assert_array_equal(unsorted.indices, kept[0])
    np.testing.assert_array_equal(unsorted.data, kept[1])


def test_sparse_duplicates_in_csr_and_csc_are_summed():
    reference = sparse_counts(200, 80, 0.1, seed=23)
    csr = sp.csr_matrix(reference)
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    doubled_rows = np.concatenate([rows, rows])
    doubled_cols = np.concatenate([csr.indices, csr.indices]).astype(np.int64)
    doubled_data = np.concatenate([csr.data, csr.data]).astype(np.int64)
    order = np.argsort(doubled_rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=csr.shape[0]) * 2)])
    dup_csr = sp.csr_matrix(
        (doubled_data[order], doubled_cols[order], indptr.astype(np.int64)), shape=csr.shape
    )
    assert_matches_scipy(to_counts(dup_csr), 2 * reference)
    dup_csc = sp.csc_matrix(
        (doubled_data, (doubled_rows, doubled_cols)), shape=csr.shape
    )  # summed by scipy's constructor or by to_counts
    assert_matches_scipy(to_counts(dup_csc), 2 * reference)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_coo_row_offsets_match_searchsorted(index_dtype, n_threads):
    # Empty rows first, in runs and last; 8 threads for 9 entries leave slices
    # of one entry and empty ones.
    rng = np.random.default_rng(31)
    for n_rows, nnz in [(50, 0), (50, 9), (50, 1), (1, 6), (3000, 20000)]:
        rows = np.sort(rng.integers(3, max(n_rows - 5, 4), nnz)) if n_rows > 5 else np.zeros(nnz)
        rows = rows.astype(index_dtype)
        indptr = _core.coo_row_offsets(rows, n_rows, n_threads)
        assert indptr.dtype == index_dtype
        expected = np.searchsorted(rows, np.arange(n_rows + 1), side="left")
        np.testing.assert_array_equal(indptr, expected)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_coo_row_offsets_find_every_unsorted_place(n_threads):
    # One descent anywhere, including at the boundaries of the threads' slices.
    rows = np.repeat(np.arange(100), 3).astype(np.int32)
    for at in range(1, rows.size):
        unsorted = rows.copy()
        unsorted[at - 1], unsorted[at] = rows[at - 1] + 1, rows[at - 1]
        assert _core.coo_row_offsets(unsorted, 101, n_threads) is None, at


@pytest.mark.parametrize(("at", "bad"), [(0, -1), (-1, 40), (-1, 2**31 - 1)])
def test_coo_row_out_of_range_raises(at, bad):
    X = sp.coo_matrix(sparse_counts(40, 30, 0.3, seed=37))
    X.row[at] = bad  # sorted still; after the scipy constructor's own check
    with pytest.raises(ValueError, match="counts is not a valid sparse matrix: COO row index"):
        to_counts(X, name="counts", n_threads=2)


def test_coo_row_offsets_reject_bad_arguments():
    rows = np.arange(5, dtype=np.int32)
    with pytest.raises(TypeError, match="rows: expected int32 or int64"):
        _core.coo_row_offsets(rows.astype(np.float64), 5)
    with pytest.raises(ValueError, match="n_rows: expected at least 1"):
        _core.coo_row_offsets(rows, 0)
    with pytest.raises(ValueError, match="rows"):
        _core.coo_row_offsets(np.arange(10, dtype=np.int32)[::2], 5)  # not contiguous


def test_coo_in_row_order_is_used_without_copies():
    reference = sparse_counts(300, 120, 0.1, seed=41)
    X = sp.coo_matrix(reference.astype(np.float32))
    counts = to_counts(X, n_threads=2)
    assert_matches_scipy(counts, reference)
    assert np.shares_memory(counts.indices, X.col) and np.shares_memory(counts.values, X.data)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_coo_out_of_order_or_duplicated_matches_scipy(n_threads):
    reference = sparse_counts(300, 120, 0.1, seed=43)
    coo = sp.coo_matrix(reference)
    rng = np.random.default_rng(1)
    shuffled = rng.permutation(coo.nnz)
    within_rows = np.lexsort((rng.random(coo.nnz), coo.row))  # rows in order, columns not
    adjacent = np.repeat(np.arange(coo.nnz), 2)  # every entry twice, next to itself
    for order, factor in [(shuffled, 1), (within_rows, 1), (adjacent, 2)]:
        X = sp.coo_matrix((coo.data[order], (coo.row[order], coo.col[order])), shape=coo.shape)
        assert_matches_scipy(to_counts(X, n_threads=n_threads), factor * reference)


@pytest.mark.parametrize("fmt", [None, "csr", "coo"])
def test_bool_counts_are_0_or_1_whatever_byte_they_hold(fmt):
    # numpy reads any nonzero byte of a bool as True (frombuffer, views); found by fuzzing:
    # the conversion passed the bytes on as counts (78 for a True).
    X = np.frombuffer(bytes([78, 0, 2, 1, 0, 255]), dtype=bool).reshape(2, 3)
    counts = to_counts(X if fmt is None else sp.csr_matrix(X).asformat(fmt))
    dense = (
        counts.dense
        if counts.dense is not None
        else sp.csr_matrix(
            (counts.values, counts.indices, counts.indptr), shape=counts.shape
        ).toarray()
    )
    np.testing.assert_array_equal(dense, X.astype(np.float64))


def test_sparse_explicit_zeros_are_kept():
    csr = sp.csr_matrix(
        (np.array([0.0, 2.0, 0.0]), np.array([0, 2, 1]), np.array([0, 2, 3])), shape=(2, 3)
    )
    counts = to_counts(csr)
    np.testing.assert_array_equal(counts.indptr, [0, 2, 3])
    np.testing.assert_array_equal(counts.indices, [0, 2, 1])
    np.testing.assert_array_equal(counts.values, [0.0, 2.0, 0.0])


@pytest.mark.parametrize(
    ("bad", "dtype", "message"),
    [
        (-1, np.int64, r"counts contains negative values .* at stored entry \(7,\)"),
        (np.nan, np.float64, r"counts contains NaN at stored entry \(7,\)"),
        (np.inf, np.float32, r"counts contains infinity at stored entry \(7,\)"),
        (2.0**60, np.float64, r"2\*\*53"),
        (2**60, np.int64, r"2\*\*53"),
    ],
)
def test_sparse_invalid_values_raise(bad, dtype, message):
    reference = sparse_counts(40, 30, 0.3, seed=29)
    X = csr_from_arrays(reference, np.int64, dtype)
    X.data[7] = bad
    with pytest.raises(ValueError, match=message):
        to_counts(X, name="counts")


def test_sparse_malformed_structure_raises():
    data, indices = np.array([1.0, 2.0]), np.array([0, 5], dtype=np.int32)
    indptr = np.array([0, 1, 2], dtype=np.int32)
    out_of_range = sp.csr_matrix((2, 3))
    out_of_range.data, out_of_range.indices, out_of_range.indptr = data, indices, indptr
    with pytest.raises(ValueError, match="counts is not a valid sparse matrix: .*out of range"):
        to_counts(out_of_range, name="counts")
    decreasing = sp.csr_matrix((2, 3))
    decreasing.data, decreasing.indices = data, np.array([0, 1], dtype=np.int32)
    decreasing.indptr = np.array([0, 2, 1], dtype=np.int32)
    with pytest.raises(ValueError, match="counts is not a valid sparse matrix: .*indptr"):
        to_counts(decreasing, name="counts")


@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_int64_just_above_2_53_raises(order):
    # 2**53 + 1 rounds to 2**53 in float64: the compiled scan must not let it pass.
    X = sparse_counts(300, 70, 0.2).astype(np.int64)
    X[299, 69] = 2**53
    assert to_counts(np.asarray(X, order=order)).values.dtype == np.float64
    X[299, 69] = 2**53 + 1
    with pytest.raises(ValueError, match=r"counts holds counts up to 9007199254740993 > 2\*\*53"):
        to_counts(np.asarray(X, order=order), name="counts")


def patterned_counts(n_rows, n_cols, seed):
    """Rows of every kind the kernels treat apart: sparse, empty, full, ending
    with a nonzero, mostly nonzero."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 200, (n_rows, n_cols)) * (rng.random((n_rows, n_cols)) < 0.15)
    counts[1::5] = 0
    counts[2::5] = rng.integers(1, 200, counts[2::5].shape)
    counts[3::5, -1] = 7
    counts[4::5] = rng.integers(1, 200, counts[4::5].shape) * (
        rng.random(counts[4::5].shape) < 0.7
    )
    return counts.astype(np.float64)


@pytest.mark.parametrize("dtype", DENSE_DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dense_row_lengths_and_row_kinds_match_scipy(dtype, order, n_threads):
    # Row lengths around the 8-, 32- and 64-value groups of the kernels; 300 rows
    # span several column-major tiles with a remainder.
    for n_cols in (1, 7, 9, 31, 32, 33, 63, 64, 65, 100):
        reference = patterned_counts(300, n_cols, seed=n_cols)
        counts = to_counts(np.asarray(reference.astype(dtype), order=order), n_threads=n_threads)
        if np.count_nonzero(reference) < 0.5 * reference.size:
            assert_matches_scipy(counts, reference)
        else:
            np.testing.assert_array_equal(counts.dense, reference)


def _csr_in_child(kernels):
    """dense_scan + dense_fill of varied inputs in a child process with PSNMF_KERNELS
    set (the kernels are chosen once per process)."""
    code = f"""
import sys
import numpy as np
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_counts import patterned_counts
from psnmf import _core
arrays = {{"kernels": np.array(_core.convert_kernels())}}
for dtype in {[np.dtype(d).name for d in DENSE_DTYPES]!r}:
    for n_rows, n_cols in ((300, 65), (2100, 33), (97, 1)):
        x = patterned_counts(n_rows, n_cols, seed=n_cols)
        if dtype == "uint16":
            x[::3, ::4] *= 256  # zero low bytes: the 16-bit lanes of the AVX-512 fill
        if dtype == "uint32":
            x[::3, ::4] *= 2**23  # above 2**31: the scalar fallback of the vector fill
        if dtype == "int64":
            x[::3, ::4] *= 2**33
        if dtype in ("float32", "float64"):
            x = x / 10  # values that round in float32
        x = x.astype(dtype)
        for order in "CF":
            a = np.asarray(x, order=order)
            for n_threads in (1, 2):
                indptr, nnz, high = _core.dense_scan(a, n_threads=n_threads)
                for double_values in (False, True):
                    indices, values = _core.dense_fill(a, indptr, double_values, n_threads)
                    key = f"{{dtype}}-{{n_rows}}-{{order}}-{{n_threads}}-{{double_values}}"
                    arrays[key + "-indptr"] = indptr
                    arrays[key + "-indices"] = indices
                    arrays[key + "-values"] = values
                    arrays[key + "-max"] = np.array(high)
np.savez(sys.stdout.buffer, **arrays)
"""
    env = dict(os.environ, PSNMF_KERNELS=kernels)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    return np.load(io.BytesIO(out.stdout))


@pytest.mark.parametrize("kernels", ["default", "avx_fma"])
def test_vectorised_and_portable_conversion_agree_bitwise(kernels):
    portable = _csr_in_child("portable")
    vectorised = _csr_in_child(kernels)  # avx_fma caps the conversion at AVX2
    assert str(portable["kernels"]) == "portable"
    allowed = ("avx512", "avx2", "portable") if kernels == "default" else ("avx2", "portable")
    assert str(vectorised["kernels"]) in allowed
    assert sorted(portable.files) == sorted(vectorised.files)
    for key in portable.files:
        if key == "kernels":
            continue
        a, b = portable[key], vectorised[key]
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert a.tobytes() == b.tobytes(), key
