"""Energy axis and detector efficiency of the simulator."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xraydb

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


def _mu(element: str, energy_keV: np.ndarray) -> np.ndarray:
    # xray.mass_attenuation evaluates xraydb point by point (cached); a detector curve needs
    # ~1000 energies per element at once, which xraydb's vectorised mu_elam does in ms.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Elam tables warn below 100 eV; absorption is total
        return np.asarray(xraydb.mu_elam(element, np.asarray(energy_keV) * 1000.0), float)


def _transmission(weight_fractions: Mapping[str, float], density, thickness_um, energy):
    mu = sum(f * _mu(el, energy) for el, f in weight_fractions.items())
    return np.exp(-mu * density * thickness_um * 1e-4)


def _weight_fractions_of_formula(formula: Mapping[str, float]) -> dict[str, float]:
    mass = {el: n * xray.atomic_mass(el) for el, n in formula.items()}
    total = sum(mass.values())
    return {el: m / total for el, m in mass.items()}


@dataclass(frozen=True)
class Detector:
    """A silicon drift detector's efficiency: window, contact, dead layer, crystal.

    ``efficiency(E) = T_window T_Al T_dead (1 - exp(-mu_Si rho_Si t_crystal)) S(E)``, each
    ``T = exp(-mu rho t)`` with mass attenuation from xraydb: a polyimide (C22H10N2O5, 1.42
    g/cm³) window, an Al light-blocking coating, a Si dead layer; the crystal absorbs what is
    detected. ``S(E) = (1 + erf((E - threshold) / (sqrt(2) * threshold_width))) / 2`` models
    the electronic noise threshold that cuts the spectrum below ~0.1 keV (otherwise the
    Kramers 1/E rise would dominate there).

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
        energy = np.asarray(energy_keV, dtype=float)
        flat = _efficiency_cached(self, energy.ravel().tobytes())
        return flat.reshape(energy.shape)


@functools.lru_cache(maxsize=64)
def _efficiency_cached(det: Detector, energy_bytes: bytes) -> np.ndarray:
    from scipy.special import erf

    energy = np.frombuffer(energy_bytes, dtype=float)
    polyimide = _weight_fractions_of_formula({"C": 22, "H": 10, "N": 2, "O": 5})
    rho_al, rho_si = xraydb.atomic_density("Al"), xraydb.atomic_density("Si")
    eff = _transmission(polyimide, 1.42, det.window_um, energy)
    eff = eff * _transmission({"Al": 1.0}, rho_al, det.coating_um, energy)
    eff = eff * _transmission({"Si": 1.0}, rho_si, det.dead_layer_um, energy)
    eff = eff * (1.0 - _transmission({"Si": 1.0}, rho_si, det.crystal_um, energy))
    z = (energy - det.threshold_keV) / (np.sqrt(2.0) * det.threshold_width_keV)
    eff = eff * 0.5 * (1.0 + erf(z))
    eff.setflags(write=False)
    return eff
