"""PoissonNMF inside HyperSpy's decomposition, and psnmf.hyperspy.pansharpen."""

import exspy
import hyperspy.api as hs
import numpy as np
import pytest

import psnmf.hyperspy as psnmf_hs
from psnmf import PSNMF, PoissonNMF

import edx_files


@pytest.fixture(scope="module")
def data():
    return edx_files.simulated_cube()


def eds_signal(data, dtype=np.float64):
    """An exspy EDSTEMSpectrum of the simulated cube, calibrated like a real file."""
    signal = exspy.signals.EDSTEMSpectrum(data.counts.astype(dtype))
    energy = signal.axes_manager.signal_axes[0]
    energy.name, energy.units = "Energy", "keV"
    energy.offset, energy.scale = float(data.energy[0]), float(data.energy[1] - data.energy[0])
    for axis, name in zip(signal.axes_manager.navigation_axes, "xy"):
        axis.name, axis.units, axis.scale = name, "nm", edx_files.PIXEL_NM
    signal.set_microscope_parameters(beam_energy=edx_files.BEAM_ENERGY)
    signal.metadata.General.title = "simulated particles"
    return signal


def test_decomposition_equals_the_direct_estimator(data):
    signal = eds_signal(data)
    signal.decomposition(
        algorithm=PoissonNMF(3, random_state=0),
        output_dimension=3,
        normalize_poissonian_noise=False,
        navigation_mask=None,  # exspy's EDS default masks low-count pixels as vacuum
        print_info=False,
    )
    direct = PoissonNMF(3, random_state=0)
    maps = direct.fit_transform(data.counts.reshape(-1, data.counts.shape[-1]))
    results = signal.learning_results
    np.testing.assert_allclose(results.factors, direct.components_.T, rtol=1e-12, atol=0)
    np.testing.assert_allclose(results.loadings, maps, rtol=1e-12, atol=0)
    # the signal's data are untouched counts
    np.testing.assert_array_equal(signal.data, data.counts)


def test_decomposition_helper_takes_integer_counts_and_matches(data):
    signal = eds_signal(data, dtype=np.uint16)
    estimator = psnmf_hs.decomposition(signal, 3, random_state=0)
    direct = PoissonNMF(3, random_state=0).fit(data.counts.reshape(-1, data.counts.shape[-1]))
    np.testing.assert_allclose(estimator.components_, direct.components_, rtol=1e-12)
    np.testing.assert_allclose(
        signal.learning_results.factors, direct.components_.T, rtol=1e-12, atol=0
    )


def test_poisson_normalisation_warns(data):
    signal = eds_signal(data)
    with pytest.warns(UserWarning, match="normalize_poissonian_noise=True rescales"):
        psnmf_hs.decomposition(signal, 2, normalize_poissonian_noise=True, max_iter=5, tol=0)
    with pytest.warns(UserWarning, match="pansharpen ignores it"):
        psnmf_hs.pansharpen(
            eds_signal(data), 2, normalize_poissonian_noise=True, max_iter=5, max_iter_binned=5
        )


def test_pansharpen_returns_eds_spectra_and_maps_on_the_signal_axes(data):
    signal = eds_signal(data)
    spectra, maps, model = psnmf_hs.pansharpen(signal, 3, random_state=0)
    direct = PSNMF(3, random_state=0).fit(data.counts)
    np.testing.assert_allclose(model.spectra_, direct.spectra_, rtol=1e-12)

    assert isinstance(spectra, exspy.signals.EDSTEMSpectrum)
    np.testing.assert_allclose(spectra.data, direct.spectra_, rtol=1e-12)
    np.testing.assert_allclose(spectra.axes_manager.signal_axes[0].axis, data.energy, atol=1e-12)
    assert spectra.axes_manager.signal_axes[0].units == "keV"
    assert spectra.axes_manager.navigation_shape == (3,)
    assert spectra.metadata.Acquisition_instrument.TEM.beam_energy == edx_files.BEAM_ENERGY

    assert isinstance(maps, hs.signals.Signal2D)
    np.testing.assert_allclose(maps.data, direct.maps_, rtol=1e-12)
    assert [a.name for a in maps.axes_manager.signal_axes] == ["x", "y"]
    assert [a.scale for a in maps.axes_manager.signal_axes] == [edx_files.PIXEL_NM] * 2
    assert maps.axes_manager.navigation_shape == (3,)


def test_pansharpen_rejects_non_spectrum_images(data):
    with pytest.raises(TypeError, match="HyperSpy signal"):
        psnmf_hs.pansharpen(data.counts, 3)
    image = hs.signals.Signal2D(np.ones((8, 8)))
    with pytest.raises(ValueError, match="one signal"):
        psnmf_hs.pansharpen(image, 2)
    signal = eds_signal(data)
    signal.axes_manager.signal_axes[0].units = "nm"
    with pytest.raises(ValueError, match="units"):
        psnmf_hs.pansharpen(signal, 2)
