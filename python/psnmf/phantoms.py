"""Phantom geometries: projected thickness maps of phases for simulated spectrum images.

Each builder returns ``(k, ny, nx)`` maps of the thickness of each phase crossed by the beam at
each pixel centre, in pixel units (one pixel = one length unit; only ratios matter).
:mod:`psnmf.simulate` multiplies them by the phase densities (counts scale with mass thickness)
and by the dose. Phases overlap along the beam wherever two maps are nonzero at one pixel.

Thicknesses are sampled at pixel centres (no partial-volume averaging), so a pixel whose centre
is crossed by one phase only is pure. Geometry is vectorised over pixels; loops run over
particles or layers only.
"""

from __future__ import annotations

import operator

import numpy as np
from scipy.special import erf

__all__ = [
    "add_floor",
    "core_shell_catalyst_maps",
    "layered_lamella_maps",
    "particles_in_matrix_maps",
    "sphere_thickness",
]


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = _check_shape(shape)
    return np.mgrid[0:ny, 0:nx].astype(float)


def _check_shape(shape) -> tuple[int, int]:
    try:
        ny, nx = (operator.index(s) for s in shape)  # 16.5 is not a shape
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair of ints (ny, nx), got {shape!r}") from None
    if ny < 4 or nx < 4:
        raise ValueError(f"shape must be at least (4, 4), got {shape!r}")
    return ny, nx


def sphere_thickness(shape, centres, radii) -> np.ndarray:
    """Projected thickness of spheres along the beam: ``2 sqrt(r² - d²)`` inside each disc.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(ny, nx)``.
    centres : array_like (m, 2)
        Sphere centres ``(y, x)`` in pixels.
    radii : array_like (m,)
        Sphere radii in pixels.

    Returns
    -------
    ndarray (ny, nx)
        Summed chord lengths in pixels (overlapping spheres add up).
    """
    yy, xx = _grid(shape)
    out = np.zeros_like(yy)
    for (cy, cx), r in zip(np.reshape(centres, (-1, 2)), np.ravel(radii)):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        out += 2.0 * np.sqrt(np.clip(r * r - d2, 0.0, None))
    return out


