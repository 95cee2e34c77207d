"""Quantification of EDX spectra: line intensities, Cliff-Lorimer, thin-film absorption.

One function, :func:`quantify`, turns spectra (one, the k phase spectra of an unmixing, or a
stack of per-pixel spectra) into compositions. The steps:

1. Line intensities (counts), by one of two methods:

   - ``"windows"``: counts in ``E ± window_width/2 · FWHM(E)`` minus the background estimated
     from two side windows, as exspy's ``get_lines_intensity`` with
     ``estimate_background_windows`` (defaults: integration width 2 FWHM, i.e. ±1 FWHM; side
     windows 1 FWHM wide starting 2 FWHM from the line).
   - ``"fit"``: non-negative linear least squares of a design matrix ``G`` (C × p) to every
     spectrum at once. ``G`` holds one template per element -- the sum of all the element's
     excited families in the energy range, with the relative intensities of
     :func:`psnmf.xray.element_families`, Gaussian widths from the FWHM at Mn Kα, scaled so
     that the quantified family has unit area -- plus a smooth non-negative background. One
     template per element (rather than per family) is what separates lines that coincide,
     e.g. Pt Mα / Zr Lα (4 eV apart): the element's other families fix its share. With
     ``templates="family"`` every family gets its own column instead, which tolerates wrong
     family ratios (absorption, detector efficiency) but not coincident lines.
     The background is ``(E0 - E)/E`` (Kramers) times the detector efficiency times cubic
     B-splines on knots uniform in log E (``background_knots`` intervals over ``fit_range``),
     with non-negative coefficients: the efficiency carries the steep cut-off and the
     absorption edges of the detector, the splines a smooth correction too broad to absorb a
     peak.

   Detector efficiency. In exspy's convention a k-factor holds the efficiency at its own
   line, so Cliff-Lorimer needs no efficiency; but an element's other families (Ti L beside
   Ti K, Pt M beside Pt L) reach the spectrum scaled by the efficiency ratio to the quantified
   family, and the continuum under light-element lines has the steps of the window's C, N, O K
   edges. Both matter most where light-element lines sit (O Kα at 0.525 keV is 18 eV below
   the polyimide O K edge; V Lα is 14 eV from O Kα). ``efficiency="auto"`` (default) fits the
   physical model :func:`psnmf.xray.detector_efficiency` -- polyimide window, Al coating, Si
   dead layer, Si crystal, attenuation from xraydb -- by fitting its four thicknesses to the
   summed spectrum (lines and continuum together), then uses it for the family ratios and
   the background. Pass your detector's efficiency curve (a callable) when you know it, in
   particular for windows of other materials (Si3N4, windowless): it is then used as given.
   ``efficiency=None`` uses the tabulated family ratios and a Kramers × spline background,
   right only for spectra without detector absorption (e.g. already efficiency-corrected).

2. Cliff-Lorimer in exspy's convention: weight fractions ``C_i ∝ k_i I_i`` (summing to 1),
   atomic fractions ``∝ C_i / M_i`` with xraydb atomic masses.

3. Optionally the thin-film absorption correction: each intensity is multiplied by
   ``χρt / (1 - exp(-χρt))`` with ``χ = (μ/ρ)_specimen(E_line) / sin(take-off angle)``,
   ``(μ/ρ)_specimen = Σ_j C_j (μ/ρ)_j`` (xraydb), iterated with the composition to a fixed
   point (exspy's ``get_abs_corr_zeta`` factor, with the density given).

4. Uncertainties: both intensity estimators are linear in the counts, ``I = L y`` (for the fit
   ``L`` is the least-squares solution operator on the non-zero coefficients and the
   quantified lines -- a line NNLS clipped to 0 keeps the error of its free estimate), so under
   Poisson statistics ``Cov(I) = L diag(λ) Lᵀ`` with λ the fitted model (fit) or the counts
   (windows). This is propagated to the compositions to first order (delta method), holding the
   absorption factors fixed. For normalised component spectra pass ``counts``: each spectrum is
   rescaled to hold that many counts (its spectrum times the total counts of its map).

Everything is vectorised over spectra; Python loops run over lines or elements only.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline

from . import xray
from ._blas_threads import limits_blas_threads
from ._validation import check_int, check_real

__all__ = [
    "QuantificationResult",
    "ThinFilm",
    "cliff_lorimer",
    "nnls_batched",
    "quantify",
    "quantify_intensities",
]

_METHODS = ("fit", "windows")
_TEMPLATES = ("element", "family")
# The per-line arrays of a result, in the order of its CSV columns.
_TABLE_COLUMNS = (
    "atomic_percent",
    "atomic_percent_std",
    "weight_percent",
    "weight_percent_std",
    "intensities",
    "intensities_std",
)


@dataclass(frozen=True)
class ThinFilm:
    """Thin-film specimen for the absorption correction.

    Attributes
    ----------
    thickness : float
        Specimen thickness in nm.
    density : float
        Density in g/cm³.
    take_off_angle : float
        X-ray take-off angle in degrees.
    """

    thickness: float
    density: float
    take_off_angle: float

    def __post_init__(self):
        for name in ("thickness", "density", "take_off_angle"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"absorption {name} must be a positive number, got {value!r}")
        if self.take_off_angle > 90:
            raise ValueError(
                f"absorption take_off_angle must be in (0, 90] degrees, got {self.take_off_angle}"
            )

    @property
    def mass_thickness(self) -> float:
        """ρt in g/cm² (thickness converted from nm to cm)."""
        return self.density * self.thickness * 1e-7


@dataclass(frozen=True, repr=False)
class QuantificationResult:
    """Compositions and line intensities of quantified spectra.

    Arrays have shape (n_spectra, n_lines), or (n_lines,) when a single 1-D spectrum was given.

    Attributes
    ----------
    lines : tuple of str
        The quantified lines, e.g. ``("Fe_Ka", "Pt_La")``.
    elements : tuple of str
        Their elements.
    atomic_percent, weight_percent : ndarray
        Compositions in percent, summing to 100 over the lines.
    atomic_percent_std, weight_percent_std : ndarray
        One-sigma Poisson uncertainties in percent (absolute).
    intensities, intensities_std : ndarray
        Background-subtracted line intensities in counts (for ``"fit"`` the fitted area of the
        quantified family; for ``"windows"`` the counts in the integration window).
    k_factors : ndarray (n_lines,)
        Cliff-Lorimer k-factors used.
    method : str
        ``"fit"`` or ``"windows"``.
    absorption_factors : ndarray or None
        Absorption correction factors (≥ 1) applied to the intensities, if any.
    absorption_iterations : int
        Iterations the absorption correction took (0 without it).
    detector : dict or None
        With ``method="fit"`` and ``efficiency="auto"``: the fitted detector thicknesses in
        µm (``window_um``, ``coating_um``, ``dead_layer_um``, ``crystal_um`` of
        :func:`psnmf.xray.detector_efficiency`); None otherwise.
    """

    lines: tuple[str, ...]
    elements: tuple[str, ...]
    atomic_percent: np.ndarray
    weight_percent: np.ndarray
    atomic_percent_std: np.ndarray
    weight_percent_std: np.ndarray
    intensities: np.ndarray
    intensities_std: np.ndarray
    k_factors: np.ndarray
    method: str
    absorption_factors: np.ndarray | None = None
    absorption_iterations: int = 0
    detector: dict | None = None

    def to_dict(self) -> dict:
        """Plain-Python dict (lists of floats), as written by :meth:`to_json`."""
        out = {"lines": list(self.lines), "elements": list(self.elements), "method": self.method}
        out["k_factors"] = self.k_factors.tolist()
        for name in _TABLE_COLUMNS:
            out[name] = np.asarray(getattr(self, name)).tolist()
        if self.absorption_factors is not None:
            out["absorption_factors"] = self.absorption_factors.tolist()
            out["absorption_iterations"] = self.absorption_iterations
        if self.detector is not None:
            out["detector"] = dict(self.detector)
        return out

    def to_json(self, path=None, **kwargs) -> str:
        """Serialise to JSON; written to ``path`` if given. Returns the JSON text."""
        text = json.dumps(self.to_dict(), **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def to_csv(self, path=None) -> str:
        """One row per spectrum, columns ``<line>_<quantity>``; written to ``path`` if given.

        Returns the CSV text.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["spectrum"]
        for name in _TABLE_COLUMNS:
            header += [f"{line}_{name}" for line in self.lines]
        writer.writerow(header)
        tables = [np.atleast_2d(getattr(self, name)) for name in _TABLE_COLUMNS]
        for i in range(tables[0].shape[0]):
            row = [i]
            for table in tables:
                row += [repr(float(v)) for v in table[i]]
            writer.writerow(row)
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        return text

    def __repr__(self) -> str:
        at = np.atleast_2d(self.atomic_percent)
        sd = np.atleast_2d(self.atomic_percent_std)
        wt = np.atleast_2d(self.weight_percent)
        shown = range(min(at.shape[0], 20))
        cells = [
            [f"{at[i, j]:.2f}±{sd[i, j]:.2f} [{wt[i, j]:.1f}]" for j in range(at.shape[1])]
            for i in shown
        ]
        # every column at least two spaces wider than its widest entry
        width = 2 + max(len(text) for text in [*self.lines, *(c for row in cells for c in row)])
        title = (
            f"QuantificationResult(method={self.method!r}, "
            f"{at.shape[0]} spectra) — atomic % ± 1σ [weight %]"
        )
        if self.detector is not None:
            fitted = ", ".join(
                f"{k.removesuffix('_um')} {v:.3g}" for k, v in self.detector.items()
            )
            title += f"; detector fitted (µm): {fitted}"
        rows = [title, f"{'spectrum':>8}" + "".join(f"{line:>{width}}" for line in self.lines)]
        for i, row in zip(shown, cells):
            rows.append(f"{i:>8}" + "".join(f"{cell:>{width}}" for cell in row))
        if at.shape[0] > len(shown):
            rows.append(f"{'...':>8} ({at.shape[0] - len(shown)} more)")
        return "\n".join(rows)


