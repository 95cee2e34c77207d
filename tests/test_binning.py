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
