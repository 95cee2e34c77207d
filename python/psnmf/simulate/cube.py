"""The simulated spectrum image: expected cube and Poisson sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import xray
from .detector import Detector, axis_range, check_energy
from .spectra import Phase, build_phase_spectrum, check_beam, resolve_k_factors, resolve_lines

__all__ = ["SimulatedData", "simulate_cube"]


@dataclass
class SimulatedData:
    """A simulated spectrum image and its ground truth.

    Attributes
    ----------
    counts : ndarray (ny, nx, C) uint16
        Poisson counts.
    energy : ndarray (C,)
        Channel centres in keV.
    spectra : ndarray (k, C)
        Phase spectra, rows summing to 1.
    maps : ndarray (k, ny, nx)
        Expected counts per pixel from each phase: ``expected = Σ_k maps[k] ⊗ spectra[k]``.
    expected : ndarray (ny, nx, C) float32
        The noise-free cube.
    phase_names : tuple of str (k,)
    phases : tuple of Phase (k,)
    elements : tuple of str (n_el,)
        All elements, by increasing atomic number.
    lines : tuple of str (n_el,)
        The quantified line of each element, in the order of ``elements``.
    k_factors : dict
        ``{line: k}`` for ``lines`` (Cliff–Lorimer, weight fractions).
    atomic_percent, weight_percent : ndarray (k, n_el)
        True compositions, columns in the order of ``elements``.
    beam_energy : float
        keV.
    fwhm_mnka : float
        eV.
    dose : float
        Mean expected counts per pixel.
    detector : Detector
        The detector; ``detector.efficiency`` (keV -> probability) sets the continuum and the
        ratios of each element's families (e.g. for ``psnmf.quantify(..., efficiency=...)``).
    seed : int, Generator or None
        The seed used for geometry and sampling.
    """

    counts: np.ndarray
    energy: np.ndarray
    spectra: np.ndarray
    maps: np.ndarray
    expected: np.ndarray
    phase_names: tuple
    phases: tuple
    elements: tuple
    lines: tuple
    k_factors: dict
    atomic_percent: np.ndarray
    weight_percent: np.ndarray
    beam_energy: float
    fwhm_mnka: float
    dose: float
    detector: Detector
    seed: object = None

    @property
    def n_components(self) -> int:
        """Number of phases k."""
        return len(self.phase_names)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(ny, nx)``."""
        return self.counts.shape[:2]

    @property
    def compositions(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{phase: {"atomic_percent": {el: %}, "weight_percent": {el: %}}}``."""
        return {
            p.name: {
                "atomic_percent": dict(p.atomic_percent),
                "weight_percent": dict(p.weight_percent),
            }
            for p in self.phases
        }


def _check_phases_and_maps(phases, maps):
    phases = tuple(phases)
    if not phases or not all(isinstance(p, Phase) for p in phases):
        raise TypeError("phases must be a non-empty sequence of Phase")
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3 or maps.shape[0] != len(phases):
        raise ValueError(
            f"maps must have shape (k, ny, nx) with k = {len(phases)} phases, got {maps.shape}"
        )
    if not np.all(np.isfinite(maps)) or np.any(maps < 0):
        raise ValueError("maps must be finite and non-negative")
    if maps.sum() <= 0:
        raise ValueError("maps are all zero")
    return phases, maps


def simulate_cube(
    phases: Sequence[Phase],
    maps,
    *,
    energy=None,
    dose: float | None = None,
    beam_energy: float = 200.0,
    fwhm_mnka: float = 130.0,
    k_factors: Mapping[str, float] | None = None,
    lines: Sequence[str] | None = None,
    detector: Detector | None = None,
    seed=None,
    sampling: str = "auto",
) -> SimulatedData:
    """Simulate a spectrum image from phases and their abundance maps.

    Parameters
    ----------
    phases : sequence of Phase (k,)
    maps : array_like (k, ny, nx)
        Non-negative abundances. With ``dose`` they are rescaled so that the mean expected
        counts per pixel equal ``dose``; without, they are expected counts per pixel.
    energy : ndarray (C,), optional
        Channel centres in keV (default :func:`energy_axis`: 1024 × 20 eV from 0 keV).
    dose : float, optional
        Mean expected counts per pixel (> 0).
    beam_energy : float
        Beam energy E0 in keV.
    fwhm_mnka : float
        Detector FWHM at Mn Kα in eV.
    k_factors : dict, optional
        ``{line: k}``; missing lines get :func:`default_k_factor`.
    lines : sequence of str, optional
        Quantified lines overriding :func:`default_line`.
    detector : Detector, optional
    seed : int, numpy.random.Generator or None
        Poisson sampling seed; the same seed gives the same counts.
    sampling : {"auto", "photons", "dense"}
        ``"photons"`` draws each pixel's photon number per phase and their channels (cost ∝
        total counts); ``"dense"`` draws a Poisson number per voxel (cost ∝ cube size).
        ``"auto"`` picks photons when the dose is below twice the number of channels (the
        measured crossover). Both are exact Poisson samples of ``expected``; they consume the
        generator differently.

    Returns
    -------
    SimulatedData

    Notes
    -----
    Memory: the float32 expected cube is the only dense (ny, nx, C) float array; sampling works
    on blocks of pixels and writes into the uint16 ``counts``.
    """
    phases, maps = _check_phases_and_maps(phases, maps)
    energy = check_energy(energy)
    check_beam(beam_energy, fwhm_mnka)
    if sampling not in ("auto", "photons", "dense"):
        raise ValueError(f"sampling must be 'auto', 'photons' or 'dense', got {sampling!r}")
    detector = Detector() if detector is None else detector
    if dose is not None:
        if not (np.isfinite(dose) and dose > 0):
            raise ValueError(f"dose must be > 0 counts per pixel, got {dose}")
        maps = maps * (dose / maps.sum(axis=0).mean())

    elements = tuple(sorted({el for p in phases for el in p.elements}, key=xray.atomic_number))
    chosen = resolve_lines(elements, lines, beam_energy, axis_range(energy))
    ks = resolve_k_factors([chosen[el] for el in elements], k_factors, detector)
    spectra = np.stack(
        [
            build_phase_spectrum(p, energy, chosen, ks, beam_energy, fwhm_mnka, detector)
            for p in phases
        ]
    )

    k, ny, nx = maps.shape
    flat_maps = maps.reshape(k, -1)
    expected = (flat_maps.T.astype(np.float32) @ spectra.astype(np.float32)).reshape(ny, nx, -1)
    if float(expected.max()) > 30000.0:
        raise ValueError(
            "dose too high: expected counts per channel exceed 30000, uint16 counts would overflow"
        )
    rng = np.random.default_rng(seed)
    mean_dose = float(flat_maps.sum(axis=0).mean())
    if sampling == "photons" or (sampling == "auto" and mean_dose <= 2 * energy.size):
        counts = _sample_photons(flat_maps, spectra, rng)
    else:
        counts = _sample_dense(expected.reshape(ny * nx, -1), rng)

    return SimulatedData(
        counts=counts.reshape(ny, nx, -1),
        energy=energy,
        spectra=spectra,
        maps=maps,
        expected=expected,
        phase_names=tuple(p.name for p in phases),
        phases=phases,
        elements=elements,
        lines=tuple(chosen[el] for el in elements),
        k_factors=ks,
        atomic_percent=np.array(
            [[p.atomic_percent.get(el, 0.0) for el in elements] for p in phases]
        ),
        weight_percent=np.array(
            [[p.weight_percent.get(el, 0.0) for el in elements] for p in phases]
        ),
        beam_energy=float(beam_energy),
        fwhm_mnka=float(fwhm_mnka),
        dose=mean_dose,
        detector=detector,
        seed=seed,
    )


# Pixels per sampling block: int64 temporaries of a block stay within a few MB (cache).
_BLOCK_PIXELS = 256


def _to_uint16(block: np.ndarray) -> np.ndarray:
    if block.size and block.max() > np.iinfo(np.uint16).max:
        raise ValueError("a channel received more than 65535 counts: lower the dose")
    return block.astype(np.uint16)


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of a discrete distribution ``p`` (sums to 1).

    Drawing a column j uniformly and keeping it with probability ``keep[j]``, else taking
    ``alias[j]``, samples exactly from ``p`` in O(1) per draw (a binary search per photon is
    several times slower on millions of photons).
    """
    n = p.size
    scaled = p * n / p.sum()
    keep = np.ones(n)
    alias = np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return keep, alias  # leftovers keep probability 1 (rounding only)


