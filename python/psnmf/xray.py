"""X-ray line data for EDX spectra: line families, energies, relative intensities, widths.

Every physical number comes from `xraydb` (Elam, Ravel & Sieber tables): line energies,
sub-line intensities, edge energies, fluorescence yields, atomic masses and mass attenuation
coefficients. Nothing here is a hand-typed table.

Naming follows HyperSpy/exspy: a line is ``"<Element>_<Family>"``, e.g. ``"Fe_Ka"``, ``"Pt_La"``.
The families are ``Ka, Kb, La, Lb, Lg, Ma, Mb``. xraydb's Siegbahn sub-lines map to a family by
their first two characters (``Ka1, Ka2, Ka3 -> Ka``, ``Kb1..Kb5 -> Kb``, ``La1, La2 -> La``,
``Lb1..Lb6, Lb2,15 -> Lb``, ``Lg1..Lg6 -> Lg``, ``Ma -> Ma``, ``Mb -> Mb``). The weak lines
``Ll``, ``Ln``, ``Mg`` and ``Mz`` are dropped: they have no family in this naming, and dropping
them keeps every modelled peak attached to a quantifiable family (spectra built with this module
and fitted with it use the same set of lines).

Relative intensities
--------------------
xraydb normalises sub-line intensities per initial level (K, L1, L2, L3, M4, M5 each sum to 1).
To combine levels (within the L shell, and across K/L/M) each initial level ``s`` is weighted by
a simple emission model::

    w_s = n_s * omega_s * ln(U_s) / (U_s * E_s**2),    U_s = E0 / E_s > 1

``n_s`` the electron count of the level (K 2; L1 2, L2 2, L3 4; M1 2, M2 2, M3 4, M4 4, M5 6),
``omega_s`` the fluorescence yield (xraydb), ``E_s`` the edge energy (keV), ``E0`` the beam energy
(keV): a Bethe-type ionisation cross-section times the yield. Coster-Kronig transfers, detector
efficiency and absorption are ignored. The family intensity is ``sum_s w_s * sum(p_line)`` over
its sub-lines; an element's families are normalised so that its strongest one is 1.
"""

from __future__ import annotations

import functools
import re
import warnings

import numpy as np
import xraydb
from scipy.special import erf

__all__ = [
    "FAMILIES",
    "MNKA_ENERGY_KEV",
    "atomic_mass",
    "atomic_number",
    "detector_efficiency",
    "detector_layer_attenuation",
    "element_families",
    "element_lines",
    "family_lines",
    "fwhm_at",
    "gaussian_peaks",
    "line_energy",
    "mass_attenuation",
    "parse_line",
]

FAMILIES = ("Ka", "Kb", "La", "Lb", "Lg", "Ma", "Mb")
MNKA_ENERGY_KEV = 5.8987  # the reference energy of exspy's resolution law
_SHELL_ELECTRONS = {
    "K": 2,
    "L1": 2,
    "L2": 2,
    "L3": 4,
    "M1": 2,
    "M2": 2,
    "M3": 4,
    "M4": 4,
    "M5": 6,
}
_LINE_RE = re.compile(r"^([A-Z][a-z]?)_([A-Z][a-z])$")


@functools.cache
def _check_element(element: str) -> str:
    if not isinstance(element, str):
        raise TypeError(f"element must be a str such as 'Fe', got {type(element).__name__}")
    try:
        xraydb.atomic_number(element)
    except ValueError:
        raise ValueError(f"unknown element {element!r}") from None
    return element


@functools.cache
def _sublines(element: str) -> tuple[tuple[str, str, float, float], ...]:
    """(family, initial level, energy keV, per-level intensity) of the kept sub-lines."""
    _check_element(element)
    out = []
    for name, line in xraydb.xray_lines(element).items():
        family = name[:2]
        if family not in FAMILIES or line.intensity <= 0:
            continue
        out.append((family, line.initial_level, line.energy / 1000.0, float(line.intensity)))
    return tuple(out)


@functools.cache
def _edge(element: str, level: str) -> tuple[float, float]:
    """Edge energy (keV) and fluorescence yield of one initial level."""
    edge = xraydb.xray_edge(element, level)
    if edge is None:
        return np.inf, 0.0
    return edge.energy / 1000.0, float(edge.fyield)


def _level_weight(element: str, level: str, beam_energy_keV: float) -> float:
    """Emission weight of an initial level (module docstring): 0 when not excited."""
    e_edge, fyield = _edge(element, level)
    overvoltage = beam_energy_keV / e_edge
    if overvoltage <= 1.0:
        return 0.0
    return _SHELL_ELECTRONS[level] * fyield * np.log(overvoltage) / (overvoltage * e_edge**2)


def _element_families_all(element: str) -> tuple[str, ...]:
    present = {f for f, *_ in _sublines(element)}
    return tuple(f for f in FAMILIES if f in present)


