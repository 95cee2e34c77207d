"""The two-stage PSNMF pipeline on a spectrum image with known phases."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from psnmf import PSNMF, bin_spatial

from reference import spectral_angles_deg


@pytest.fixture(scope="module")
def low_dose_cube():
    """Three phases in smooth regions of a 48 x 64 image, about 30 counts per pixel."""
    rng = np.random.default_rng(4)
    ny, nx, n_channels, k = 48, 64, 128, 3
    channels = np.arange(n_channels)
    spectra = np.full((k, n_channels), 0.3 / n_channels)
    for q, centres in enumerate([(20, 70), (45, 95), (30, 110)]):
        for centre in centres:
            spectra[q] += np.exp(-0.5 * ((channels - centre) / 1.5) ** 2)
    spectra /= spectra.sum(axis=1, keepdims=True)
    y, x = np.mgrid[0:ny, 0:nx]
    region = np.stack([x < 24, (x >= 24) & (y < 24), (x >= 24) & (y >= 24)]).astype(float)
    maps = 30.0 * region
    cube = rng.poisson(np.einsum("kyx,kc->yxc", maps, spectra)).astype(np.uint16)
    return cube, maps, spectra


def fit(cube, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return PSNMF(3, random_state=0, **params).fit(cube)


def test_recovers_phase_spectra_and_maps(low_dose_cube):
    cube, maps, spectra = low_dose_cube
    model = fit(cube, bin_factor=4)
    assert model.spectra_.shape == spectra.shape
    np.testing.assert_allclose(model.spectra_.sum(axis=1), 1.0, rtol=1e-12)
    assert spectral_angles_deg(spectra, model.spectra_).max() < 5.0
    assert model.maps_.shape == maps.shape
    assert model.binned_.maps.shape == (3, 12, 16)
    assert model.bin_factor_ == (4, 4)


def test_full_resolution_maps_keep_each_pixels_counts(low_dose_cube):
    cube, _, _ = low_dose_cube
    model = fit(cube, bin_factor=2)
    # With spectra summing to 1, a maps update makes each pixel's model total its count total.
    np.testing.assert_allclose(model.maps_.sum(axis=0), cube.sum(axis=2), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        model.reconstruct(np.float64).sum(axis=2), cube.sum(axis=2), rtol=1e-9, atol=1e-9
    )


def test_stage_one_runs_on_the_binned_cube(low_dose_cube):
    cube, _, _ = low_dose_cube
    model = fit(cube, bin_factor=(2, 4))
    binned = bin_spatial(cube, (2, 4)).astype(np.float64)
    expected_total = np.einsum("kyx,kc->", model.binned_.maps, model.binned_.spectra)
    assert expected_total == pytest.approx(binned.sum(), rel=1e-6)
    for stage in ("binned", "full"):
        history = model.loss_history_[stage]
        assert np.all(np.diff(history) <= 1e-12 * np.abs(history[:-1]))


def test_sparse_unfolded_input_equals_cube_input(low_dose_cube):
    cube, _, _ = low_dose_cube
    from_cube = fit(cube, bin_factor=2)
    X = sp.csr_matrix(cube.reshape(-1, cube.shape[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        from_sparse = PSNMF(3, bin_factor=2, random_state=0).fit(X, image_shape=cube.shape[:2])
    # Kernels and initialisation sum over nonzeros in the same order for both formats.
    assert np.array_equal(from_sparse.spectra_, from_cube.spectra_)
    assert np.array_equal(from_sparse.maps_, from_cube.maps_)


def test_auto_bin_factor_bins_low_dose_and_not_high_dose(low_dose_cube):
    cube, _, _ = low_dose_cube
    assert fit(cube).bin_factor_[0] > 1
    assert fit(cube.astype(np.uint32) * 50, max_iter_binned=50).bin_factor_ == (1, 1)


def test_bad_input(low_dose_cube):
    cube, _, _ = low_dose_cube
    with pytest.raises(ValueError, match="image_shape"):
        PSNMF(3).fit(cube.reshape(-1, cube.shape[2]))
    with pytest.raises(ValueError, match="larger than the image"):
        PSNMF(3, bin_factor=100).fit(cube)
    with pytest.raises(ValueError, match="3-D"):
        PSNMF(3).fit(cube[0, 0])
