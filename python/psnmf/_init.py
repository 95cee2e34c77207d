"""Initial factors for Poisson NMF: NNDSVDa, random, and the fixed-spectra start."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ._counts import Counts


def randomized_svd(counts: Counts, rank: int, *, n_oversamples=10, n_power_iter=4, rng=None):
    """Top singular triplets of the counts by a randomized range finder (Halko et al. 2011).

    The products with X run in the core, in a fixed order: sparse and dense
    counts, and any thread count, give the same result.

    Parameters
    ----------
    counts : Counts
        Working-format counts, shape (n, m).
    rank : int
        Number of singular triplets.

    Returns
    -------
    U : ndarray (n, rank), S : ndarray (rank,), Vt : ndarray (rank, m)
    """
    rng = check_random_state(rng)
    n, m = counts.shape
    width = min(rank + n_oversamples, n, m)
    Q = counts.multiply(rng.standard_normal((m, width)))
    for _ in range(n_power_iter):
        Q, _ = np.linalg.qr(Q)
        Z, _ = np.linalg.qr(counts.multiply(Q, transpose=True))
        Q = counts.multiply(Z)
    Q, _ = np.linalg.qr(Q)
    B = counts.multiply(Q, transpose=True).T  # (width, m) = Q^T X
    U_b, S, Vt = np.linalg.svd(B, full_matrices=False)
    return (Q @ U_b)[:, :rank], S[:rank], Vt[:rank]


def nndsvda(counts: Counts, k: int, rng=None):
    """NNDSVD initialisation (Boutsidis & Gallopoulos 2008), zeros filled with mean(X).

    Each singular pair (u, v) is split into its positive and negative parts; the
    pair with the larger product of norms seeds one component. Filling the zeros
    with the mean keeps multiplicative updates able to move every entry.

    Returns
    -------
    maps : ndarray (n_pixels, k), spectra : ndarray (k, n_channels), float64
    """
    U, S, Vt = randomized_svd(counts, k, rng=rng)
    n, m = counts.shape
    maps = np.zeros((n, k))
    spectra = np.zeros((k, m))
    # The leading pair of a non-negative matrix has one sign throughout.
    maps[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    spectra[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, k):
        u, v = U[:, j], Vt[j]
        u_pos, u_neg = np.maximum(u, 0), np.maximum(-u, 0)
        v_pos, v_neg = np.maximum(v, 0), np.maximum(-v, 0)
        norms_pos = np.linalg.norm(u_pos), np.linalg.norm(v_pos)
        norms_neg = np.linalg.norm(u_neg), np.linalg.norm(v_neg)
        if norms_pos[0] * norms_pos[1] >= norms_neg[0] * norms_neg[1]:
            u_part, v_part, (nu, nv) = u_pos, v_pos, norms_pos
        else:
            u_part, v_part, (nu, nv) = u_neg, v_neg, norms_neg
        if nu == 0 or nv == 0:
            continue  # left as zeros, filled below
        scale = np.sqrt(S[j] * nu * nv)
        maps[:, j] = scale * u_part / nu
        spectra[j] = scale * v_part / nv
    eps = np.finfo(np.float64).eps
    maps[maps < eps] = 0
    spectra[spectra < eps] = 0
    mean = counts.mean()
    maps[maps == 0] = mean
    spectra[spectra == 0] = mean
    return maps, spectra


def random_init(counts: Counts, k: int, rng=None):
    """Half-normal factors scaled so that maps @ spectra has the mean of X."""
    rng = check_random_state(rng)
    n, m = counts.shape
    scale = np.sqrt(counts.mean() / k)
    maps = scale * np.abs(rng.standard_normal((n, k)))
    spectra = scale * np.abs(rng.standard_normal((k, m)))
    return maps, spectra


def maps_for_fixed_spectra(counts: Counts, spectra: np.ndarray) -> np.ndarray:
    """Start for fitting maps to fixed spectra, pixel by pixel.

    Each pixel starts with its counts shared equally between the components, so
    that its modelled total equals its measured total; the start of a pixel
    depends on that pixel only (results do not depend on the batch).
    """
    k = spectra.shape[0]
    pixel_totals = counts.pixel_totals()
    spectrum_totals = spectra.sum(axis=1)
    spectrum_totals[spectrum_totals == 0] = 1.0
    return np.ascontiguousarray(np.outer(pixel_totals / k, 1.0 / spectrum_totals))
