"""Ready-made phantoms with default phases, and the README demo dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import phantoms
from .cube import SimulatedData, simulate_cube
from .spectra import Phase

__all__ = ["core_shell_catalyst", "demo_dataset", "layered_lamella", "particles_in_matrix"]


def _finish_phantom(phases, thickness, pure_pixels, floor, seed, sampling_rng, kwargs):
    """Thickness maps -> mass thickness (x density) -> optional floor -> simulate_cube."""
    if not pure_pixels and not (np.isfinite(floor) and floor >= 0):
        raise ValueError(f"floor must be a finite number >= 0, got {floor!r}")
    density = np.array([1.0 if p.density is None else p.density for p in phases])
    maps = thickness * density[:, None, None]
    if not pure_pixels:
        maps = phantoms.add_floor(maps, floor)
    data = simulate_cube(phases, maps, seed=sampling_rng, **kwargs)
    data.seed = seed
    return data


def _seeds(seed):
    """Generators for geometry and for sampling from one seed (independent streams)."""
    if isinstance(seed, np.random.Generator):
        return seed, seed  # the caller's stream, used in a fixed order
    integers = (int, np.integer)
    if not (seed is None or isinstance(seed, (*integers, np.random.SeedSequence))):
        if not (isinstance(seed, Sequence) and all(isinstance(s, integers) for s in seed)):
            raise TypeError(
                "seed must be None, an int, a sequence of ints, a SeedSequence or a "
                f"numpy Generator, got {seed!r}"
            )
    if isinstance(seed, bool) or (isinstance(seed, (int, np.integer)) and seed < 0):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


def _check_phase_count(phases, n, builder):
    phases = tuple(phases)
    wrong = [type(p).__name__ for p in phases if not isinstance(p, Phase)]
    if wrong:
        raise TypeError(f"{builder}: phases must be psnmf.simulate.Phase objects, got {wrong}")
    if len(phases) != n:
        raise ValueError(f"{builder}: phases must hold {n} phases, got {len(phases)}")
    return phases


def particles_in_matrix(
    shape=(128, 128),
    *,
    dose: float = 200.0,
    seed=None,
    pure_pixels: bool = True,
    floor: float = 0.05,
    phases: Sequence[Phase] | None = None,
    **kwargs,
) -> SimulatedData:
    """Fe-oxide and alumina particles embedded in an amorphous silica film.

    Default phases: ``SiO2`` matrix (Si 33.3, O 66.7 at%, 2.20 g/cm³), ``Fe3O4`` particles
    (Fe 42.9, O 57.1 at%, 5.17 g/cm³), ``Al2O3`` particles (Al 40, O 60 at%, 3.95 g/cm³).
    All share O; particles thinner than the film overlap it along the beam. Geometry:
    :func:`psnmf.phantoms.particles_in_matrix_maps`.

    Parameters
    ----------
    shape : (int, int)
        Image size ``(ny, nx)``.
    dose : float
        Mean expected counts per pixel.
    seed : int, numpy.random.Generator or None
        Seed of the geometry and of the Poisson sampling.
    pure_pixels : bool
        If False, every phase gets a floor of ``floor`` times each pixel's counts
        (:func:`psnmf.phantoms.add_floor`), so that no pixel is >= 99 % one phase.
    floor : float
        The share used when ``pure_pixels`` is False.
    phases : sequence of 3 Phase, optional
        Replace the default phases (same roles, in the same order).
    **kwargs
        Passed to :func:`simulate_cube` (``energy``, ``beam_energy``, ``fwhm_mnka``,
        ``k_factors``, ``lines``, ``detector``, ``sampling``).

    Returns
    -------
    SimulatedData
    """
    if phases is None:
        phases = (
            Phase("SiO2", {"Si": 100 / 3, "O": 200 / 3}, density=2.20),
            Phase("Fe3O4", {"Fe": 300 / 7, "O": 400 / 7}, density=5.17),
            Phase("Al2O3", {"Al": 40.0, "O": 60.0}, density=3.95),
        )
    phases = _check_phase_count(phases, 3, "particles_in_matrix")
    geometry_rng, sampling_rng = _seeds(seed)
    thickness = phantoms.particles_in_matrix_maps(shape, geometry_rng)
    return _finish_phantom(
        phases, thickness, pure_pixels, floor, seed, sampling_rng, dict(kwargs, dose=dose)
    )


def core_shell_catalyst(
    shape=(128, 128),
    *,
    dose: float = 200.0,
    seed=None,
    pure_pixels: bool = True,
    floor: float = 0.05,
    phases: Sequence[Phase] | None = None,
    **kwargs,
) -> SimulatedData:
    """Pt-shell / Pt–Ni-core nanoparticles on a ZrO2 support, partly over vacuum.

    Default phases: ``PtNi core`` (Pt 30, Ni 70 at%, 13.3 g/cm³), ``Pt shell`` (Pt 100 at%,
    21.45 g/cm³), ``ZrO2 support`` (Zr 33.3, O 66.7 at%, 5.68 g/cm³). Pt Mα (2.05 keV)
    overlaps Zr Lα (2.04 keV). Pixels over vacuum have no counts. Geometry:
    :func:`psnmf.phantoms.core_shell_catalyst_maps` (a quarter of the particles are bare
    cores, so the core has pure pixels).

    Parameters
    ----------
    shape, dose, seed, pure_pixels, floor, phases, **kwargs
        As for :func:`particles_in_matrix`.

    Returns
    -------
    SimulatedData
    """
    if phases is None:
        phases = (
            Phase("PtNi core", {"Pt": 30.0, "Ni": 70.0}, density=13.3),
            Phase("Pt shell", {"Pt": 100.0}, density=21.45),
            Phase("ZrO2 support", {"Zr": 100 / 3, "O": 200 / 3}, density=5.68),
        )
    phases = _check_phase_count(phases, 3, "core_shell_catalyst")
    geometry_rng, sampling_rng = _seeds(seed)
    thickness = phantoms.core_shell_catalyst_maps(shape, geometry_rng)
    return _finish_phantom(
        phases, thickness, pure_pixels, floor, seed, sampling_rng, dict(kwargs, dose=dose)
    )


def layered_lamella(
    shape=(128, 128),
    *,
    dose: float = 200.0,
    seed=None,
    pure_pixels: bool = True,
    floor: float = 0.05,
    phases: Sequence[Phase] | None = None,
    **kwargs,
) -> SimulatedData:
    """A TiN/VN multilayer lamella with diffuse interfaces and Al2O3 inclusions.

    Default phases: ``TiN`` (Ti 50, N 50 at%, 5.40 g/cm³), ``VN`` (V 50, N 50 at%,
    6.13 g/cm³), ``Al2O3`` (Al 40, O 60 at%, 3.95 g/cm³). Ti Kβ (4.93 keV) overlaps V Kα
    (4.95 keV) and N Kα (0.39 keV) sits under Ti Lα (0.45 keV). Geometry:
    :func:`psnmf.phantoms.layered_lamella_maps`.

    Parameters
    ----------
    shape, dose, seed, pure_pixels, floor, phases, **kwargs
        As for :func:`particles_in_matrix`.

    Returns
    -------
    SimulatedData
    """
    if phases is None:
        phases = (
            Phase("TiN", {"Ti": 50.0, "N": 50.0}, density=5.40),
            Phase("VN", {"V": 50.0, "N": 50.0}, density=6.13),
            Phase("Al2O3", {"Al": 40.0, "O": 60.0}, density=3.95),
        )
    phases = _check_phase_count(phases, 3, "layered_lamella")
    geometry_rng, sampling_rng = _seeds(seed)
    thickness = phantoms.layered_lamella_maps(shape, geometry_rng)
    return _finish_phantom(
        phases, thickness, pure_pixels, floor, seed, sampling_rng, dict(kwargs, dose=dose)
    )


def demo_dataset() -> SimulatedData:
    """The README demo: particles in a matrix, 64 × 64 × 1024, 3 phases, 100 counts/pixel.

    Fixed seed (2024); generated in a few tens of milliseconds.

    Returns
    -------
    SimulatedData
    """
    return particles_in_matrix((64, 64), dose=100.0, seed=2024)
