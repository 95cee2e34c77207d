"""The two-stage PSNMF pipeline on a spectrum image with known phases."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from psnmf import PSNMF, bin_spatial
from psnmf.bin_selection import split_counts

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


def pixel_mosaic(counts_per_pixel, seed=5):
    """Each pixel one of three phases at random: any binning mixes them evenly."""
    rng = np.random.default_rng(seed)
    ny, nx, n_channels = 48, 48, 128
    channels = np.arange(n_channels)
    spectra = np.full((3, n_channels), 0.3 / n_channels)
    for q, centre in enumerate((30, 64, 98)):
        spectra[q] += np.exp(-0.5 * ((channels - centre) / 2.0) ** 2)
    spectra /= spectra.sum(axis=1, keepdims=True)
    phase = rng.integers(0, 3, size=(ny, nx))
    maps = counts_per_pixel * (phase[None] == np.arange(3)[:, None, None])
    return rng.poisson(np.einsum("kyx,kc->yxc", maps, spectra)).astype(np.uint16)


def test_auto_bin_factor_bins_smooth_low_dose_data(low_dose_cube):
    cube, _, spectra = low_dose_cube
    model = fit(cube)
    selection = model.bin_selection_
    assert model.bin_factor_[0] > 1
    assert selection.factor == model.bin_factor_[0]
    # the chosen factor is the smallest candidate within one standard error of the best
    # held-out deviance, mapped to the full dose
    excess = selection.heldout_deviance - selection.heldout_deviance.min()
    within = [
        b for b, e, se in zip(selection.candidates, excess, selection.standard_error) if e <= se
    ]
    assert selection.factor == max(1, round(min(within) / np.sqrt(2)))
    assert np.all(selection.standard_error >= 0)
    assert (
        selection.heldout_deviance[selection.candidates.index(1)]
        > selection.heldout_deviance.min()
    )
    assert spectral_angles_deg(spectra, model.spectra_).max() < 5.0


def test_auto_bin_factor_chooses_no_binning_when_bins_mix_every_phase():
    model = fit(pixel_mosaic(400.0))
    assert model.bin_factor_ == (1, 1)
    deviance = dict(zip(model.bin_selection_.candidates, model.bin_selection_.heldout_deviance))
    assert deviance[1] < deviance[4]


def test_split_counts_gives_two_poisson_halves_that_sum_to_the_counts():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(400, 50)).astype(np.uint16)
    half_a, half_b = split_counts(counts, np.random.RandomState(1))
    np.testing.assert_array_equal((half_a + half_b).toarray(), counts)
    assert not np.shares_memory(half_a.indices, half_b.indices)
    for half in (half_a, half_b):
        values = half.toarray()
        # Poisson with mean 1.5: mean and variance agree
        assert values.mean() == pytest.approx(1.5, rel=0.03)
        assert values.var() == pytest.approx(1.5, rel=0.06)
    # independent halves: no correlation between them
    corr = np.corrcoef(half_a.toarray().ravel(), half_b.toarray().ravel())[0, 1]
    assert abs(corr) < 0.03


def test_restarts_keep_the_lowest_binned_loss(low_dose_cube):
    cube, _, _ = low_dose_cube
    model = fit(cube, bin_factor=4, n_init=3)
    losses = model.binned_.restart_losses
    assert losses.shape == (3,)
    assert model.binned_.loss_history[-1] == pytest.approx(losses.min(), rel=1e-12)
    single = fit(cube, bin_factor=4, n_init=1)
    assert model.binned_.loss_history[-1] <= single.binned_.loss_history[-1] * (1 + 1e-12)
    # "auto": 4 runs on small binned counts, 1 on large ones (by their nonzeros)
    assert fit(cube, bin_factor=4).binned_.restart_losses.shape == (4,)
    from psnmf.pipeline import AUTO_RESTARTS_MAX_NONZEROS, resolve_n_init

    limit = AUTO_RESTARTS_MAX_NONZEROS
    ones = np.ones(limit + 1, dtype=np.uint8)
    assert resolve_n_init("auto", sp.csr_matrix(ones[:limit])) == 4
    assert resolve_n_init("auto", sp.csr_matrix(ones)) == 1
    assert resolve_n_init("auto", ones[:limit]) == 4 and resolve_n_init("auto", ones) == 1
    assert resolve_n_init("auto", np.zeros(limit + 1, dtype=np.uint8)) == 4  # zeros cost nothing
    assert resolve_n_init(2, sp.csr_matrix(ones)) == 2


def test_refinement_updates_spectra_at_full_resolution(low_dose_cube):
    cube, _, _ = low_dose_cube
    plain = fit(cube, bin_factor=4)
    refined = fit(cube, bin_factor=4, refine_iter=20)
    assert plain.n_iter_["refine"] == 0 and plain.loss_history_["refine"].size == 0
    history = refined.loss_history_["refine"]
    evaluated = refined.loss_iterations_["refine"]
    assert refined.n_iter_["refine"] == evaluated[-1] > 0 and evaluated[0] == 0
    assert evaluated.size == history.size
    # refinement starts where stage 2 ended and never increases the loss
    assert history[0] == pytest.approx(refined.loss_history_["full"][-1], rel=1e-12)
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])
    np.testing.assert_allclose(refined.spectra_.sum(axis=1), 1.0, rtol=1e-12)
    assert not np.array_equal(refined.spectra_, plain.spectra_)


def test_bad_input(low_dose_cube):
    cube, _, _ = low_dose_cube
    with pytest.raises(ValueError, match="image_shape"):
        PSNMF(3).fit(cube.reshape(-1, cube.shape[2]))
    with pytest.raises(ValueError, match="larger than the image"):
        PSNMF(3, bin_factor=100).fit(cube)
    with pytest.raises(ValueError, match="3-D"):
        PSNMF(3).fit(cube[0, 0])
    with pytest.raises(ValueError, match="n_init"):
        PSNMF(3, n_init=0).fit(cube)
    with pytest.raises(ValueError, match="refine_iter"):
        PSNMF(3, refine_iter=-1).fit(cube)


def test_upsampled_maps_repeat_each_bin_over_its_pixels():
    from psnmf._stages import upsample_block, upsample_maps

    rng = np.random.default_rng(0)
    grid = rng.uniform(size=(2, 3, 4))  # k=2 maps on 3 x 4 bins of 2 x 3 pixels
    image = (7, 13)  # one row and one column past the last whole bin
    reference = np.repeat(np.repeat(grid, 2, axis=1), 3, axis=2) / 6
    reference = np.pad(reference, ((0, 0), (0, 1), (0, 1)), mode="edge")
    up = upsample_maps(grid.reshape(2, -1).T, (2, 3), image)
    np.testing.assert_array_equal(up, reference.reshape(2, -1).T)
    # a block is the same pixels cut out of the whole image
    block = upsample_block(grid, (2, 3), 2, 7, 5, 13)
    np.testing.assert_array_equal(block, reference[:, 2:7, 5:13].reshape(2, -1).T)
