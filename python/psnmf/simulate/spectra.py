"""Phases, quantified lines, k-factors and phase spectra."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import xray
from .detector import Detector, axis_range, check_energy

__all__ = ["K_LINE_MAX_Z", "Phase", "default_k_factor", "default_line", "phase_spectrum"]

# Elements up to Ge are quantified on K lines when Ka is on the axis; heavier ones on L (M when
# L is off the axis). This matches common TEM practice on a 0-20 keV axis.
K_LINE_MAX_Z = 32
_FAMILY_K_SCALE = {"K": 1.0, "L": 2.0, "M": 2.5}


def default_line(
    element: str,
    beam_energy: float = 200.0,
    energy_range: tuple[float, float] = (0.0, 20.48),
) -> str:
    """The line an element is quantified on, e.g. ``"Fe_Ka"``.

    Ka for Z <= 32 (Ge) when Ka is excited and inside ``energy_range``; otherwise La when
    excited and inside; otherwise Ma; otherwise Ka (heavy elements on a wide axis).

    Parameters
    ----------
    element : str
        Element symbol.
    beam_energy : float
        Beam energy in keV.
    energy_range : (float, float)
        Energy axis limits in keV.

    Returns
    -------
    str
        Line name in HyperSpy naming.

    Raises
    ------
    ValueError
        If the element is unknown or has no excited line family inside the range.
    """
    families = xray.element_families(element, beam_energy, energy_range)
    if not families:
        raise ValueError(
            f"element {element!r} has no line excited at beam_energy={beam_energy} keV "
            f"inside the energy axis {energy_range} keV"
        )
    light = xray.atomic_number(element) <= K_LINE_MAX_Z
    for family in ("Ka", "La", "Ma") if light else ("La", "Ma", "Ka"):
        if family in families:
            return f"{element}_{family}"
    # Only satellite families inside the range (e.g. Lb without La): take the strongest.
    return f"{element}_{max(families, key=families.get)}"


def default_k_factor(line: str, detector: Detector | None = None) -> float:
    """A smooth, documented stand-in for a Cliff–Lorimer k-factor (Si Kα = 1).

    ``k = g_shell * (1 + 0.07 (E - E_SiKa)) * eff(E_SiKa) / eff(E)`` with E the line energy in
    keV, ``g_shell`` = 1 (K), 2 (L), 2.5 (M) and ``eff`` the detector efficiency. It mimics the
    shape of measured 200 kV k-factors (≈1 for Al–Ca Kα, ≈1.5 Cu Kα, ≈3 Zr Kα; larger for L
    and M lines and for light elements behind the window). These are simulation truths, not
    measured values.

    Parameters
    ----------
    line : str
        Line name such as ``"Fe_Ka"``.
    detector : Detector, optional
        Detector whose efficiency enters the law (default :class:`Detector()`).

    Returns
    -------
    float
    """
    _, family = xray.parse_line(line)
    detector = Detector() if detector is None else detector
    energy = xray.line_energy(line)
    si_ka = xray.line_energy("Si_Ka")  # the law's normalisation point, k(Si_Ka) = 1
    eff = detector.efficiency(np.array([si_ka, energy]))
    return float(_FAMILY_K_SCALE[family[0]] * (1.0 + 0.07 * (energy - si_ka)) * eff[0] / eff[1])


# --------------------------------------------------------------------------- phases


class Phase:
    """A phase: a named composition with a density.

    Parameters
    ----------
    name : str
        Phase name, e.g. ``"Fe3O4"``.
    composition : dict
        ``{element: percent}`` summing to 100 (within 0.1); zero entries are dropped.
    fraction : {"at", "wt"}
        Whether ``composition`` is in atomic or weight percent.
    density : float, optional
        Density in g/cm³. The phantom builders weight counts by mass thickness (thickness ×
        density); ``None`` counts as 1.
    line_fraction : float
        Share of the phase spectrum's counts in characteristic lines, in (0, 1]; the rest is
        continuum.

    Attributes
    ----------
    elements : tuple of str
        Elements by increasing atomic number.
    atomic_percent, weight_percent : dict
        ``{element: percent}`` in the order of ``elements``; conversions use xraydb masses.
    """

    def __init__(
        self,
        name: str,
        composition: Mapping[str, float],
        *,
        fraction: str = "at",
        density: float | None = None,
        line_fraction: float = 0.45,
    ):
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not isinstance(composition, Mapping) or not composition:
            raise TypeError(f"composition of phase {name!r} must be a non-empty dict")
        if fraction not in ("at", "wt"):
            raise ValueError(f"fraction must be 'at' or 'wt', got {fraction!r}")
        if density is not None and not (np.isfinite(density) and density > 0):
            raise ValueError(f"density of phase {name!r} must be > 0, got {density}")
        if not 0.0 < line_fraction <= 1.0:
            raise ValueError(f"line_fraction must be in (0, 1], got {line_fraction}")
        values = {}
        for element, value in composition.items():
            xray.atomic_number(element)  # raises for unknown elements
            value = float(value)
            if not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"composition of phase {name!r}: {element} = {value} must be >= 0"
                )
            if value > 0:
                values[element] = value
        total = sum(values.values())
        if abs(total - 100.0) > 0.1:
            raise ValueError(
                f"composition of phase {name!r} sums to {total:g} {fraction}%, expected 100"
            )
        elements = tuple(sorted(values, key=xray.atomic_number))
        given = {el: 100.0 * values[el] / total for el in elements}
        other = _convert_percent(given, to="wt" if fraction == "at" else "at")
        self.name = name
        self.elements = elements
        self.density = None if density is None else float(density)
        self.line_fraction = float(line_fraction)
        self.atomic_percent = given if fraction == "at" else other
        self.weight_percent = other if fraction == "at" else given

    def __repr__(self) -> str:
        comp = ", ".join(f"{el}: {v:.4g}" for el, v in self.atomic_percent.items())
        return f"Phase({self.name!r}, at% {{{comp}}}, density={self.density})"


def _convert_percent(percent: Mapping[str, float], *, to: str) -> dict[str, float]:
    """at% -> wt% (``to="wt"``) or wt% -> at% (``to="at"``) with xraydb atomic masses."""
    mass = {el: xray.atomic_mass(el) for el in percent}
    if to == "wt":
        raw = {el: v * mass[el] for el, v in percent.items()}
    else:
        raw = {el: v / mass[el] for el, v in percent.items()}
    total = sum(raw.values())
    return {el: 100.0 * v / total for el, v in raw.items()}


# --------------------------------------------------------------------------- spectra


def _continuum(energy, beam_energy, efficiency):
    """Kramers' continuum shape ``(E0 - E) / E`` times efficiency (0 outside 0 < E < E0)."""
    positive = energy > 0
    shape = np.where(positive, np.clip(beam_energy - energy, 0.0, None), 0.0)
    shape[positive] /= energy[positive]
    return shape * efficiency