def _sample_photons(flat_maps: np.ndarray, spectra: np.ndarray, rng) -> np.ndarray:
    """Poisson counts as photons: N ~ Poisson(map) per pixel and phase, channels ~ spectrum.

    Superposition and thinning make the channel counts independent Poisson with mean
    ``sum_k map_k spectrum_k``, exactly as a per-voxel draw.
    """
    k, n_pix = flat_maps.shape
    n_ch = spectra.shape[1]
    tables = [_alias_table(s) for s in spectra]
    counts = np.empty((n_pix, n_ch), dtype=np.uint16)
    for start in range(0, n_pix, _BLOCK_PIXELS):
        stop = min(start + _BLOCK_PIXELS, n_pix)
        flat = []
        for (keep, alias), phase_map in zip(tables, flat_maps[:, start:stop]):
            pixel = np.repeat(np.arange(stop - start), rng.poisson(phase_map))
            # One uniform gives both the column (integer part) and the coin (fraction).
            u = rng.random(pixel.size) * n_ch
            column = u.astype(np.int64)
            channel = np.where(u - column < keep[column], column, alias[column])
            flat.append(pixel * n_ch + channel)
        block = np.bincount(np.concatenate(flat), minlength=(stop - start) * n_ch)
        counts[start:stop] = _to_uint16(block.reshape(stop - start, n_ch))
    return counts


def _sample_dense(expected: np.ndarray, rng) -> np.ndarray:
    counts = np.empty(expected.shape, dtype=np.uint16)
    for start in range(0, expected.shape[0], _BLOCK_PIXELS):
        stop = min(start + _BLOCK_PIXELS, expected.shape[0])
        counts[start:stop] = _to_uint16(rng.poisson(expected[start:stop]))
    return counts
