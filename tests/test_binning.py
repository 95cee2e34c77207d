"""bin_spatial against numpy's reshape-and-sum, for every supported dtype."""

import numpy as np
import pytest
import scipy.sparse as sp

from psnmf import bin_spatial
from psnmf.binning import bin_pixels

DTYPES = [np.uint8, np.uint16, np.uint32, np.int32, np.int64, np.float32, np.float64]
FACTORS = [1, 2, (2, 3), (3, 2), 4, (7, 1), (1, 9)]


def numpy_bin(cube, fy, fx):
    ny, nx, c = cube.shape
    nyb, nxb = ny // fy, nx // fx
    cropped = cube[: nyb * fy, : nxb * fx]
    return cropped.reshape(nyb, fy, nxb, fx, c).sum(axis=(1, 3))


def random_cube(dtype, shape=(7, 9, 5), seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        high = min(np.iinfo(dtype).max, 1000)
        return rng.integers(0, high, size=shape, endpoint=True).astype(dtype)
    return rng.gamma(0.5, 3.0, size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factor", FACTORS)
def test_equals_numpy_reshape_sum(dtype, factor):
    cube = random_cube(dtype)
    fy, fx = (factor, factor) if isinstance(factor, int) else factor
    expected = numpy_bin(cube, fy, fx)
    binned = bin_spatial(cube, factor)
    assert binned.dtype == expected.dtype  # numpy widens integer sums the same way
    if np.issubdtype(dtype, np.integer):
        assert np.array_equal(binned, expected)
    else:
        np.testing.assert_allclose(binned, expected, rtol=2e-7 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_preserves_total_counts_when_factor_divides(dtype):
    cube = random_cube(dtype, shape=(8, 12, 6))
    binned = bin_spatial(cube, (4, 3), remainder="error")
    assert binned.shape == (2, 4, 6)
    # float32 sums are accumulated in float64 but stored as float32.
    rel = 1e-6 if dtype == np.float32 else 1e-12
    assert binned.sum(dtype=np.float64) == pytest.approx(cube.sum(dtype=np.float64), rel=rel)


def test_integer_sums_do_not_overflow():
    cube = np.full((16, 16, 3), 255, dtype=np.uint8)
    assert np.all(bin_spatial(cube, 16) == 255 * 256)
    big = np.full((4, 4, 2), np.iinfo(np.uint32).max, dtype=np.uint32)
    assert np.all(bin_spatial(big, 4) == 16 * int(np.iinfo(np.uint32).max))
    assert bin_spatial(np.full((2, 2, 1), 2**31 - 1, dtype=np.int32), 2).dtype == np.int64


def test_remainder_policy():
    cube = random_cube(np.uint16, shape=(7, 9, 4))
    assert bin_spatial(cube, 2).shape == (3, 4, 4)  # crop is the default
    with pytest.raises(ValueError, match="does not divide"):
        bin_spatial(cube, 2, remainder="error")
    with pytest.raises(ValueError, match="remainder"):
        bin_spatial(cube, 2, remainder="pad")


def test_layouts_and_byte_orders_give_the_same_result():
    cube = random_cube(np.uint16, shape=(6, 8, 5))
    expected = bin_spatial(cube, 2)
    assert np.array_equal(bin_spatial(np.asfortranarray(cube), 2), expected)
    assert np.array_equal(bin_spatial(cube.astype(">u2"), 2), expected)
    strided = np.zeros((6, 8, 10), dtype=np.uint16)
    strided[..., ::2] = cube
    assert np.array_equal(bin_spatial(strided[..., ::2], 2), expected)
    readonly = cube.copy()
    readonly.flags.writeable = False
    assert np.array_equal(bin_spatial(readonly, 2), expected)


@pytest.mark.parametrize(
    ("factor", "error", "match"),
    [
        (0, ValueError, ">= 1"),
        ((2, -1), ValueError, ">= 1"),
        (2.5, TypeError, "integers"),
        (10, ValueError, "larger than the image"),
        ((1, 2, 3), ValueError, "pair"),
    ],
)
def test_bad_factors(factor, error, match):
    with pytest.raises(error, match=match):
        bin_spatial(random_cube(np.uint8, shape=(6, 8, 3)), factor)


def test_bad_cubes():
    with pytest.raises(ValueError, match="3-D"):
        bin_spatial(np.zeros((4, 4)), 2)
    with pytest.raises(TypeError, match="real numbers"):
        bin_spatial(np.zeros((4, 4, 2), dtype=complex), 2)


def test_sparse_unfolded_binning_equals_dense():
    cube = random_cube(np.uint16, shape=(7, 9, 5))
    X = cube.reshape(-1, 5)
    expected = bin_spatial(cube, (2, 3)).reshape(-1, 5)
    assert np.array_equal(bin_pixels(X, (7, 9), (2, 3)), expected)
    binned_sparse = bin_pixels(sp.csr_matrix(X), (7, 9), (2, 3))
    assert sp.issparse(binned_sparse)
    assert np.array_equal(binned_sparse.toarray(), expected)


def sparse_counts(shape, density, dtype, seed=0, high=20):
    """CSR (ny * nx, C) of integer counts with stored zeros and unsorted indices."""
    ny, nx, c = shape
    rng = np.random.default_rng(seed)
    X = sp.random(ny * nx, c, density=density, format="coo", random_state=rng)
    X.data = np.floor(X.data * high).astype(dtype)  # some become stored zeros
    X = X.tocsr()
    for row in range(X.shape[0]):  # reverse each row: unsorted column indices
        start, stop = X.indptr[row], X.indptr[row + 1]
        X.indices[start:stop] = X.indices[start:stop][::-1].copy()
        X.data[start:stop] = X.data[start:stop][::-1].copy()
    X.has_sorted_indices = False
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
@pytest.mark.parametrize("factor", [1, 2, (2, 3), (3, 2), (7, 1), (1, 9)])
@pytest.mark.parametrize("density", [0.02, 0.4])
def test_sparse_binning_equals_numpy(dtype, factor, density):
    shape = (7, 9, 11)
    X = sparse_counts(shape, density, dtype)
    fy, fx = (factor, factor) if isinstance(factor, int) else factor
    expected = numpy_bin(X.toarray().astype(np.float64).reshape(shape), fy, fx).reshape(-1, 11)
    for n_threads in (1, 2, 3):
        binned = bin_pixels(X, shape[:2], factor, n_threads=n_threads)
        assert sp.isspmatrix_csr(binned)
        assert np.array_equal(binned.toarray(), expected)
        # Canonical: ascending column indices, no duplicates, no stored zeros.
        assert np.all(binned.data > 0)
        for row in range(binned.shape[0]):
            assert np.all(np.diff(binned.indices[binned.indptr[row] : binned.indptr[row + 1]]) > 0)


def test_sparse_binning_alternates_sparse_and_dense_bins():
    # Bins with a few entries are summed through a list of touched channels, bins
    # with many through a dense accumulator: each kind must leave the
    # accumulator clean for the next, whatever the order they come in.
    rng = np.random.default_rng(3)
    ny, nx, n_channels, f = 8, 12, 64, 2
    cube = np.zeros((ny, nx, n_channels))
    # Every transition between the kinds, in row order (one thread sees them in turn).
    kinds = ["sparse", "dense", "dense", "empty", "sparse", "sparse"]
    kinds += ["dense", "empty", "dense", "sparse", "empty", "dense"]
    for b, kind in enumerate(kinds):
        by, bx = divmod(b, nx // f)
        block = cube[by * f : (by + 1) * f, bx * f : (bx + 1) * f]
        if kind == "sparse":
            block[0, 1, rng.integers(n_channels)] = rng.integers(1, 5)
        elif kind == "dense":
            block[...] = rng.poisson(2.0, block.shape) * (rng.random(block.shape) < 0.8)
    X = sp.csr_matrix(cube.reshape(-1, n_channels).astype(np.float32))
    expected = numpy_bin(cube, f, f).reshape(-1, n_channels)
    binned = bin_pixels(X, (ny, nx), f, n_threads=1)
    assert np.array_equal(binned.toarray(), expected)
    assert np.all(binned.data > 0)


def test_sparse_binning_value_type():
    X = sparse_counts((8, 8, 6), 0.3, np.float32)
    # float32 counts stay float32 while every sum is exact in float32 ...
    assert bin_pixels(X, (8, 8), 4).dtype == np.float32
    # ... float64 beyond 2**24, and for float64 counts.
    big = X.copy()
    big.data[big.data > 0] = 2.0**21 + 1
    binned = bin_pixels(big, (8, 8), 4)
    assert binned.dtype == np.float64
    assert np.array_equal(
        binned.toarray(),
        numpy_bin(big.toarray().astype(float).reshape(8, 8, 6), 4, 4).reshape(-1, 6),
    )
    assert bin_pixels(X.astype(np.float64), (8, 8), 4).dtype == np.float64


def test_sparse_binning_empty_and_bad_input():
    empty = sp.csr_matrix((12, 4), dtype=np.float32)
    binned = bin_pixels(empty, (3, 4), 2)
    assert binned.shape == (2, 4) and binned.nnz == 0
    X = sparse_counts((4, 4, 3), 0.5, np.float64)
    X.data[0] = -1.0
    with pytest.raises(ValueError, match="negative"):
        bin_pixels(X, (4, 4), 2)
    X.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bin_pixels(X, (4, 4), 2)
    with pytest.raises(ValueError, match="larger than the image"):
        bin_pixels(sparse_counts((4, 4, 3), 0.5, np.float64), (4, 4), 5)
    with pytest.raises(ValueError, match="holds 15 pixels"):
        bin_pixels(sparse_counts((4, 4, 3), 0.5, np.float64), (3, 5), 2)


def test_binning_working_format_counts():
    from psnmf._counts import to_counts

    X = sparse_counts((6, 8, 5), 0.3, np.float32)
    expected = bin_pixels(X, (6, 8), (3, 2)).toarray()
    sparse = to_counts(X)
    assert sparse.is_sparse
    assert np.array_equal(bin_pixels(sparse, (6, 8), (3, 2)).toarray(), expected)
    dense = to_counts(X.toarray() + 1)  # no zeros: the dense working format
    assert not dense.is_sparse
    assert np.array_equal(bin_pixels(dense, (6, 8), (3, 2)), expected + 6)


@pytest.mark.parametrize(
    "n_threads, error, match",
    [(-1, ValueError, "n_threads must be >= 1"), ("2", TypeError, "n_threads must be None")],
)
def test_bin_pixels_rejects_bad_thread_counts(n_threads, error, match):
    X = sp.random(16, 8, density=0.3, format="csr", random_state=0)
    with pytest.raises(error, match=match):
        bin_pixels(X, (4, 4), 2, n_threads=n_threads)
