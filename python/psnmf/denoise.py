"""PCA denoising with Poisson scaling: the usual STEM-EDX baseline.

Keenan & Kotula (Surf. Interface Anal. 36, 203, 2004) scale the unfolded counts X (n_pixels
× C) so that Poisson noise becomes roughly homoscedastic before PCA::

    X_w = X / sqrt(g hᵀ),    g = mean spectrum intensity of each pixel (n_pixels,),
                             h = mean image intensity of each channel (C,)

(HyperSpy's ``normalize_poissonian_noise`` uses sums rather than means: a constant factor
that cancels on unweighting.) Pixels or channels with no counts get weight 1. A rank-k
truncated SVD of X_w (uncentred, as HyperSpy's SVD decomposition) is unweighted and clipped
at 0.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import ArpackError, svds

from ._blas_threads import limits_blas_threads
from ._memory import check_allocation
from ._validation import check_counts, check_n_components

__all__ = ["denoise_pca", "poisson_weights"]


def _as_matrix(cube) -> tuple[np.ndarray, tuple[int, ...]]:
    cube = check_counts(cube, "cube", ndim=(3, 2), allow_sparse=False)
    if cube.dtype == bool:
        cube = cube.astype(np.uint8)  # 0 or 1 (as to_counts)
    return cube.reshape(-1, cube.shape[-1]), cube.shape


def poisson_weights(cube) -> tuple[np.ndarray, np.ndarray]:
    """Keenan–Kotula scale factors ``sqrt(g)`` per pixel and ``sqrt(h)`` per channel.

    Parameters
    ----------
    cube : array_like (ny, nx, C) or (n_pixels, C)
        Counts.

    Returns
    -------
    pixel_weights : ndarray (n_pixels,) float64
        Square root of each pixel's mean count over channels (1 where it is 0).
    channel_weights : ndarray (C,) float64
        Square root of each channel's mean count over pixels (1 where it is 0).
    """
    x, _ = _as_matrix(cube)
    g = x.mean(axis=1, dtype=np.float64)
    h = x.mean(axis=0, dtype=np.float64)
    if np.any(g < 0) or np.any(h < 0):
        raise ValueError("cube must be non-negative counts for Poisson scaling")
    return np.sqrt(np.where(g > 0, g, 1.0)), np.sqrt(np.where(h > 0, h, 1.0))


def _truncated_svd(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if k >= min(x.shape):
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        return u, s, vt
    # A fixed start vector makes ARPACK (and so the baseline) deterministic.
    v0 = np.random.default_rng(0).uniform(0.5, 1.5, min(x.shape)).astype(x.dtype)
    try:
        return svds(x, k=k, v0=v0, solver="arpack")
    except ArpackError:
        # Degenerate spectra (found by fuzzing: values near the float32 underflow) stall
        # the Arnoldi iteration; the dense SVD in float64 handles them.
        u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        return u[:, :k], s[:k], vt[:k]


@limits_blas_threads
def denoise_pca(cube, n_components: int, *, poisson_scaling: bool = True) -> np.ndarray:
    """Denoise a spectrum image by rank-k PCA, with Keenan–Kotula Poisson scaling.

    Parameters
    ----------
    cube : array_like (ny, nx, C) or (n_pixels, C)
        Counts (any numeric dtype).
    n_components : int
        Number of components k kept, 1 <= k <= min(n_pixels, C).
    poisson_scaling : bool
        Apply the Keenan–Kotula weighting (module docstring) before the SVD and undo it after.
    n_threads : int or None
        Threads of numpy's BLAS/LAPACK and ARPACK during the call (None: their default).

    Returns
    -------
    ndarray, shape of ``cube``, float32
        The rank-k reconstruction in counts, clipped at 0; all zero for a cube
        without counts.

    Raises
    ------
    ValueError
        Bad shape, empty cube, NaN/inf/negative counts, n_components out of range.
    TypeError
        Non-real dtype or non-integer n_components.

    Notes
    -----
    This is the baseline, not the hot path: it builds a dense float32 copy of the unfolded
    cube (n_pixels × C) and writes the reconstruction into it. k < min(n_pixels, C) uses
    ARPACK (:func:`scipy.sparse.linalg.svds`) with a fixed start vector; full rank uses a dense
    SVD.
    """
    x, shape = _as_matrix(cube)
    check_n_components(n_components, *x.shape)
    check_allocation(x.size * 4 * 2, "denoise_pca (dense float32 working copy)")
    work = np.array(x, dtype=np.float32)
    if not work.any():
        return work.reshape(shape)  # no counts: the reconstruction is 0 (SVD undefined)
    if poisson_scaling:
        pixel_w, channel_w = poisson_weights(x)
        # Weights below float32's range (found by fuzzing: means ~1e-231) would divide by 0;
        # their rows and columns hold no float32 counts either, so any weight will do.
        pixel_w, channel_w = (
            np.where(w.astype(np.float32) > 0, w, 1.0).astype(np.float32)
            for w in (pixel_w, channel_w)
        )
        work /= pixel_w[:, None]
        work /= channel_w[None, :]
    u, s, vt = _truncated_svd(work, int(n_components))
    np.matmul((u * s).astype(np.float32), vt.astype(np.float32), out=work)
    if poisson_scaling:
        work *= pixel_w[:, None]
        work *= channel_w[None, :]
    np.clip(work, 0.0, None, out=work)
    return work.reshape(shape)
