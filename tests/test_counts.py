"""Conversion of user counts into the working format, against scipy's own CSR."""

import numpy as np
import pytest
import scipy.sparse as sp

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
