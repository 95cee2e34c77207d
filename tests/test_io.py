"""psnmf.load reads what RosettaSciIO writes; save_results writes what HyperSpy opens."""

import csv

import hyperspy.api as hs
import numpy as np
import pytest
from exspy._misc.eds import utils as eds_utils

from psnmf import io

import edx_files


@pytest.fixture(scope="module")
def data():
    return edx_files.simulated_cube()


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("edx")
    signal = edx_files.edx_signal(data)
    return {
        "hspy": edx_files.write(folder / "cube.hspy", signal, "hspy"),
        "rpl": edx_files.write(folder / "cube.rpl", signal, "ripple"),
    }


@pytest.mark.parametrize("fmt", ["hspy", "rpl"])
def test_load_reads_counts_energy_and_metadata(files, data, fmt):
    dataset = io.load(files[fmt])
    np.testing.assert_array_equal(dataset.counts, data.counts)
    # the file stores eV; psnmf works in keV
    np.testing.assert_allclose(dataset.energy, data.energy, rtol=0, atol=1e-12)
    assert dataset.beam_energy == edx_files.BEAM_ENERGY
    assert dataset.elevation_angle == edx_files.ELEVATION
    assert dataset.live_time == edx_files.LIVE_TIME
    assert dataset.energy_resolution_MnKa == edx_files.FWHM_MNKA
    assert dataset.signal_type == "EDS_TEM"
    assert [a["scale"] for a in dataset.navigation_axes] == [edx_files.PIXEL_NM] * 2
    if fmt == "hspy":  # the Ripple header has no element list
        assert dataset.elements == tuple(data.elements)


@pytest.mark.parametrize("fmt", ["hspy", "rpl"])
def test_load_take_off_angle_matches_exspy(files, fmt):
    expected = eds_utils.take_off_angle(
        edx_files.TILT_ALPHA, edx_files.AZIMUTH, edx_files.ELEVATION
    )
    assert io.load(files[fmt]).take_off_angle == pytest.approx(expected, abs=1e-9)
    assert expected != pytest.approx(edx_files.ELEVATION)  # the tilt matters here


@pytest.mark.parametrize(
    "geometry",
    [(0, 0, 35, 0), (15, 0, 35, 0), (-20, 45, 22, 0), (10, 90, 30, 5), (30, -60, 15, -20)],
)
def test_take_off_angle_matches_exspy(geometry):
    tilt, azimuth, elevation, beta = geometry
    expected = eds_utils.take_off_angle(tilt, azimuth, elevation, beta)
    assert io.take_off_angle(elevation, azimuth, tilt, beta) == pytest.approx(expected, abs=1e-9)


def test_load_lazy_gives_dask_with_the_same_counts(files, data):
    dataset = io.load(files["hspy"], lazy=True)
    assert dataset.lazy
    np.testing.assert_array_equal(np.asarray(dataset.counts.compute()), data.counts)


def test_load_single_spectrum_msa(tmp_path, data):
    spectrum = data.counts.sum(axis=(0, 1)).astype(float)
    signal = edx_files.edx_signal(data)
    signal["data"] = spectrum
    signal["axes"] = signal["axes"][2:]
    path = edx_files.write(tmp_path / "sum.msa", signal, "msa")
    dataset = io.load(path)
    assert dataset.counts.shape == (1, 1, spectrum.size)
    np.testing.assert_allclose(dataset.counts[0, 0], spectrum)
    np.testing.assert_allclose(dataset.energy, data.energy, atol=1e-9)


def test_load_rejects_an_image(tmp_path):
    path = edx_files.write(tmp_path / "image.hspy", edx_files.image_signal(), "hspy")
    with pytest.raises(ValueError, match="no EDX spectrum image"):
        io.load(path)


def test_load_rejects_a_spectrum_without_energy_units(tmp_path, data):
    signal = edx_files.edx_signal(data)
    signal["axes"][2]["units"] = ""
    path = edx_files.write(tmp_path / "nounits.hspy", signal, "hspy")
    with pytest.raises(ValueError, match="not eV or keV"):
        io.load(path)


def test_load_rejects_an_eels_spectrum(tmp_path, data):
    signal = edx_files.edx_signal(data)
    signal["metadata"]["Signal"]["signal_type"] = "EELS"  # an energy axis in eV, but not EDX
    path = edx_files.write(tmp_path / "eels.hspy", signal, "hspy")
    with pytest.raises(ValueError, match="no EDX spectrum image.*EELS"):
        io.load(path)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.load(tmp_path / "missing.hspy")
    unknown = tmp_path / "data.xyz123"
    unknown.write_bytes(b"0")
    with pytest.raises(ValueError, match="no RosettaSciIO reader"):
        io.load(unknown)
    garbage = tmp_path / "garbage.hspy"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="could not be read"):
        io.load(garbage)


def test_save_results_opens_in_hyperspy(tmp_path, files, data):
    dataset = io.load(files["hspy"])
    spectra, maps = data.spectra, data.maps
    paths = io.save_results(tmp_path, spectra, maps, dataset.energy, dataset=dataset)

    loaded = hs.load(paths["spectra_hspy"])
    assert type(loaded).__name__ == "EDSTEMSpectrum"
    np.testing.assert_allclose(loaded.data, spectra)
    np.testing.assert_allclose(loaded.axes_manager.signal_axes[0].axis, data.energy, atol=1e-12)
    assert loaded.axes_manager.signal_axes[0].units == "keV"
    assert loaded.metadata.Acquisition_instrument.TEM.beam_energy == edx_files.BEAM_ENERGY
    assert list(loaded.metadata.Sample.elements) == list(data.elements)

    loaded_maps = hs.load(paths["maps_hspy"])
    assert isinstance(loaded_maps, hs.signals.Signal2D)
    assert loaded_maps.axes_manager.navigation_shape == (maps.shape[0],)
    np.testing.assert_allclose(loaded_maps.data, maps)
    assert [a.scale for a in loaded_maps.axes_manager.signal_axes] == [edx_files.PIXEL_NM] * 2

    saved = np.load(paths["npz"])
    np.testing.assert_array_equal(saved["maps"], maps)
    rows = list(csv.reader(paths["spectra_csv"].read_text().splitlines()))
    assert rows[0] == ["energy_keV", "phase_0", "phase_1", "phase_2"]
    table = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(table[:, 0], data.energy)
    np.testing.assert_allclose(table[:, 1:], spectra.T)


def test_save_results_rejects_mismatched_shapes(tmp_path, data):
    with pytest.raises(ValueError, match="must agree"):
        io.save_results(tmp_path, data.spectra, data.maps[:2], data.energy)