def add_floor(maps: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Make every pixel a mixture: add to each phase ``floor`` times the pixel's total.

    This models a thin layer of every phase over the whole field (e.g. redeposition or
    sub-resolution dispersion), so that no pixel is pure: with k phases, the largest share of
    any phase is at most ``(1 + floor) / (1 + k floor)``. Empty (vacuum) pixels stay empty.

    Parameters
    ----------
    maps : ndarray (k, ny, nx)
        Non-negative maps.
    floor : float
        Share added per phase, relative to the pixel's total.

    Returns
    -------
    ndarray (k, ny, nx)
    """
    return maps + floor * maps.sum(axis=0, keepdims=True)


def _place_discs(rng, shape, radii, *, allowed=None, min_gap=1.0, placed=(), tries=200):
    """Random disc centres with little overlap between discs (rejection sampling).

    ``allowed(y, x, r) -> bool`` restricts positions; discs that cannot be placed without
    overlap after ``tries`` draws are placed anyway (overlap along the beam is physical).
    """
    ny, nx = shape
    centres = [tuple(c) for c, _ in placed]
    taken = [r for _, r in placed]
    for r in radii:
        best = None
        for _ in range(tries):
            y, x = rng.uniform(r, ny - r), rng.uniform(r, nx - r)
            if allowed is not None and not allowed(y, x, r):
                continue
            best = (y, x)
            if all(
                np.hypot(y - cy, x - cx) >= r + cr + min_gap
                for (cy, cx), cr in zip(centres, taken)
            ):
                break
        if best is None:
            best = (rng.uniform(r, ny - r), rng.uniform(r, nx - r))
        centres.append(best)
        taken.append(r)
    return np.array(centres[len(placed) :]).reshape(-1, 2)


def particles_in_matrix_maps(
    shape=(128, 128), rng=None, *, n_particles=None, film_thickness=None, radius_range=None
) -> np.ndarray:
    """Two kinds of spherical particles embedded in a film of matrix.

    Where a particle is, the matrix is thinner by the particle's chord (clipped at 0): phases
    overlap along the beam. Particles wider than the film pierce it and give pure pixels; the
    first particle of each kind has the largest radius, so both kinds have pure pixels.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)``.
    rng : numpy.random.Generator, int or None
        Random generator or seed for the positions and radii.
    n_particles : int, optional
        Number of particles, alternating between the two kinds (default: one per 800 pixels,
        at least 4).
    film_thickness : float, optional
        Matrix film thickness in pixels (default ``min(shape) / 16``).
    radius_range : (float, float), optional
        Particle radii in pixels (default ``min(shape) * (0.02, 0.065)``).

    Returns
    -------
    ndarray (3, ny, nx)
        Thickness in pixels of the matrix, particles of kind 1 and of kind 2.
    """
    ny, nx = _check_shape(shape)
    rng = np.random.default_rng(rng)
    size = min(ny, nx)
    n = max(4, ny * nx // 800) if n_particles is None else int(n_particles)
    if n < 2:
        raise ValueError(f"n_particles must be at least 2, got {n_particles}")
    t_film = size / 16.0 if film_thickness is None else float(film_thickness)
    r_lo, r_hi = (size * 0.02, size * 0.065) if radius_range is None else radius_range
    if not 0 < r_lo <= r_hi or t_film <= 0:
        raise ValueError("radius_range must be 0 < min <= max and film_thickness > 0")
    radii = rng.uniform(r_lo, r_hi, n)
    radii[:2] = max(r_hi, 0.6 * t_film)  # one piercing particle of each kind
    centres = _place_discs(rng, (ny, nx), radii)
    kind1 = sphere_thickness((ny, nx), centres[0::2], radii[0::2])
    kind2 = sphere_thickness((ny, nx), centres[1::2], radii[1::2])
    matrix = np.clip(t_film - kind1 - kind2, 0.0, None)
    return np.stack([matrix, kind1, kind2])


def core_shell_catalyst_maps(
    shape=(128, 128),
    rng=None,
    *,
    n_particles=None,
    radius_range=None,
    shell_thickness=None,
    bare_fraction=0.25,
) -> np.ndarray:
    """Core–shell nanoparticles on an oxide support grain, partly over vacuum.

    The support fills the left ~60 % of the field with a wavy edge and a thickness that ramps
    up from the edge; to the right is vacuum (pixels with no counts). Particles lie on the
    support or over vacuum, so they overlap the support along the beam in the first case and
    are pure in the second. A shell of thickness ``shell_thickness`` covers a sphere-shaped
    core; its rim (the outer annulus) is pure shell. A fraction ``bare_fraction`` of the
    particles has no shell, so bare cores over vacuum give pure core pixels.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)``.
    rng : numpy.random.Generator, int or None
        Random generator or seed.
    n_particles : int, optional
        Number of particles (default: one per 1000 pixels, at least 4).
    radius_range : (float, float), optional
        Outer particle radii in pixels (default ``min(shape) * (0.035, 0.06)``, at least
        (3, 4.5)).
    shell_thickness : float, optional
        Shell thickness in pixels (default ``max(1.5, min(shape) / 64)``).
    bare_fraction : float
        Fraction of particles without shell (at least one).

    Returns
    -------
    ndarray (3, ny, nx)
        Thickness in pixels of core, shell and support.
    """
    ny, nx = _check_shape(shape)
    rng = np.random.default_rng(rng)
    size = min(ny, nx)
    n = max(4, ny * nx // 1000) if n_particles is None else int(n_particles)
    if n < 4:
        raise ValueError(f"n_particles must be at least 4, got {n_particles}")
    default_radii = (max(3.0, size * 0.035), max(4.5, size * 0.06))
    r_lo, r_hi = default_radii if radius_range is None else radius_range
    shell = max(1.5, size / 64.0) if shell_thickness is None else float(shell_thickness)
    if not 0 < r_lo <= r_hi or not 0 < shell < r_lo:
        raise ValueError("need 0 < shell_thickness < radius_range min <= max")
    if not 0.0 <= bare_fraction < 1.0:
        raise ValueError(f"bare_fraction must be in [0, 1), got {bare_fraction}")

    yy, xx = _grid((ny, nx))
    phase = rng.uniform(0, 2 * np.pi, 2)
    edge = nx * (0.6 + 0.05 * np.sin(2 * np.pi * yy / ny * 1.5 + phase[0]))
    edge += nx * 0.03 * np.sin(2 * np.pi * yy / ny * 3.7 + phase[1])
    support = size / 8.0 * np.clip((edge - xx) / (0.15 * nx), 0.0, 1.0)

    radii = rng.uniform(r_lo, r_hi, n)
    n_bare = max(1, round(bare_fraction * n))
    bare = np.zeros(n, dtype=bool)
    bare[:n_bare] = True
    # The first bare and the first shelled particle sit over vacuum: pure core and shell.
    off_support = np.zeros(n, dtype=bool)
    off_support[[0, n_bare]] = True

    def over_vacuum(y, x, r):
        return x - r > nx * 0.7 + 1.0

    centres = np.empty((n, 2))
    order = [0, n_bare] + [i for i in range(n) if not off_support[i]]
    placed = []
    for i in order:
        c = _place_discs(
            rng,
            (ny, nx),
            [radii[i]],
            allowed=over_vacuum if off_support[i] else None,
            placed=placed,
        )[0]
        centres[i] = c
        placed.append((c, radii[i]))

    outer = sphere_thickness((ny, nx), centres, radii)
    core_r = np.where(bare, radii, radii - shell)
    core = sphere_thickness((ny, nx), centres, core_r)
    return np.stack([core, outer - core, support])


def layered_lamella_maps(
    shape=(128, 128),
    rng=None,
    *,
    period=None,
    interface_width=None,
    n_inclusions=None,
    thickness=None,
    radius_range=None,
) -> np.ndarray:
    """A multilayer lamella (layers A/B along y) with diffuse, wavy interfaces and inclusions.

    The layer fraction across each interface follows an error function of width
    ``interface_width`` (the standard deviation, in pixels); the lamella thickness is a wedge
    from 0.8 to 1.2 times ``thickness`` along x. Spherical inclusions of a third phase replace
    the layers along their chord; those wider than the lamella give pure pixels, as do the
    layer centres.

    Parameters
    ----------
    shape : (int, int)
        ``(ny, nx)``.
    rng : numpy.random.Generator, int or None
        Random generator or seed.
    period : float, optional
        Bilayer period in pixels (default ``ny / 4``).
    interface_width : float, optional
        Interface standard deviation in pixels (default ``period / 16``).
    n_inclusions : int, optional
        Number of inclusions (default one per 2000 pixels, at least 2).
    thickness : float, optional
        Mean lamella thickness in pixels (default ``min(shape) / 16``).
    radius_range : (float, float), optional
        Inclusion radii (default ``min(shape) * (0.02, 0.05)``; the first is the largest).

    Returns
    -------
    ndarray (3, ny, nx)
        Thickness in pixels of layer A, layer B and the inclusions.
    """
    ny, nx = _check_shape(shape)
    rng = np.random.default_rng(rng)
    size = min(ny, nx)
    period = ny / 4.0 if period is None else float(period)
    width = period / 16.0 if interface_width is None else float(interface_width)
    n_inc = max(2, ny * nx // 2000) if n_inclusions is None else int(n_inclusions)
    t_mean = size / 16.0 if thickness is None else float(thickness)
    r_lo, r_hi = (size * 0.02, size * 0.05) if radius_range is None else radius_range
    if period <= 4 * width or width <= 0 or t_mean <= 0 or not 0 < r_lo <= r_hi:
        raise ValueError(
            "need interface_width > 0, period > 4 interface_width, thickness > 0 "
            "and 0 < radius_range min <= max"
        )

    yy, xx = _grid((ny, nx))
    # Interfaces every half period, jittered, each with its own gentle waviness along x.
    n_int = int(np.ceil(ny / (period / 2))) + 2
    base = (np.arange(n_int) - 0.5) * period / 2 + rng.uniform(-0.1, 0.1, n_int) * period
    frac_a = np.zeros_like(yy)
    for j in range(0, n_int - 1, 2):
        wave = [
            0.04 * period * np.sin(2 * np.pi * xx / nx * rng.uniform(1, 3) + rng.uniform(0, 7))
            for _ in range(2)
        ]
        lo, hi = base[j] + wave[0], base[j + 1] + wave[1]
        scale = np.sqrt(2.0) * width
        frac_a += 0.5 * (erf((yy - lo) / scale) - erf((yy - hi) / scale))
    frac_a = np.clip(frac_a, 0.0, 1.0)

    local_t = t_mean * (0.8 + 0.4 * xx / max(nx - 1, 1))
    radii = rng.uniform(r_lo, r_hi, n_inc)
    radii[0] = max(r_hi, 0.65 * t_mean * 1.2)  # at least one inclusion pierces the lamella
    centres = _place_discs(rng, (ny, nx), radii)
    inclusions = np.minimum(sphere_thickness((ny, nx), centres, radii), local_t)
    layers = local_t - inclusions
    return np.stack([layers * frac_a, layers * (1.0 - frac_a), inclusions])
