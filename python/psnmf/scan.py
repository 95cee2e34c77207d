"""How many components, and how much binning: the ``psnmf scan`` suggestions.

Two independent estimates of the number of phases k, both on the spatially binned cube (binning
raises the counts per pixel, which both criteria need, and makes them fast):

* **Poisson-normalised SVD scree.** After Keenan–Kotula scaling (:mod:`psnmf.denoise`),
  ``X_w = X / sqrt(g hᵀ)``, the Poisson noise of every entry has variance about ``1 / m``
  (``m`` the mean count per entry), so the noise alone gives singular values below the
  Marchenko–Pastur edge ``sqrt(1/m) (sqrt(N) + sqrt(C))`` of an N × C noise matrix. The
  suggestion is the number of singular values above that edge.
* **Held-out Poisson likelihood.** Pixels are split at random in two halves. Poisson NMF with k
  components on the training pixels gives spectra. Every count of a test pixel is split into
  two independent Poisson halves A and B (binomial thinning, p = 1/2); maps fitted to A with
  the spectra fixed predict B, scored by the generalised KL divergence D(B ‖ prediction) per
  count. Extra components that only fit noise do not predict B, so the held-out loss stops
  falling (or rises) past the true k; the suggestion is the smallest k whose loss is within
  ``tolerance`` of the best (default 0: the best).

The scan itself bins until a binned pixel holds about 400 counts (at most 8 x 8, keeping
16 * kmax binned pixels): enough counts for both criteria. The suggested bin factor is
PSNMF's ``bin_factor="auto"`` choice (:func:`psnmf.bin_selection.select_bin_factor`, held-out
likelihood) for the suggested k.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from .bin_selection import select_bin_factor
from .binning import bin_spatial
from .denoise import poisson_weights
from .nmf import PoissonNMF

__all__ = ["ScanResult", "heldout_loss", "scan", "scree"]


# The scan's own binning: about this many counts per binned pixel, at most 8 x 8.
_SCAN_TARGET_COUNTS = 400.0
_SCAN_MAX_FACTOR = 8


def _scan_bin_factor(mean_counts: float, image_shape, kmax: int) -> int:
    """Bin factor of the scan: enough counts per binned pixel, >= 16 * kmax binned pixels."""
    b = int(np.ceil(np.sqrt(_SCAN_TARGET_COUNTS / max(mean_counts, 1e-12))))
    ny, nx = image_shape
    while b > 1 and (ny // b) * (nx // b) < 16 * kmax:
        b -= 1
    return int(min(max(b, 1), _SCAN_MAX_FACTOR))


def _psnmf_stage_settings(n_components: int) -> dict:
    """The stage settings of a default ``PSNMF``, which the selection runs."""
    from .pipeline import PSNMF

    params = PSNMF(n_components).get_params()
    return {key: params[key] for key in ("init", "max_iter_binned", "max_iter", "tol")}


def _psnmf_auto_bin(cube, n_components: int, seed, n_threads) -> int:
    """The bin factor of PSNMF's ``bin_factor="auto"`` (the one place scan depends on it)."""
    ny, nx, n_channels = cube.shape
    selection = select_bin_factor(
        cube.reshape(-1, n_channels),
        (ny, nx),
        n_components,
        settings=_psnmf_stage_settings(n_components),
        random_state=seed,
        n_threads=0 if n_threads is None else n_threads,
    )
    return selection.factor


@dataclass
class ScanResult:
    """Suggestions of ``psnmf scan``.

    Attributes
    ----------
    ks : ndarray (n,)
        Numbers of components tried, 1..kmax.
    singular_values : ndarray
        Singular values of the Poisson-normalised binned cube, largest first.
    noise_edge : float
        Largest singular value expected from Poisson noise alone.
    heldout : ndarray (n,)
        Held-out generalised KL divergence per count for each k.
    k_scree, k_heldout : int
        Suggested k by each criterion.
    scan_bin_factor : int
        Bin factor the criteria were evaluated at.
    bin_factor : int
        Suggested PSNMF bin factor for ``k_heldout``.
    """

    ks: np.ndarray
    singular_values: np.ndarray
    noise_edge: float
    heldout: np.ndarray
    k_scree: int
    k_heldout: int
    scan_bin_factor: int
    bin_factor: int


