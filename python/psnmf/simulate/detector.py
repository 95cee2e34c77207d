"""Energy axis and detector efficiency of the simulator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import xray

__all__ = [
    "DEFAULT_N_CHANNELS",
    "DEFAULT_OFFSET_KEV",
    "DEFAULT_SCALE_KEV",
    "Detector",
    "energy_axis",
]

DEFAULT_N_CHANNELS = 1024
DEFAULT_SCALE_KEV = 0.02
DEFAULT_OFFSET_KEV = 0.01


def energy_axis(
    n_channels: int = DEFAULT_N_CHANNELS,
    scale: float = DEFAULT_SCALE_KEV,
    offset: float = DEFAULT_OFFSET_KEV,
) -> np.ndarray:
    """Channel centres of a uniform energy axis.

    Parameters
    ----------
    n_channels : int
        Number of channels C.
    scale : float
        Channel width in keV.
    offset : float
        Centre of the first channel in keV (HyperSpy's axis offset).

    Returns
    -------
    ndarray (C,)
        ``offset + scale * arange(C)`` in keV.
    """
    if int(n_channels) < 2 or scale <= 0:
        raise ValueError("n_channels must be >= 2 and scale > 0")
    return offset + scale * np.arange(int(n_channels), dtype=float)


def check_energy(energy) -> np.ndarray:
    """Validated channel centres (C,) in keV; None gives :func:`energy_axis`."""
    if energy is None:
        return energy_axis()
    energy = np.asarray(energy, dtype=float)
    if energy.ndim != 1 or energy.size < 2 or not np.all(np.diff(energy) > 0):
        raise ValueError("energy must be a 1-D increasing array of channel centres (keV)")
    return energy


def axis_range(energy: np.ndarray) -> tuple[float, float]:
    """Outer channel edges (keV): lines whose energy lies between them are simulated."""
    edges = xray.channel_edges(energy)
    return float(edges[0]), float(edges[-1])


@dataclass(frozen=True)
class Detector:
    """A silicon drift detector's efficiency: window, contact, dead layer, crystal.

    ``efficiency(E) = T_window T_Al T_dead (1 - exp(-mu_Si rho_Si t_crystal)) S(E)``, each
    ``T = exp(-mu rho t)`` with mass attenuation from xraydb: a polyimide (C22H10N2O5, 1.42
    g/cm³) window, an Al light-blocking coating, a Si dead layer; the crystal absorbs what is
    detected (:func:`psnmf.xray.detector_efficiency`, the model ``psnmf.quantify`` fits with
    ``efficiency="auto"``). ``S(E) = (1 + erf((E - threshold) / (sqrt(2) * threshold_width)))
    / 2`` models the electronic noise threshold that cuts the spectrum below ~0.1 keV
    (otherwise the Kramers 1/E rise would dominate there).

    Parameters
    ----------
    window_um, coating_um, dead_layer_um, crystal_um : float
        Thicknesses in µm.
    threshold_keV, threshold_width_keV : float
        Low-energy threshold and its width in keV.
    """

    window_um: float = 0.3
    coating_um: float = 0.03
    dead_layer_um: float = 0.03
    crystal_um: float = 450.0
    threshold_keV: float = 0.1
    threshold_width_keV: float = 0.02

    def efficiency(self, energy_keV) -> np.ndarray:
        """Detection probability of a photon of energy ``energy_keV`` (array_like, keV)."""
        return xray.detector_efficiency(energy_keV, **dataclasses.asdict(self))