# ----------------------------------------------------------------------------- validation


def _as_spectra(spectra) -> tuple[np.ndarray, bool]:
    try:
        array = np.asarray(spectra, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"spectra must be a numeric array of shape (C,) or (n, C): {err}"
        ) from None
    if array.ndim not in (1, 2):
        raise ValueError(f"spectra must have shape (C,) or (n, C), got shape {array.shape}")
    if array.size == 0:
        raise ValueError("spectra is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError("spectra contains NaN or infinite values")
    if np.any(array < 0):
        raise ValueError("spectra contains negative values; counts must be non-negative")
    return np.atleast_2d(array), array.ndim == 1


def _as_energy(energy, n_channels: int) -> np.ndarray:
    energy = np.asarray(energy, dtype=float)
    if energy.ndim != 1:
        raise ValueError(f"energy must be 1-D channel centres in keV, got shape {energy.shape}")
    if energy.size != n_channels:
        raise ValueError(
            f"energy has {energy.size} channels but spectra have {n_channels}: "
            "the energy axis does not match the spectra"
        )
    if not np.all(np.isfinite(energy)):
        raise ValueError("energy contains NaN or infinite values")
    if np.any(np.diff(energy) <= 0):
        raise ValueError("energy must be strictly increasing (channel centres in keV)")
    return energy


def _as_lines(lines) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    if isinstance(lines, str) or not isinstance(lines, Sequence):
        raise TypeError("lines must be a sequence of line names such as ['Fe_Ka', 'Pt_La']")
    if len(lines) == 0:
        raise ValueError("lines is empty")
    parsed = [xray.parse_line(line) for line in lines]
    elements = tuple(el for el, _ in parsed)
    duplicated = sorted({el for el in elements if elements.count(el) > 1})
    if duplicated:
        raise ValueError(f"lines: one line per element, but {duplicated} appear more than once")
    return tuple(lines), elements, tuple(fam for _, fam in parsed)


def _as_k_factors(k_factors, lines: tuple[str, ...]) -> np.ndarray:
    if isinstance(k_factors, Mapping):
        missing = [line for line in lines if line not in k_factors]
        if missing:
            raise ValueError(f"k_factors: no k-factor for {missing}")
        values = [k_factors[line] for line in lines]
    elif isinstance(k_factors, str) or not np.iterable(k_factors):
        raise TypeError("k_factors must be a dict {line: k} or a sequence in the order of lines")
    else:
        values = list(k_factors)
        if len(values) != len(lines):
            raise ValueError(
                f"k_factors has {len(values)} values but there are {len(lines)} lines"
            )
    try:
        k = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("k_factors values must be numbers") from None
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError(f"k_factors must be positive finite numbers, got {k.tolist()}")
    return k


def _as_counts(counts, n_spectra: int) -> np.ndarray | None:
    if counts is None:
        return None
    counts = np.atleast_1d(np.asarray(counts, dtype=float))
    if counts.shape != (n_spectra,):
        raise ValueError(f"counts must have shape ({n_spectra},), got {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("counts must be finite and non-negative")
    return counts


def _check_fit_range(fit_range, energy, lines, line_energies) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in fit_range)
    except (TypeError, ValueError):
        raise TypeError("fit_range must be a pair (emin, emax) of energies in keV") from None
    # log-spaced background knots need a positive lower bound
    if not (lo > 0 and hi > lo):
        raise ValueError(f"fit_range must satisfy 0 < emin < emax (keV), got {fit_range}")
    lo, hi = max(lo, energy[0]), min(hi, energy[-1])
    outside = [ln for ln, e in zip(lines, line_energies) if not lo <= e <= hi]
    if outside:
        raise ValueError(f"lines {outside} lie outside fit_range {lo:.3f}-{hi:.3f} keV")
    return lo, hi


def _as_absorption(absorption) -> ThinFilm | None:
    if absorption is None or isinstance(absorption, ThinFilm):
        return absorption
    if isinstance(absorption, Mapping):
        expected = {"thickness", "density", "take_off_angle"}
        if set(absorption) != expected:
            raise ValueError(
                f"absorption must have exactly the keys {sorted(expected)} "
                f"(nm, g/cm³, degrees), got {sorted(absorption)}"
            )
        return ThinFilm(**{k: float(v) for k, v in absorption.items()})
    raise TypeError("absorption must be None, a ThinFilm or a dict")


# ----------------------------------------------------------------------------- Cliff-Lorimer


def cliff_lorimer(intensities, k_factors, elements, absorption_factors=None):
    """Weight and atomic fractions from line intensities (exspy's Cliff-Lorimer convention).

    ``C_i = k_i A_i I_i / Σ_j k_j A_j I_j`` and ``x_i = (C_i / M_i) / Σ_j C_j / M_j``.
    Negative intensities count as 0; a spectrum with no positive intensity gives NaN.

    Parameters
    ----------
    intensities : array_like (..., n_lines)
        Line intensities (counts).
    k_factors : array_like (n_lines,)
        k-factors.
    elements : sequence of str (n_lines,)
        Element of each line (for the atomic masses).
    absorption_factors : array_like (..., n_lines), optional
        Multiplicative absorption corrections ``A_i``.

    Returns
    -------
    weight_fraction, atomic_fraction : ndarray (..., n_lines)
        Fractions summing to 1 along the last axis.
    """
    weighted = np.clip(np.asarray(intensities, dtype=float), 0.0, None) * np.asarray(k_factors)
    if absorption_factors is not None:
        weighted = weighted * absorption_factors
    masses = np.array([xray.atomic_mass(el) for el in elements])
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = weighted / weighted.sum(axis=-1, keepdims=True)
        per_mass = weight / masses
        atomic = per_mass / per_mass.sum(axis=-1, keepdims=True)
    return weight, atomic


def _fraction_jacobian(fractions: np.ndarray, scale: np.ndarray, total: np.ndarray) -> np.ndarray:
    """d f_i / d I_j for f_i = s_i I_i / Σ s I: (s_j / S)(δ_ij − f_i), shape (n, l, l)."""
    n_lines = fractions.shape[-1]
    eye = np.eye(n_lines)
    return (scale / total)[:, None, :] * (eye[None] - fractions[:, :, None])


def _absorption_factors(weight, mu_lines, film: ThinFilm) -> np.ndarray:
    """χρt / (1 − exp(−χρt)) per spectrum and line; ``mu_lines[i, j]`` = (μ/ρ)_j at line i."""
    mu_specimen = weight @ mu_lines.T  # (n, lines): Σ_j C_j (μ/ρ)_j(E_i)
    x = mu_specimen * film.mass_thickness / np.sin(np.radians(film.take_off_angle))
    # x / (1 − e^−x) → 1 as x → 0; expm1 keeps it accurate for thin films.
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(x > 1e-12, x / -np.expm1(-x), 1.0 + x / 2)
    return factor


def _corrected_composition(intensities, k, elements, line_energies, film, tol, max_iter):
    """Cliff-Lorimer with the thin-film absorption correction iterated to a fixed point."""
    weight, atomic = cliff_lorimer(intensities, k, elements)
    if film is None:
        return weight, atomic, None, 0
    mu_lines = np.array(
        [[float(xray.mass_attenuation(el, e)) for el in elements] for e in line_energies]
    )
    factors = np.ones_like(weight)
    for iteration in range(1, max_iter + 1):
        # NaN rows (no signal) stay NaN; treat them as converged.
        factors = _absorption_factors(np.nan_to_num(weight), mu_lines, film)
        new_weight, atomic = cliff_lorimer(intensities, k, elements, factors)
        change = np.nanmax(np.abs(new_weight - weight), initial=0.0)
        weight = new_weight
        if change < tol:
            return weight, atomic, factors, iteration
    warnings.warn(
        f"absorption correction did not converge in {max_iter} iterations "
        f"(last change {change:.2e} in weight fraction)",
        RuntimeWarning,
        stacklevel=3,
    )
    return weight, atomic, factors, max_iter


# ----------------------------------------------------------------------------- windows


def _window_operator(energy, lines, fwhm_mnka, window_width, background_width, bg_offset):
    """Rows L (n_lines, C) such that intensities = spectra @ L.T (exspy-like windows)."""
    op = np.zeros((len(lines), energy.size))
    for i, line in enumerate(lines):
        centre = xray.line_energy(line)
        fwhm = float(xray.fwhm_at(centre, fwhm_mnka))
        half = window_width * fwhm / 2.0
        inside = (energy >= centre - half) & (energy < centre + half)
        if not inside.any():
            raise ValueError(f"the integration window of {line} holds no channel")
        left = (energy >= centre - (bg_offset[0] + background_width) * fwhm) & (
            energy < centre - bg_offset[0] * fwhm
        )
        right = (energy >= centre + bg_offset[1] * fwhm) & (
            energy < centre + (bg_offset[1] + background_width) * fwhm
        )
        side = left | right
        op[i, inside] = 1.0
        if background_width > 0 and side.any():
            # Mean background per channel from the side windows, times the window's channels.
            op[i, side] -= inside.sum() / side.sum()
    return op


# ----------------------------------------------------------------------------- fit


def _background_basis(energy, beam_energy, n_intervals, span=None):
    """Kramers shape (E0 − E)/E times cubic B-splines on knots uniform in log E.

    Log-spaced knots follow the steep low-energy part of a real continuum (detector window
    and absorption cut it off below ~1 keV) yet are several keV apart at high energies, far
    broader than any peak.
    """
    # span: the knot range, when evaluating at energies other than the fitted channels
    lo, hi = (energy[0], energy[-1]) if span is None else span
    inner = np.exp(np.linspace(np.log(lo), np.log(hi), n_intervals + 1))
    inner[0], inner[-1] = lo, hi
    degree = 3
    knots = np.concatenate(([lo] * degree, inner, [hi] * degree))
    n_basis = len(knots) - degree - 1
    splines = BSpline(knots, np.eye(n_basis), degree, extrapolate=False)(energy)
    kramers = (beam_energy - energy) / energy
    return np.nan_to_num(splines) * kramers[:, None]


def _family_columns(energy, elements, families, extra, beam_energy, fwhm_mnka):
    """Per element: (quantified?, {family: (peak column (C,), main-line energy)}).

    Each column is the family's sub-lines with the tabulated intensities of
    :func:`psnmf.xray.element_families`, scaled so that the element's reference family (the
    quantified one, or the strongest for extra elements) has unit area.
    """
    erange = (energy[0], energy[-1])
    out = []
    for el, fam in [*zip(elements, families), *((e, None) for e in extra)]:
        present = xray.element_families(el, beam_energy, erange)
        if fam is not None and fam not in present:
            raise ValueError(
                f"line {el}_{fam} is not excited at beam_energy={beam_energy} keV "
                f"or lies outside the energy axis {erange[0]:.3f}-{erange[1]:.3f} keV"
            )
        if not present:
            continue
        ref = fam if fam is not None else max(present, key=present.get)
        columns = {}
        for f, intensity in present.items():
            e, w = xray.family_lines(el, f, beam_energy)
            column = xray.gaussian_peaks(energy, e, w * intensity / present[ref], fwhm_mnka)
            columns[f] = (column, xray.line_energy(f"{el}_{f}"), f == ref)
        out.append((fam is not None, columns))
    return out


def _assemble_templates(parts, mode, efficiency):
    """Peak columns (C, p) and, per quantified line, the column holding its family's area.

    ``efficiency`` (callable E → relative detection efficiency, or None) scales each family
    relative to the element's reference family, as a detector does (the k-factor holds the
    quantified family's own efficiency).
    """
    columns, line_column = [], []
    for quantified, fams in parts:
        seen = _family_efficiency([e for _, e, _ in fams.values()], efficiency)
        ref = next(s for s, (_, _, is_ref) in zip(seen, fams.values()) if is_ref)
        peaks = [col * (s / ref) for s, (col, _, _) in zip(seen, fams.values())]
        if mode == "element":
            if quantified:
                line_column.append(len(columns))
            columns.append(sum(peaks))
        else:
            for peak, (_, _, is_ref) in zip(peaks, fams.values()):
                if quantified and is_ref:
                    line_column.append(len(columns))
                columns.append(peak)
    return np.column_stack(columns), np.array(line_column)


def _family_efficiency(line_energies, efficiency):
    """Relative efficiency at each family's main line (1 without an efficiency)."""
    if efficiency is None:
        return np.ones(len(line_energies))
    values = np.asarray(efficiency(np.asarray(line_energies, dtype=float)), dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        # A curve that vanishes at a line carries no information there: ignore it.
        return np.ones(len(line_energies))
    return values


def _solve_passive(gram, rhs, passive):
    """Solve gram[P, P] x = rhs[P] for every column, grouping columns by passive set."""
    out = np.zeros_like(rhs)
    patterns, inverse = np.unique(passive.T, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        cols = np.flatnonzero(inverse.ravel() == g)
        idx = np.flatnonzero(pattern)
        if idx.size == 0:
            continue
        sub = gram[np.ix_(idx, idx)]
        try:
            sol = np.linalg.solve(sub, rhs[np.ix_(idx, cols)])
        except np.linalg.LinAlgError:
            sol = np.linalg.lstsq(sub, rhs[np.ix_(idx, cols)], rcond=None)[0]
        out[np.ix_(idx, cols)] = sol
    return out


def nnls_batched(gram, rhs, max_iter=None):
    """Non-negative least squares for many right-hand sides at once.

    Minimises ``½ xᵀ Q x − bᵀ x`` subject to ``x ≥ 0`` for every column b of ``rhs``, i.e.
    ``min ‖G x − y‖`` with ``Q = GᵀG``, ``b = Gᵀy``. Lawson-Hanson active-set iterations run
    on all columns together; the linear solves are grouped by passive set (Van Benthem &
    Keenan's fast combinatorial NNLS), so the cost scales with the number of distinct passive
    sets, not with the number of spectra.

    Parameters
    ----------
    gram : ndarray (p, p)
        ``GᵀG``, symmetric positive definite.
    rhs : ndarray (p, n)
        ``GᵀY``.
    max_iter : int, optional
        Outer iterations (default 3 p).

    Returns
    -------
    x : ndarray (p, n)
        Non-negative solutions.
    passive : ndarray of bool (p, n)
        Where x is free (non-zero).
    """
    p, n = rhs.shape
    max_iter = 3 * p if max_iter is None else max_iter
    x = np.zeros((p, n))
    passive = np.zeros((p, n), dtype=bool)
    tol = 1e-10 * np.maximum(np.abs(rhs).max(axis=0), np.finfo(float).tiny)
    grad = rhs.copy()  # b − Q x, the negative gradient
    todo = np.any(grad > tol, axis=0)
    for _ in range(max_iter):
        cols = np.flatnonzero(todo)
        if cols.size == 0:
            break
        xc, pc = x[:, cols], passive[:, cols]
        candidate = np.where(pc, -np.inf, grad[:, cols])
        pc[np.argmax(candidate, axis=0), np.arange(cols.size)] = True
        trial = _solve_passive(gram, rhs[:, cols], pc)
        for _inner in range(p):
            infeasible = pc & (trial <= 0)
            bad = np.flatnonzero(infeasible.any(axis=0))
            if bad.size == 0:
                break
            # Step from x towards the trial point until the first coefficient hits zero.
            xb, tb = xc[:, bad], trial[:, bad]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(infeasible[:, bad], xb / (xb - tb), np.inf)
            alpha = np.clip(ratio.min(axis=0), 0.0, 1.0)
            xb = xb + alpha * (tb - xb)
            pb = pc[:, bad] & (xb > tol[cols[bad]] * 1e-6)
            xc[:, bad] = np.where(pb, xb, 0.0)
            pc[:, bad] = pb
            trial[:, bad] = _solve_passive(gram, rhs[:, cols[bad]], pb)
        xc = np.where(pc, np.clip(trial, 0.0, None), 0.0)
        x[:, cols], passive[:, cols] = xc, pc
        grad[:, cols] = rhs[:, cols] - gram @ xc
        todo[cols] = np.any((grad[:, cols] > tol[cols]) & ~pc, axis=0)
    return x, passive


def _design(parts, energy, fitted, options, efficiency, splines=None):
    """Unit-norm design matrix on the fitted channels, column norms, line columns.

    ``efficiency`` scales each element's families and shapes the continuum: the background
    columns are Kramers × B-splines × efficiency, so the splines only absorb what the
    efficiency and Kramers' law leave (a smooth correction, not the detector's edges).
    """
    peaks, line_column = _assemble_templates(parts, options["mode"], efficiency)
    # Templates are built on the whole axis (so a peak cut by the range keeps its scale),
    # then every column is restricted to the fitted channels.
    e_fit = energy[fitted]
    if splines is None:
        splines = _background_basis(e_fit, options["beam_energy"], options["knots"])
    if efficiency is not None:
        splines = splines * np.asarray(efficiency(e_fit), dtype=float)[:, None]
    design = np.column_stack([peaks[fitted], splines])
    norms = np.linalg.norm(design, axis=0)
    norms[norms == 0] = 1.0  # an empty column stays 0 and is never selected by NNLS
    return design / norms, norms, line_column


# Detector parameters fitted by efficiency="auto": start (a typical polymer-window SDD) and
# bounds in µm. The crystal's upper bound makes it ~fully absorbing up to 20 keV.
_DETECTOR_START = {
    "window_um": 0.3,
    "coating_um": 0.03,
    "dead_layer_um": 0.03,
    "crystal_um": 450.0,
}
_DETECTOR_BOUNDS = {
    "window_um": (0.0, 5.0),
    "coating_um": (0.0, 0.5),
    "dead_layer_um": (0.0, 1.0),
    "crystal_um": (20.0, 5000.0),
}


def _fit_detector(total, parts, energy, fitted, options):
    """``efficiency="auto"``: the detector curve that best explains the summed spectrum.

    The efficiency is :func:`psnmf.xray.detector_efficiency` (polyimide window, Al coating,
    Si dead layer, Si crystal; xraydb attenuation), its four thicknesses fitted by
    non-linear least squares; for each trial the lines and background are solved by NNLS
    (variable projection). Both the ratio of an element's families (e.g. Ti L to Ti K) and the
    continuum (Kramers × efficiency × smooth splines) constrain the thicknesses; the absorption
    edges of the window (C, N, O K), coating (Al K) and dead layer (Si K) are steps that no
    smooth background can mimic, so the continuum next to light-element lines is modelled,
    not guessed. Returns the efficiency as a callable of energy (keV) and the thicknesses.
    """
    from scipy.optimize import least_squares
    from scipy.optimize import nnls as scipy_nnls

    names = tuple(_DETECTOR_START)
    splines = _background_basis(energy[fitted], options["beam_energy"], options["knots"])
    scale = max(float(np.abs(total).max()), np.finfo(float).tiny)
    target = total / scale

    def efficiency_of(theta):
        return functools.partial(xray.detector_efficiency, **dict(zip(names, theta)))

    def residual(theta):
        design, _, _ = _design(parts, energy, fitted, options, efficiency_of(theta), splines)
        coef = scipy_nnls(design, target, maxiter=50 * design.shape[1])[0]
        return design @ coef - target

    x0 = np.array([_DETECTOR_START[n] for n in names])
    lower = np.array([_DETECTOR_BOUNDS[n][0] for n in names])
    upper = np.array([_DETECTOR_BOUNDS[n][1] for n in names])
    fit = least_squares(residual, x0, bounds=(lower, upper), x_scale=x0, diff_step=1e-4)
    return efficiency_of(fit.x), {n: float(v) for n, v in zip(names, fit.x)}


def _fit_intensities(y, energy, elements, families, *, fit_range, extra, efficiency, **options):
    """Fitted family areas (n, l), their Poisson covariance (n, l, l), fitted detector."""
    detector = None
    fitted = (energy >= fit_range[0]) & (energy <= fit_range[1])
    if fitted.sum() < 2:
        raise ValueError(f"fit_range {fit_range} keV holds fewer than 2 channels")
    parts = _family_columns(
        energy, elements, families, extra, options["beam_energy"], options["fwhm_mnka"]
    )
    if isinstance(efficiency, str):
        # One detector for the whole data set: fitted on the summed spectrum.
        efficiency, detector = _fit_detector(y.sum(axis=0)[fitted], parts, energy, fitted, options)
    design, norms, line_column = _design(parts, energy, fitted, options, efficiency)
    y = y[:, fitted]
    gram = design.T @ design
    coef, passive = nnls_batched(gram, design.T @ y.T)
    model = np.clip((design @ coef).T, 0.0, None)  # (n, C), the Poisson mean estimate
    intensities = (coef[line_column] / norms[line_column, None]).T

    cov = np.zeros((y.shape[0], len(line_column), len(line_column)))
    # A line NNLS clipped to 0 is still uncertain: its error is that of the free estimate.
    free = passive.copy()
    free[line_column] = True
    patterns, inverse = np.unique(free.T, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        rows = np.flatnonzero(inverse.ravel() == g)
        cov[rows] = _linear_covariance(
            _line_operator(gram, design, pattern, line_column) / norms[line_column, None],
            model[rows],
        )
    return intensities, cov, detector


def _line_operator(gram, design, pattern, line_column):
    """Rows of the least-squares solution operator (GₚᵀGₚ)⁻¹Gₚᵀ for the line columns."""
    idx = np.flatnonzero(pattern)
    op = np.zeros((len(line_column), design.shape[0]))
    if idx.size == 0:
        return op
    sub = gram[np.ix_(idx, idx)]
    try:
        solution = np.linalg.solve(sub, design[:, idx].T)
    except np.linalg.LinAlgError:
        # lstsq with ~1000 right-hand sides is slow in LAPACK's gelsd: pseudo-inverse instead
        solution = np.linalg.pinv(sub) @ design[:, idx].T
    for i, col in enumerate(line_column):
        where = np.flatnonzero(idx == col)
        if where.size:
            op[i] = solution[where[0]]
    return op


def _linear_covariance(operator, mean):
    """Cov(L y) for Poisson y with means ``mean`` (n, C): L diag(mean) Lᵀ, shape (n, l, l)."""
    n_lines = operator.shape[0]
    products = (operator[:, None, :] * operator[None, :, :]).reshape(n_lines**2, -1)
    return (mean @ products.T).reshape(-1, n_lines, n_lines)


# ----------------------------------------------------------------------------- public


@limits_blas_threads
def quantify(
    spectra,
    energy,
    lines,
    k_factors,
    *,
    method: str = "fit",
    beam_energy: float = 200.0,
    fwhm_mnka: float = 130.0,
    window_width: float = 2.0,
    background_windows: tuple[float, float] | None = (2.0, 2.0),
    background_window_width: float = 1.0,
    templates: str = "element",
    extra_elements: Sequence[str] = (),
    efficiency="auto",
    background_knots: int = 15,
    fit_range: tuple[float, float] = (0.1, np.inf),
    absorption=None,
    counts=None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> QuantificationResult:
    """Quantify EDX spectra by Cliff-Lorimer, with Poisson uncertainties.

    Parameters
    ----------
    spectra : array_like (C,) or (n, C)
        Spectra in counts (one spectrum, the k phase spectra, or per-pixel spectra), or
        normalised spectra together with ``counts``. Non-negative and finite.
    energy : array_like (C,)
        Channel centres in keV, strictly increasing.
    lines : sequence of str (n_lines,)
        One line per element in HyperSpy naming, e.g. ``["Fe_Ka", "Pt_La"]``.
    k_factors : dict or sequence
        ``{line: k}`` or k-factors in the order of ``lines`` (exspy's convention,
        ``C_a / C_b = k_a I_a / (k_b I_b)`` with C weight fractions).
    method : {"fit", "windows"}
        Line intensities by least-squares fit of element templates plus background, or by
        integration windows with side-window background (module docstring).
    beam_energy : float
        Beam energy in keV (sets which shells are excited and the family ratios).
    fwhm_mnka : float
        Detector FWHM at Mn Kα in eV (exspy's ``energy_resolution_MnKa``).
    window_width : float
        ``"windows"``: integration window width in units of the line's FWHM (exspy's
        ``windows_width``; 2 means ±1 FWHM).
    background_windows : (float, float) or None
        ``"windows"``: distance of the left and right background windows from the line, in
        FWHM (exspy's ``line_width``); None subtracts no background.
    background_window_width : float
        ``"windows"``: width of each background window in FWHM.
    templates : {"element", "family"}
        ``"fit"``: one template per element (all its families with modelled ratios) or one
        column per family.
    extra_elements : sequence of str
        ``"fit"``: elements present in the spectra but not quantified (e.g. a Cu grid); they
        get templates so that their lines are not taken for background or other elements.
    efficiency : "auto", None or callable
        ``"fit"``: detector efficiency (module docstring, "Detector efficiency"). It scales an
        element's families relative to its quantified one (whose efficiency is in the
        k-factor) and shapes the continuum. ``"auto"`` (default): the window/coating/dead
        layer/crystal model of :func:`psnmf.xray.detector_efficiency` with thicknesses fitted
        to the summed spectrum (one detector for all spectra). A callable maps energies (keV,
        array) to efficiencies and is used as given: pass it when you know your detector,
        and always for detectors the model cannot represent (Si3N4 or no window). None: the
        tabulated ratios of :mod:`psnmf.xray` and a detector-free continuum.
    background_knots : int
        ``"fit"``: number of background B-spline intervals (knots uniform in log E).
    fit_range : (float, float)
        ``"fit"``: energies (keV) fitted; the default leaves out the noise peak below 0.1 keV.
        The quantified lines must lie inside it.
    absorption : None, dict or ThinFilm
        Thin-film absorption correction: ``{"thickness": nm, "density": g/cm³,
        "take_off_angle": degrees}``.
    counts : array_like (n,), optional
        Total counts of each spectrum; the spectra are rescaled to hold them (for component
        spectra normalised to 1: the total counts of the component's map). Needed for
        meaningful uncertainties of normalised spectra.
    tol, max_iter : float, int
        Convergence of the absorption correction (change of any weight fraction).
    n_threads : int or None
        Threads of numpy's BLAS/LAPACK during the call (None: their default).

    Returns
    -------
    QuantificationResult
        Arrays of shape (n, n_lines), or (n_lines,) for a 1-D ``spectra``.

    Raises
    ------
    ValueError
        Unknown elements/lines, lines outside the energy axis or not excited, missing
        k-factors, an energy axis that does not match the spectra, NaN or negative input,
        bad options.
    TypeError
        Arguments of the wrong type.
    """
    check_real(beam_energy, "beam_energy", minimum=0.0, exclusive=True)
    check_real(fwhm_mnka, "fwhm_mnka", minimum=0.0, exclusive=True)
    check_real(window_width, "window_width", minimum=0.0, exclusive=True)
    check_real(background_window_width, "background_window_width", minimum=0.0)
    check_real(tol, "tol", minimum=0.0)
    check_int(max_iter, "max_iter", minimum=1)
    y, single = _as_spectra(spectra)
    energy = _as_energy(energy, y.shape[1])
    lines, elements, families = _as_lines(lines)
    k = _as_k_factors(k_factors, lines)
    counts = _as_counts(counts, y.shape[0])
    film = _as_absorption(absorption)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if templates not in _TEMPLATES:
        raise ValueError(f"templates must be one of {_TEMPLATES}, got {templates!r}")
    if not np.isfinite(beam_energy) or beam_energy <= 0:
        raise ValueError(f"beam_energy must be a positive number of keV, got {beam_energy!r}")
    if not np.isfinite(fwhm_mnka) or fwhm_mnka <= 0:
        raise ValueError(f"fwhm_mnka must be a positive number of eV, got {fwhm_mnka!r}")
    line_energies = np.array([xray.line_energy(line) for line in lines])
    outside = [ln for ln, e in zip(lines, line_energies) if not energy[0] <= e <= energy[-1]]
    if outside:
        raise ValueError(
            f"lines {outside} lie outside the energy axis {energy[0]:.3f}-{energy[-1]:.3f} keV"
        )
    if method == "fit":
        fit_range = _check_fit_range(fit_range, energy, lines, line_energies)
        if not (efficiency is None or efficiency == "auto" or callable(efficiency)):
            raise TypeError(f"efficiency must be 'auto', None or a callable, got {efficiency!r}")
        if not isinstance(background_knots, (int, np.integer)) or background_knots < 1:
            raise ValueError(f"background_knots must be a positive int, got {background_knots!r}")
    extra = tuple(el for el in extra_elements if el not in elements)
    for el in extra:
        xray.atomic_mass(el)  # raises ValueError for unknown elements

    if counts is not None:
        totals = y.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = y * np.where(totals > 0, counts / totals, 0.0)[:, None]
    elif y.shape[0] and np.all(np.abs(y.sum(axis=1) - 1.0) < 1e-6):
        warnings.warn(
            "spectra look normalised (rows sum to 1): pass counts= for meaningful uncertainties",
            UserWarning,
            stacklevel=2,
        )

    detector = None
    if method == "windows":
        offsets = (0.0, 0.0) if background_windows is None else background_windows
        width = 0.0 if background_windows is None else background_window_width
        operator = _window_operator(energy, lines, fwhm_mnka, window_width, width, offsets)
        intensities = y @ operator.T
        cov = _linear_covariance(operator, y)
    else:
        intensities, cov, detector = _fit_intensities(
            y,
            energy,
            elements,
            families,
            beam_energy=beam_energy,
            fwhm_mnka=fwhm_mnka,
            knots=background_knots,
            fit_range=fit_range,
            extra=extra,
            mode=templates,
            efficiency=efficiency,
        )

    result = quantify_intensities(
        intensities,
        lines,
        k,
        absorption=film,
        covariance=cov,
        method=method,
        tol=tol,
        max_iter=max_iter,
    )
    result = dataclasses.replace(result, detector=detector)
    if not single:
        return result
    squeezed = {name: getattr(result, name)[0] for name in _TABLE_COLUMNS}
    if result.absorption_factors is not None:
        squeezed["absorption_factors"] = result.absorption_factors[0]
    return dataclasses.replace(result, **squeezed)


def quantify_intensities(
    intensities,
    lines,
    k_factors,
    *,
    absorption=None,
    covariance=None,
    method: str = "given",
    tol: float = 1e-9,
    max_iter: int = 100,
) -> QuantificationResult:
    """Cliff-Lorimer (and absorption correction) from line intensities already measured.

    The second half of :func:`quantify`, for intensities obtained elsewhere (e.g. exspy).

    Parameters
    ----------
    intensities : array_like (n, n_lines) or (n_lines,)
        Background-subtracted line intensities (counts).
    lines : sequence of str (n_lines,)
        Line names, one per element.
    k_factors : dict or sequence
        As for :func:`quantify`.
    absorption : None, dict or ThinFilm
        Thin-film absorption correction, as for :func:`quantify`.
    covariance : array_like (n, n_lines, n_lines), optional
        Covariance of the intensities; by default Poisson counts, ``diag(|I|)``.
    method : str
        Label stored in the result.
    tol, max_iter : float, int
        Convergence of the absorption correction.

    Returns
    -------
    QuantificationResult
        Arrays of shape (n, n_lines) (a 1-D ``intensities`` is treated as n = 1).
    """
    lines, elements, _ = _as_lines(lines)
    k = _as_k_factors(k_factors, lines)
    film = _as_absorption(absorption)
    intensities = np.atleast_2d(np.asarray(intensities, dtype=float))
    if intensities.ndim != 2 or intensities.shape[1] != len(lines):
        raise ValueError(
            f"intensities must have shape (n, {len(lines)}) for {len(lines)} lines, "
            f"got {intensities.shape}"
        )
    if not np.all(np.isfinite(intensities)):
        raise ValueError("intensities contain NaN or infinite values")
    if covariance is None:
        covariance = np.abs(intensities)[:, :, None] * np.eye(len(lines))
    covariance = np.asarray(covariance, dtype=float).reshape(-1, len(lines), len(lines))
    line_energies = np.array([xray.line_energy(line) for line in lines])
    weight, atomic, factors, iterations = _corrected_composition(
        intensities, k, elements, line_energies, film, tol, max_iter
    )
    weight_std, atomic_std = _composition_std(
        intensities, k, elements, factors, weight, atomic, covariance
    )
    return QuantificationResult(
        lines=lines,
        elements=elements,
        atomic_percent=100.0 * atomic,
        weight_percent=100.0 * weight,
        atomic_percent_std=100.0 * atomic_std,
        weight_percent_std=100.0 * weight_std,
        intensities=intensities,
        intensities_std=np.sqrt(np.clip(np.diagonal(covariance, axis1=1, axis2=2), 0, None)),
        k_factors=k,
        method=method,
        absorption_factors=factors,
        absorption_iterations=iterations,
    )


def _composition_std(intensities, k, elements, factors, weight, atomic, cov):
    """First-order propagation of Cov(I) to the weight and atomic fractions."""
    scale = np.broadcast_to(k * (1.0 if factors is None else factors), intensities.shape)
    positive = np.clip(intensities, 0.0, None)
    masses = np.array([xray.atomic_mass(el) for el in elements])
    out = []
    for fractions, s in ((weight, scale), (atomic, scale / masses)):
        total = (s * positive).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            jac = _fraction_jacobian(fractions, s, total)
        var = np.einsum("nij,njk,nik->ni", jac, cov, jac)
        out.append(np.sqrt(np.clip(var, 0.0, None)))
    return out[0], out[1]