def parse_line(name: str) -> tuple[str, str]:
    """Split a HyperSpy line name into element and family.

    Parameters
    ----------
    name : str
        Line name such as ``"Fe_Ka"`` or ``"Pt_Ma"``.

    Returns
    -------
    element, family : str
        e.g. ``("Fe", "Ka")``.

    Raises
    ------
    ValueError
        If the name is malformed, the element unknown, the family not one of
        ``Ka, Kb, La, Lb, Lg, Ma, Mb``, or the element has no line of that family.
    """
    if not isinstance(name, str):
        raise TypeError(f"line name must be a str such as 'Fe_Ka', got {type(name).__name__}")
    match = _LINE_RE.match(name)
    if match is None:
        raise ValueError(f"line name {name!r} is not of the form 'Fe_Ka' (element_family)")
    element, family = match.groups()
    _check_element(element)
    if family not in FAMILIES:
        raise ValueError(f"line {name!r}: unknown family {family!r}; families are {FAMILIES}")
    if family not in _element_families_all(element):
        raise ValueError(
            f"line {name!r}: {element} has no {family} line; it has "
            f"{', '.join(_element_families_all(element)) or 'none'}"
        )
    return element, family


@functools.cache
def _family_lines_cached(element: str, family: str, beam_energy_keV: float):
    rows = [row for row in _sublines(element) if row[0] == family]
    energies = np.array([r[2] for r in rows])
    raw = np.array([_level_weight(element, r[1], beam_energy_keV) * r[3] for r in rows])
    if raw.sum() <= 0:
        # Not excited at this beam energy: keep the tabulated shape so callers still get a
        # well-defined set of weights (the family's intensity is 0 in element_families).
        raw = np.array([r[3] for r in rows])
    return energies, raw / raw.sum(), float(raw.sum())


