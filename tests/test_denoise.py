"""Tests of psnmf.denoise_pca against direct numpy computations."""

import numpy as np
import pytest

from psnmf.denoise import denoise_pca, poisson_weights


def low_rank_cube(shape=(40, 30), n_channels=64, rank=3, dose=60.0, seed=0):
    rng = np.random.default_rng(seed)
    spectra = rng.gamma(0.5, size=(rank, n_channels))
    spectra /= spectra.sum(axis=1, keepdims=True)
    maps = rng.gamma(2.0, size=(*shape, rank))
    maps *= dose / maps.sum(axis=-1).mean()
    expected = maps @ spectra
    return expected, rng.poisson(expected).astype(np.uint16)


def test_denoised_is_closer_to_expected_than_counts():
    expected, counts = low_rank_cube()
    for scaling in (True, False):
        denoised = denoise_pca(counts, 3, poisson_scaling=scaling)
        assert denoised.dtype == np.float32
        assert denoised.shape == counts.shape
        assert denoised.min() >= 0
        err_raw = np.linalg.norm(counts - expected)
        err_pca = np.linalg.norm(denoised - expected)
        assert err_pca < 0.5 * err_raw


def test_full_rank_reproduces_input():
    _, counts = low_rank_cube(shape=(6, 5), n_channels=20)
    full = min(30, 20)
    np.testing.assert_allclose(denoise_pca(counts, full, poisson_scaling=False), counts, atol=1e-3)
    # Weighting is undone exactly, so full rank reproduces the input with it too.
    np.testing.assert_allclose(denoise_pca(counts, full), counts, atol=1e-3)


def test_weights_match_direct_numpy():
    _, counts = low_rank_cube()
    counts[0, 0] = 0  # an empty pixel gets weight 1
    counts[:, :, 5] = 0  # and so does an empty channel
    pixel_w, channel_w = poisson_weights(counts)
    x = counts.reshape(-1, counts.shape[-1]).astype(float)
    image = x.mean(axis=1)
    spectrum = x.mean(axis=0)
    outer = np.outer(np.where(image > 0, image, 1), np.where(spectrum > 0, spectrum, 1))
    np.testing.assert_allclose(np.outer(pixel_w, channel_w), np.sqrt(outer), rtol=1e-12)


def test_bool_cube_counts_0_or_1_whatever_byte_it_holds():
    # numpy reads any nonzero byte of a bool as True: the weights see 1, not the byte.
    raw = np.random.default_rng(0).integers(0, 256, (4, 5, 6), dtype=np.uint8)
    cube = np.frombuffer(raw.tobytes(), dtype=bool).reshape(raw.shape)
    pixel_w, channel_w = poisson_weights(cube)
    expected = poisson_weights(cube.astype(np.uint8))
    np.testing.assert_array_equal(pixel_w, expected[0])
    np.testing.assert_array_equal(channel_w, expected[1])


def test_matches_direct_weighted_svd():
    _, counts = low_rank_cube(seed=2)
    x = counts.reshape(-1, counts.shape[-1]).astype(float)
    image, spectrum = x.mean(axis=1), x.mean(axis=0)
    w = np.sqrt(np.outer(image, spectrum))
    u, s, vt = np.linalg.svd(x / w, full_matrices=False)
    direct = np.clip((u[:, :3] * s[:3]) @ vt[:3] * w, 0, None)
    result = denoise_pca(counts, 3).reshape(x.shape)
    np.testing.assert_allclose(result, direct, atol=1e-3 * direct.max())


def test_two_dimensional_input_and_errors():
    _, counts = low_rank_cube(shape=(10, 10), n_channels=16)
    flat = counts.reshape(100, 16)
    np.testing.assert_allclose(
        denoise_pca(flat, 2), denoise_pca(counts, 2).reshape(100, 16), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="n_components"):
        denoise_pca(counts, 0)
    with pytest.raises(ValueError, match="n_components"):
        denoise_pca(counts, 17)
    with pytest.raises(TypeError, match="n_components"):
        denoise_pca(counts, 2.5)
    with pytest.raises(ValueError, match="cube"):
        denoise_pca(counts[0, 0], 1)


def test_values_beyond_the_float32_range_raise_a_clear_error():
    # Found by fuzzing: 8e107 became inf in the float32 working copy and ARPACK failed; the
    # boundary now rejects counts above 2**53 (9.0e15) before any work.
    cube = np.full((2, 2), 8.2e107)
    with pytest.raises(ValueError, match=r"cube holds values up to 8\.2e\+107 > 2\*\*53"):
        denoise_pca(cube, 1)
    np.testing.assert_allclose(denoise_pca(np.full((3, 3), 1e15), 1), 1e15, rtol=1e-5)


def test_degenerate_tiny_values_fall_back_to_the_dense_svd():
    # Found by fuzzing: ARPACK could not build an Arnoldi factorization here.
    cube = np.array([[1.55622773e-317, 2.61308565e-231], [3.31036972e-28, 3.31036972e-28]])
    denoised = denoise_pca(cube, 1)
    assert np.all(np.isfinite(denoised)) and np.all(denoised >= 0)


def test_arpack_failure_falls_back_to_the_dense_svd(monkeypatch):
    from scipy.sparse.linalg import ArpackError

    import psnmf.denoise as module

    _, counts = low_rank_cube(shape=(10, 10), n_channels=16)
    expected = denoise_pca(counts, 2)

    def failing(*args, **kwargs):
        raise ArpackError(-9999)

    monkeypatch.setattr(module, "svds", failing)
    np.testing.assert_allclose(denoise_pca(counts, 2), expected, rtol=1e-4, atol=1e-4)
