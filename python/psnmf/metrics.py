"""Scores of an unmixing against simulated ground truth.

Learned components come in any order, so they are first matched to the true ones: the
Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`) minimises the summed
spectral angle. Every function taking learned quantities accepts ``permutation`` to reuse one
matching (usually from the spectra) for maps and compositions.

Maps may be given as ``(k, ny, nx)`` (psnmf, HyperSpy loadings reshaped) or ``(n_pixels, k)``
(scikit-learn ``fit_transform`` output).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "CompositionError",
    "composition_error",
    "map_nrmse",
    "match_components",
    "reconstruction_error",
    "spectral_angle",
    "spectral_angles",
]

# Pixels per chunk in the cube-sized reductions: float64 temporaries of a few MB only.
_CHUNK_PIXELS = 1024


def _finite(x: np.ndarray, name: str) -> np.ndarray:
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _as_rows(x, name: str) -> np.ndarray:
    x = _finite(np.asarray(x, dtype=float), name)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 1-D (C,) or 2-D (k, C), got shape {x.shape}")
    return x


def spectral_angle(a, b) -> np.ndarray:
    """Angle between spectra, in degrees.

    Parameters
    ----------
    a, b : array_like (..., C)
        Spectra; leading axes broadcast.

    Returns
    -------
    ndarray or float (...)
        ``arccos(a·b / (|a| |b|))`` in degrees, in [0, 180]; 0 for proportional spectra.

    Raises
    ------
    ValueError
        If a spectrum is all zero (its angle is undefined).
    """
    a = _finite(np.asarray(a, dtype=float), "a")
    b = _finite(np.asarray(b, dtype=float), "b")
    if a.shape[-1:] != b.shape[-1:]:
        raise ValueError(f"a and b must have the same number of channels: {a.shape}, {b.shape}")
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    if np.any(norms == 0):
        raise ValueError("spectral_angle: a spectrum is all zero, its angle is undefined")
    cosine = np.clip(np.sum(a * b, axis=-1) / norms, -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def match_components(true_spectra, learned_spectra) -> np.ndarray:
    """Match learned components to true ones by minimal total spectral angle (Hungarian).

    Parameters
    ----------
    true_spectra : array_like (k, C)
    learned_spectra : array_like (m, C), m >= k
        Scale does not matter (angles are scale-free).

    Returns
    -------
    ndarray (k,) of int
        ``permutation[i]`` is the learned component matching true component ``i``; so
        ``learned_spectra[permutation]`` is in the true order.
    """
    true = _as_rows(true_spectra, "true_spectra")
    learned = _as_rows(learned_spectra, "learned_spectra")
    if true.shape[1] != learned.shape[1]:
        raise ValueError(
            f"true_spectra and learned_spectra have {true.shape[1]} and "
            f"{learned.shape[1]} channels"
        )
    if learned.shape[0] < true.shape[0]:
        raise ValueError(
            f"learned_spectra has {learned.shape[0]} components, fewer than the "
            f"{true.shape[0]} true ones"
        )
    cost = spectral_angle(true[:, None, :], learned[None, :, :])
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


def spectral_angles(true_spectra, learned_spectra, permutation=None) -> np.ndarray:
    """Spectral angle of each true component to its matched learned component.

    Parameters
    ----------
    true_spectra : array_like (k, C)
    learned_spectra : array_like (m, C)
    permutation : array_like (k,), optional
        From :func:`match_components` (computed when omitted).

    Returns
    -------
    ndarray (k,)
        Angles in degrees.
    """
    true = _as_rows(true_spectra, "true_spectra")
    learned = _as_rows(learned_spectra, "learned_spectra")
    if permutation is None:
        permutation = match_components(true, learned)
    return spectral_angle(true, learned[_check_permutation(permutation, len(true), len(learned))])


def _check_permutation(permutation, k: int, m: int) -> np.ndarray:
    perm = np.asarray(permutation)
    if (
        perm.shape != (k,)
        or not np.issubdtype(perm.dtype, np.integer)
        or np.any((perm < 0) | (perm >= m))
        or np.unique(perm).size != k
    ):
        raise ValueError(
            f"permutation must be {k} distinct indices in [0, {m}), got {permutation}"
        )
    return perm


def _maps_as_rows(maps, name: str, n_pixels: int | None = None) -> np.ndarray:
    """(k, ny, nx) -> (k, P); (P, k) -> (k, P)."""
    maps = _finite(np.asarray(maps, dtype=float), name)
    if maps.ndim == 3:
        return maps.reshape(maps.shape[0], -1)
    if maps.ndim == 2:
        if n_pixels is not None and maps.shape[0] != n_pixels:
            raise ValueError(
                f"{name} given as 2-D must be (n_pixels, k) with n_pixels = {n_pixels}, "
                f"got {maps.shape}"
            )
        return maps.T
    raise ValueError(f"{name} must be (k, ny, nx) or (n_pixels, k), got shape {maps.shape}")


def map_nrmse(true_maps, learned_maps, permutation=None) -> np.ndarray:
    """Normalised RMSE of each matched map: ``‖L_i - T_i‖ / ‖T_i‖``.

    The RMSE is divided by the root-mean-square of the true map, so the score is unit-free
    yet scale-aware: maps are in counts per pixel and a learned map with the right shape but
    half the counts scores 0.5. 0 is perfect.

    Parameters
    ----------
    true_maps : array_like (k, ny, nx) or (n_pixels, k)
    learned_maps : array_like (m, ny, nx) or (n_pixels, m)
    permutation : array_like (k,), optional
        Learned component of each true one (e.g. from :func:`match_components` on spectra).
        When omitted, maps are matched among themselves by angle (Hungarian).

    Returns
    -------
    ndarray (k,)
    """
    true = _maps_as_rows(true_maps, "true_maps")
    learned = _maps_as_rows(learned_maps, "learned_maps", n_pixels=true.shape[1])
    if learned.shape[1] != true.shape[1]:
        raise ValueError(
            f"true_maps and learned_maps have {true.shape[1]} and {learned.shape[1]} pixels"
        )
    if permutation is None:
        permutation = match_components(true, learned)
    learned = learned[_check_permutation(permutation, len(true), len(learned))]
    rms_true = np.sqrt(np.mean(true**2, axis=1))
    if np.any(rms_true == 0):
        raise ValueError("map_nrmse: a true map is all zero")
    return np.sqrt(np.mean((learned - true) ** 2, axis=1)) / rms_true


class CompositionError(NamedTuple):
    """Absolute composition differences in at% (percentage points)."""

    max: float
    mean: float
    per_phase: np.ndarray  # (k,) largest absolute difference of each phase


def composition_error(true_at, est_at, permutation=None) -> CompositionError:
    """Absolute differences between true and estimated compositions, in at%.

    Parameters
    ----------
    true_at : array_like (k, n_elements) or (n_elements,)
        True atomic percent, columns in one element order.
    est_at : array_like (m, n_elements) or (n_elements,)
        Estimated atomic percent, same column order.
    permutation : array_like (k,), optional
        Estimated phase of each true phase (default: the identity).

    Returns
    -------
    CompositionError
        ``max`` and ``mean`` of ``|est - true|`` over phases and elements, and the per-phase
        maximum.
    """
    true = _as_rows(true_at, "true_at")
    est = _as_rows(est_at, "est_at")
    if true.shape[1] != est.shape[1]:
        raise ValueError(f"true_at and est_at have {true.shape[1]} and {est.shape[1]} elements")
    if permutation is None:
        if est.shape[0] != true.shape[0]:
            raise ValueError("est_at has a different number of phases: pass permutation")
        permutation = np.arange(true.shape[0])
    est = est[_check_permutation(permutation, len(true), len(est))]
    diff = np.abs(est - true)
    return CompositionError(float(diff.max()), float(diff.mean()), diff.max(axis=1))


def _as_pixel_rows(cube, name: str) -> np.ndarray:
    cube = np.asarray(cube)
    if cube.ndim not in (2, 3):
        raise ValueError(f"{name} must be (ny, nx, C) or (n_pixels, C), got {cube.shape}")
    return cube.reshape(-1, cube.shape[-1])


def reconstruction_error(expected, reconstructed, *, metric: str = "frobenius") -> float:
    """Distance of a reconstruction from the noise-free cube.

    Parameters
    ----------
    expected : array_like (ny, nx, C) or (n_pixels, C)
        The noise-free cube (``SimulatedData.expected``).
    reconstructed : array_like, same number of elements
        A denoised cube or ``maps @ spectra``.
    metric : {"frobenius", "kl"}
        ``"frobenius"``: ``‖R - E‖_F / ‖E‖_F``. ``"kl"``: the generalised Kullback–Leibler
        divergence ``Σ E log(E/R) - E + R`` (Poisson deviance / 2) divided by ``Σ E``, i.e.
        per expected count; infinite if R = 0 where E > 0.

    Returns
    -------
    float

    Notes
    -----
    Computed over chunks of pixels in float64, without a float64 copy of the cube.
    """
    if metric not in ("frobenius", "kl"):
        raise ValueError(f"metric must be 'frobenius' or 'kl', got {metric!r}")
    e_rows = _as_pixel_rows(expected, "expected")
    r_rows = _as_pixel_rows(reconstructed, "reconstructed")
    if e_rows.shape != r_rows.shape:
        raise ValueError(
            f"expected and reconstructed have shapes {np.shape(expected)} and "
            f"{np.shape(reconstructed)}"
        )
    num = den = 0.0
    for start in range(0, e_rows.shape[0], _CHUNK_PIXELS):
        e = _finite(e_rows[start : start + _CHUNK_PIXELS].astype(float), "expected")
        r = _finite(r_rows[start : start + _CHUNK_PIXELS].astype(float), "reconstructed")
        if metric == "frobenius":
            num += float(np.sum((r - e) ** 2))
            den += float(np.sum(e**2))
        else:
            num += _kl_sum(e, r)
            den += float(e.sum())
    if den == 0:
        raise ValueError("expected is all zero")
    return float(np.sqrt(num / den)) if metric == "frobenius" else num / den


def _kl_sum(e: np.ndarray, r: np.ndarray) -> float:
    if np.any(r < 0):
        raise ValueError("reconstructed must be non-negative for metric='kl'")
    if np.any((r == 0) & (e > 0)):
        return np.inf
    pos = e > 0
    # 0 log 0 = 0: only entries with E > 0 carry the log term.
    return float(np.sum(e[pos] * np.log(e[pos] / r[pos])) - e.sum() + r.sum())