def resolve_lines(elements, lines, beam_energy, energy_range) -> dict[str, str]:
    """Quantified line per element: ``lines`` overrides :func:`default_line`."""
    chosen = {}
    for name in lines or ():
        element, family = xray.parse_line(name)
        if family not in xray.element_families(element, beam_energy, energy_range):
            raise ValueError(
                f"lines: {name} is not excited at {beam_energy} keV or not inside the "
                f"energy axis {energy_range} keV"
            )
        if element not in elements:
            raise ValueError(f"lines: {name} is for {element}, which is in no phase")
        chosen[element] = name
    return {el: chosen.get(el) or default_line(el, beam_energy, energy_range) for el in elements}


def resolve_k_factors(lines: Sequence[str], k_factors, detector) -> dict[str, float]:
    """k-factor of every quantified line: given ones, else :func:`default_k_factor`."""
    given = {} if k_factors is None else dict(k_factors)
    unknown = set(given) - set(lines)
    if unknown:
        raise ValueError(
            f"k_factors has lines {sorted(unknown)} that are not quantified lines {list(lines)}"
        )
    out = {}
    for line in lines:
        k = float(given[line]) if line in given else default_k_factor(line, detector)
        if not (np.isfinite(k) and k > 0):
            raise ValueError(f"k_factors[{line!r}] must be > 0, got {k}")
        out[line] = k
    return out