def scree(matrix, n_values: int) -> tuple[np.ndarray, float]:
    """Largest singular values of the Poisson-normalised matrix and the noise edge.

    Parameters
    ----------
    matrix : ndarray (n_pixels, C)
        Counts.
    n_values : int
        How many singular values to return.

    Returns
    -------
    singular_values : ndarray (n_values,)
    noise_edge : float
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    pixel_w, channel_w = poisson_weights(matrix)
    weighted = matrix / pixel_w[:, None] / channel_w[None, :]
    singular = np.linalg.svd(weighted, compute_uv=False)[:n_values]
    n, c = matrix.shape
    used = max(int(np.count_nonzero(matrix.sum(axis=0))), 1)  # empty channels hold no noise
    mean = matrix.sum() / (n * used)
    edge = float(np.sqrt(1.0 / mean) * (np.sqrt(n) + np.sqrt(used)))
    return singular, edge


def _kl_at_nonzeros(test: sp.csr_matrix, maps: np.ndarray, spectra: np.ndarray) -> float:
    """Generalised KL D(test ‖ maps @ spectra), the prediction evaluated at nonzeros only."""
    coo = test.tocoo()
    predicted = np.einsum("nk,nk->n", maps[coo.row], spectra[:, coo.col].T)
    predicted = np.maximum(predicted, 1e-300)
    x = coo.data.astype(np.float64)
    total = float(maps.sum(axis=0) @ spectra.sum(axis=1))
    return float(np.sum(x * np.log(x / predicted)) - x.sum() + total)


def heldout_loss(matrix, ks, *, seed=0, n_threads=None, max_iter=200, progress=None):
    """Held-out generalised KL divergence per count for each k (module docstring).

    Parameters
    ----------
    matrix : ndarray (n_pixels, C)
        Counts (integers).
    ks : sequence of int
    seed : int
        Seed of the pixel split, the thinning and the NMF initialisation.
    n_threads : int or None
    max_iter : int
        Iterations of each fit.
    progress : callable, optional
        Called once after each k.

    Returns
    -------
    ndarray (len(ks),)
    """
    rng = np.random.default_rng(seed)
    counts = np.rint(np.asarray(matrix)).astype(np.int64)
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    order = rng.permutation(counts.shape[0])
    train, test = counts[order[::2]], counts[order[1::2]]
    half_a = rng.binomial(test, 0.5)
    half_b = sp.csr_matrix(test - half_a)
    losses = []
    for k in ks:
        model = PoissonNMF(k, max_iter=max_iter, tol=1e-6, random_state=seed, n_threads=n_threads)
        with warnings.catch_warnings():
            # past the true k the extra components fit noise and converge slowly: expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(sp.csr_matrix(train))
        maps = model.transform(sp.csr_matrix(half_a))
        losses.append(_kl_at_nonzeros(half_b, maps, model.components_) / max(half_b.sum(), 1))
        if progress is not None:
            progress()
    return np.asarray(losses)


def scan(cube, *, kmax=8, tolerance=0.0, seed=0, n_threads=None, progress=None) -> ScanResult:
    """Suggest the number of components and the bin factor of a spectrum image.

    Parameters
    ----------
    cube : ndarray (ny, nx, C)
        Counts.
    kmax : int
        Largest k tried.
    tolerance : float
        Relative excess of the held-out loss over its minimum still accepted: the
        suggestion is the smallest such k (a simpler model that predicts as well).
    seed : int
    n_threads : int or None
    progress : callable, optional
        Called once after each held-out fit.

    Returns
    -------
    ScanResult
    """
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"cube must have shape (ny, nx, C), got {cube.shape}")
    if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)) or kmax < 1:
        raise ValueError(f"kmax must be a positive int, got {kmax!r}")
    ny, nx, _ = cube.shape
    mean_counts = float(cube.sum(dtype=np.float64)) / (ny * nx)
    # bin as PSNMF would for the largest k: enough counts, enough pixels for kmax
    scan_factor = _scan_bin_factor(mean_counts, (ny, nx), kmax)
    binned = bin_spatial(cube, scan_factor) if scan_factor > 1 else cube
    matrix = binned.reshape(-1, binned.shape[-1])
    kmax = int(min(kmax, matrix.shape[0] // 2, matrix.shape[1]))
    ks = np.arange(1, kmax + 1)
    singular, edge = scree(matrix, kmax + 1)
    k_scree = int(max(1, min(kmax, np.count_nonzero(singular > edge))))
    heldout = heldout_loss(matrix, ks, seed=seed, n_threads=n_threads, progress=progress)
    best = heldout.min()
    k_heldout = int(ks[np.argmax(heldout <= best + tolerance * abs(best))])
    return ScanResult(
        ks=ks,
        singular_values=singular,
        noise_edge=edge,
        heldout=heldout,
        k_scree=k_scree,
        k_heldout=k_heldout,
        scan_bin_factor=int(scan_factor),
        bin_factor=_psnmf_auto_bin(cube, k_heldout, seed, n_threads),
    )
