"""A small simulated EDX spectrum image written to microscope files with RosettaSciIO."""

import importlib

import numpy as np

from psnmf import simulate

# What the files hold besides the counts; the tests read them back.
BEAM_ENERGY = 200.0  # keV
ELEVATION = 22.0  # deg
AZIMUTH = 45.0  # deg
TILT_ALPHA = 10.0  # deg
LIVE_TIME = 12.5  # s
FWHM_MNKA = 128.0  # eV
PIXEL_NM = 2.0


def simulated_cube():
    """Particles in a matrix, 32 x 32 pixels x 512 channels of 40 eV, 100 counts/pixel."""
    return simulate.particles_in_matrix(
        (32, 32),
        dose=100.0,
        seed=7,
        energy=simulate.energy_axis(512, 0.04, 0.02),
        fwhm_mnka=FWHM_MNKA,
    )


def signal_dict(data, axes, metadata):
    """A RosettaSciIO signal dictionary, as HyperSpy passes to a writer."""
    return {
        "data": data,
        "axes": axes,
        "metadata": metadata,
        "original_metadata": {},
        "learning_results": {},
        "attributes": {"_lazy": False, "ragged": False},
        "models": {},
        "package_info": {},
        "tmp_parameters": {},
    }


def edx_signal(data):
    """The simulated cube as an EDS_TEM signal, energy axis in eV (as many vendors store it)."""
    energy_ev = data.energy * 1000.0
    ny, nx, c = data.counts.shape
    axes = [
        {
            "name": "y",
            "size": ny,
            "scale": PIXEL_NM,
            "offset": 0.0,
            "units": "nm",
            "navigate": True,
        },
        {
            "name": "x",
            "size": nx,
            "scale": PIXEL_NM,
            "offset": 0.0,
            "units": "nm",
            "navigate": True,
        },
        {
            "name": "Energy",
            "size": c,
            "scale": float(energy_ev[1] - energy_ev[0]),
            "offset": float(energy_ev[0]),
            "units": "eV",
            "navigate": False,
        },
    ]
    eds = {
        "elevation_angle": ELEVATION,
        "azimuth_angle": AZIMUTH,
        "live_time": LIVE_TIME,
        "energy_resolution_MnKa": FWHM_MNKA,
    }
    metadata = {
        "General": {"title": "simulated particles"},
        "Signal": {"signal_type": "EDS_TEM"},
        "Acquisition_instrument": {
            "TEM": {
                "beam_energy": BEAM_ENERGY,
                "Stage": {"tilt_alpha": TILT_ALPHA},
                "Detector": {"EDS": eds},
            }
        },
        "Sample": {"elements": list(data.elements)},
    }
    return signal_dict(data.counts, axes, metadata)


def write(path, signal, plugin):
    """Write a signal dict with RosettaSciIO's ``plugin`` (e.g. "hspy", "ripple")."""
    writer = importlib.import_module(f"rsciio.{plugin}").file_writer
    if plugin == "hspy":
        writer(str(path), signal, show_progressbar=False)
    else:
        writer(str(path), signal)
    return path


def image_signal(shape=(16, 16)):
    """A plain 2-D image (no energy axis)."""
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    axes = [
        {"name": n, "size": s, "scale": 1.0, "offset": 0.0, "units": "nm", "navigate": False}
        for n, s in zip("yx", shape)
    ]
    return signal_dict(data, axes, {"General": {"title": "image"}, "Signal": {}})