def build_phase_spectrum(phase, energy, lines, k_factors, beam_energy, fwhm_mnka, detector):
    """:func:`phase_spectrum` on validated inputs (``lines``: element -> quantified line)."""
    energy_range = axis_range(energy)
    centres, areas = [], []
    for element in phase.elements:
        line = lines[element]
        _, quant_family = xray.parse_line(line)
        families = xray.element_families(element, beam_energy, energy_range)
        names = [f"{element}_{f}" for f in families]
        eff = detector.efficiency(np.array([xray.line_energy(n) for n in names]))
        eff_q = eff[list(families).index(quant_family)]
        intensity_q = phase.weight_percent[element] / 100.0 / k_factors[line]
        for (family, rel), eff_f in zip(families.items(), eff):
            intensity = intensity_q * rel / families[quant_family] * eff_f / eff_q
            sub_e, sub_w = xray.family_lines(element, family, beam_energy)
            centres.append(sub_e)
            areas.append(intensity * sub_w)
    lines_part = xray.gaussian_peaks(
        energy, np.concatenate(centres), np.concatenate(areas), fwhm_mnka
    )
    spectrum = phase.line_fraction * lines_part / lines_part.sum()
    if phase.line_fraction < 1.0:
        cont = _continuum(energy, beam_energy, detector.efficiency(energy))
        spectrum += (1.0 - phase.line_fraction) * cont / cont.sum()
    return spectrum


def phase_spectrum(
    phase: Phase,
    energy=None,
    *,
    beam_energy: float = 200.0,
    fwhm_mnka: float = 130.0,
    k_factors: Mapping[str, float] | None = None,
    lines: Sequence[str] | None = None,
    detector: Detector | None = None,
) -> np.ndarray:
    """The normalised spectrum of one phase.

    Parameters
    ----------
    phase : Phase
    energy : ndarray (C,), optional
        Channel centres in keV (default :func:`energy_axis`).
    beam_energy : float
        Beam energy in keV.
    fwhm_mnka : float
        Detector FWHM at Mn Kα in eV.
    k_factors : dict, optional
        ``{line: k}`` for quantified lines; missing ones from :func:`default_k_factor`.
    lines : sequence of str, optional
        Quantified lines overriding :func:`default_line` for their elements.
    detector : Detector, optional

    Returns
    -------
    ndarray (C,)
        Non-negative, summing to 1.
    """
    energy = check_energy(energy)
    check_beam(beam_energy, fwhm_mnka)
    detector = Detector() if detector is None else detector
    chosen = resolve_lines(phase.elements, lines, beam_energy, axis_range(energy))
    ks = resolve_k_factors(list(chosen.values()), k_factors, detector)
    return build_phase_spectrum(phase, energy, chosen, ks, beam_energy, fwhm_mnka, detector)


def check_beam(beam_energy, fwhm_mnka):
    """Raise ValueError unless the beam energy (keV) and FWHM at Mn Ka (eV) are positive."""
    if not (np.isfinite(beam_energy) and beam_energy > 0):
        raise ValueError(f"beam_energy must be > 0 keV, got {beam_energy}")
    if not (np.isfinite(fwhm_mnka) and fwhm_mnka > 0):
        raise ValueError(f"fwhm_mnka must be > 0 eV, got {fwhm_mnka}")