def family_lines(
    element: str, family: str, beam_energy_keV: float = 200.0
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-lines of one line family.

    Parameters
    ----------
    element : str
        Element symbol, e.g. ``"Pt"``.
    family : str
        One of ``Ka, Kb, La, Lb, Lg, Ma, Mb``.
    beam_energy_keV : float
        Beam energy in keV; it sets the relative weights of sub-lines from different initial
        levels (L1/L2/L3) through the emission model of the module docstring.

    Returns
    -------
    energies : ndarray (m,)
        Sub-line energies in keV.
    weights : ndarray (m,)
        Relative intensities, summing to 1.
    """
    parse_line(f"{element}_{family}")
    energies, weights, _ = _family_lines_cached(element, family, float(beam_energy_keV))
    return energies.copy(), weights.copy()


def line_energy(name: str) -> float:
    """Energy of a line family's main (strongest) sub-line in keV.

    The main line rather than the intensity-weighted mean is used, as exspy does (e.g. Fe_Ka
    at Ka1): integration windows centred on it hold the peak maximum.

    Parameters
    ----------
    name : str
        Line name such as ``"Fe_Ka"``.

    Returns
    -------
    float
        Energy in keV.
    """
    element, family = parse_line(name)
    # A fixed, high beam energy so that the main line does not depend on the microscope.
    energies, weights = family_lines(element, family, 1000.0)
    return float(energies[np.argmax(weights)])


def fwhm_at(energy_keV, fwhm_mnka_eV: float = 130.0) -> np.ndarray:
    """Detector resolution (FWHM) at given energies.

    ``FWHM(E)**2 = FWHM_MnKa**2 + 2.5 * (E - 5.8987) * 1000`` in eV² with E in keV (Fiori &
    Newbury, as exspy's ``get_FWHM_at_Energy``). Below Mn Kα the law can go to zero for good
    detectors; the FWHM is floored at a quarter of ``fwhm_mnka_eV`` to keep peaks finite.

    Parameters
    ----------
    energy_keV : array_like
        Energies in keV.
    fwhm_mnka_eV : float
        FWHM at Mn Kα (5.8987 keV) in eV.

    Returns
    -------
    ndarray
        FWHM in keV, same shape as ``energy_keV``.
    """
    energy = np.asarray(energy_keV, dtype=float)
    fwhm2 = fwhm_mnka_eV**2 + 2.5 * (energy - MNKA_ENERGY_KEV) * 1000.0
    return np.sqrt(np.maximum(fwhm2, (fwhm_mnka_eV / 4.0) ** 2)) / 1000.0


def element_families(
    element: str,
    beam_energy_keV: float = 200.0,
    energy_range_keV: tuple[float, float] = (0.0, np.inf),
) -> dict[str, float]:
    """Excited line families of an element inside an energy range, with relative intensities.

    Parameters
    ----------
    element : str
        Element symbol.
    beam_energy_keV : float
        Beam energy in keV; a level is excited when its edge energy is below it.
    energy_range_keV : (float, float)
        Keep families whose main-line energy (:func:`line_energy`) lies in ``[emin, emax]``.

    Returns
    -------
    dict
        ``{family: intensity}`` in order of increasing energy, the strongest family of the
        element (among those kept) being 1. Empty if none is excited in range.
    """
    emin, emax = energy_range_keV
    found = {}
    for family in _element_families_all(element):
        energy = line_energy(f"{element}_{family}")
        if not emin <= energy <= emax:
            continue
        *_, total = _family_lines_cached(element, family, float(beam_energy_keV))
        if _any_excited(element, family, beam_energy_keV) and total > 0:
            found[family] = (energy, total)
    if not found:
        return {}
    top = max(t for _, t in found.values())
    order = sorted(found, key=lambda f: found[f][0])
    return {f: found[f][1] / top for f in order}


def _any_excited(element: str, family: str, beam_energy_keV: float) -> bool:
    levels = {r[1] for r in _sublines(element) if r[0] == family}
    return any(_level_weight(element, lv, beam_energy_keV) > 0 for lv in levels)


def element_lines(
    element: str,
    beam_energy_keV: float = 200.0,
    energy_range_keV: tuple[float, float] = (0.0, np.inf),
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All sub-lines of an element's excited families in range, flattened.

    Parameters
    ----------
    element, beam_energy_keV, energy_range_keV
        As for :func:`element_families`.

    Returns
    -------
    energies : ndarray (m,)
        Sub-line energies in keV.
    intensities : ndarray (m,)
        Family intensity times sub-line weight.
    families : list of str (m,)
        Family of each sub-line.
    """
    energies, intensities, names = [], [], []
    for family, intensity in element_families(element, beam_energy_keV, energy_range_keV).items():
        e, w = family_lines(element, family, beam_energy_keV)
        energies.append(e)
        intensities.append(intensity * w)
        names += [family] * len(e)
    if not energies:
        return np.empty(0), np.empty(0), []
    return np.concatenate(energies), np.concatenate(intensities), names


def channel_edges(energy) -> np.ndarray:
    """Channel edges (C + 1,) in keV from channel centres (C,), midway between centres."""
    energy = np.asarray(energy, dtype=float)
    if energy.ndim != 1 or energy.size < 2:
        raise ValueError("energy must be a 1-D array of at least 2 channel centres (keV)")
    mid = 0.5 * (energy[1:] + energy[:-1])
    return np.concatenate(([2 * energy[0] - mid[0]], mid, [2 * energy[-1] - mid[-1]]))


def gaussian_peaks(energy, centres, weights, fwhm_mnka_eV: float = 130.0) -> np.ndarray:
    """Sum of area-normalised Gaussian peaks, integrated over each channel.

    Each peak's counts in a channel are the Gaussian integrated between the channel edges
    (midway between centres), so a peak of weight ``w`` well inside the axis puts ``w`` counts
    in total into the spectrum, whatever the channel width.

    Parameters
    ----------
    energy : array_like (C,)
        Channel centres in keV, increasing.
    centres : array_like (m,)
        Peak energies in keV.
    weights : array_like (m,)
        Peak areas (counts).
    fwhm_mnka_eV : float
        Detector FWHM at Mn Kα in eV; widths follow :func:`fwhm_at`.

    Returns
    -------
    ndarray (C,)
        Counts per channel.
    """
    edges = channel_edges(energy)
    centres = np.atleast_1d(np.asarray(centres, dtype=float))
    weights = np.atleast_1d(np.asarray(weights, dtype=float))
    if centres.shape != weights.shape:
        raise ValueError("centres and weights must have the same shape")
    sigma = fwhm_at(centres, fwhm_mnka_eV) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    z = (edges[None, :] - centres[:, None]) / (np.sqrt(2.0) * sigma[:, None])
    cdf = 0.5 * erf(z)
    return weights @ np.diff(cdf, axis=1)


@functools.cache
def atomic_mass(element: str) -> float:
    """Atomic mass of an element in g/mol (xraydb)."""
    return float(xraydb.atomic_mass(_check_element(element)))


@functools.cache
def atomic_number(element: str) -> int:
    """Atomic number of an element (xraydb)."""
    return int(xraydb.atomic_number(_check_element(element)))


@functools.lru_cache(maxsize=4096)
def _mu_scalar(element: str, energy_keV: float) -> float:
    return float(xraydb.mu_elam(_check_element(element), energy_keV * 1000.0, kind="total"))


def mass_attenuation(element_or_dict, energy_keV) -> np.ndarray:
    """Mass attenuation coefficient in cm²/g (xraydb ``mu_elam``, total).

    Parameters
    ----------
    element_or_dict : str or dict
        An element symbol, or a composition ``{element: weight fraction}``; the fractions are
        normalised to sum to 1 (so weight percent work too) and the coefficients are summed
        with these weights.
    energy_keV : float or array_like
        Photon energies in keV.

    Returns
    -------
    ndarray
        mu/rho in cm²/g, shape of ``energy_keV``.
    """
    energy = np.asarray(energy_keV, dtype=float)
    if isinstance(element_or_dict, str):
        flat = [_mu_scalar(element_or_dict, float(e)) for e in energy.ravel()]
        return np.asarray(flat).reshape(energy.shape)
    if not isinstance(element_or_dict, dict) or not element_or_dict:
        raise TypeError("element_or_dict must be an element symbol or a non-empty dict")
    fractions = np.array([float(v) for v in element_or_dict.values()])
    if np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError("composition weight fractions must be non-negative with a positive sum")
    fractions = fractions / fractions.sum()
    return sum(f * mass_attenuation(el, energy) for el, f in zip(element_or_dict, fractions))


# --------------------------------------------------------------------------- detector

# The layers of a silicon drift detector that X-rays cross, in order: a polyimide window
# (C22H10N2O5, 1.42 g/cm³), an Al light-blocking coating, the Si dead layer, the Si crystal.
DETECTOR_LAYERS = ("window", "coating", "dead_layer", "crystal")
_POLYIMIDE = {"C": 22, "H": 10, "N": 2, "O": 5}
_POLYIMIDE_DENSITY = 1.42


@functools.lru_cache(maxsize=64)
def _layer_attenuation_cached(energy_bytes: bytes) -> np.ndarray:
    energy_eV = np.frombuffer(energy_bytes, dtype=float) * 1000.0

    def mu(element):  # vectorised Elam table; it warns below 100 eV, where absorption is total
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(xraydb.mu_elam(element, energy_eV), dtype=float)

    masses = {el: n * atomic_mass(el) for el, n in _POLYIMIDE.items()}
    total = sum(masses.values())
    polyimide = sum(m / total * mu(el) for el, m in masses.items()) * _POLYIMIDE_DENSITY
    aluminium = mu("Al") * float(xraydb.atomic_density("Al"))
    silicon = mu("Si") * float(xraydb.atomic_density("Si"))
    out = np.stack([polyimide, aluminium, silicon, silicon]) * 1e-4  # 1/cm -> 1/µm
    out.setflags(write=False)
    return out


def detector_layer_attenuation(energy_keV) -> np.ndarray:
    """Linear attenuation coefficients of the detector layers, in 1/µm.

    Parameters
    ----------
    energy_keV : array_like
        Photon energies in keV.

    Returns
    -------
    ndarray (4, *energy_keV.shape)
        ``mu/rho * rho`` (xraydb ``mu_elam``, total) of the window (polyimide, 1.42 g/cm³), the
        coating (Al), the dead layer and the crystal (Si), in the order of ``DETECTOR_LAYERS``.
    """
    energy = np.asarray(energy_keV, dtype=float)
    flat = _layer_attenuation_cached(np.ascontiguousarray(energy.ravel()).tobytes())
    return flat.reshape((len(DETECTOR_LAYERS), *energy.shape))


def detector_efficiency(
    energy_keV,
    window_um: float = 0.3,
    coating_um: float = 0.03,
    dead_layer_um: float = 0.03,
    crystal_um: float = 450.0,
    threshold_keV: float = 0.1,
    threshold_width_keV: float = 0.02,
) -> np.ndarray:
    """Detection probability of a silicon drift detector (window, coating, dead layer, crystal).

    ``eff(E) = exp(-Σ mu_l t_l) (1 - exp(-mu_Si t_crystal)) S(E)`` over the window, coating and
    dead layer (:func:`detector_layer_attenuation`), times the share the crystal absorbs, times
    ``S(E) = (1 + erf((E - threshold) / (sqrt(2) threshold_width))) / 2``, the electronic noise
    threshold that cuts the spectrum below ~0.1 keV. The absorption edges of the layers (C, N,
    O K in the window, Al K, Si K) make steps in the curve.

    Parameters
    ----------
    energy_keV : array_like
        Photon energies in keV.
    window_um, coating_um, dead_layer_um, crystal_um : float
        Layer thicknesses in µm (>= 0).
    threshold_keV, threshold_width_keV : float
        Low-energy threshold and its width in keV.

    Returns
    -------
    ndarray
        Efficiency in [0, 1], shape of ``energy_keV``.
    """
    energy = np.asarray(energy_keV, dtype=float)
    mu = detector_layer_attenuation(energy)
    absorbed = mu[0] * window_um + mu[1] * coating_um + mu[2] * dead_layer_um
    eff = np.exp(-absorbed) * -np.expm1(-mu[3] * crystal_um)
    z = (energy - threshold_keV) / (np.sqrt(2.0) * threshold_width_keV)
    return eff * 0.5 * (1.0 + erf(z))
