"""PSNMF: two-stage Poisson NMF pan-sharpening of a spectrum image.

bin -> stage 1 (NMF of the binned cube: spectra) -> stage 2 (full-resolution
maps with the stage-1 spectra fixed) -> combine. See DESIGN.md section 1 and
Chen, Alexander & Hebert, Nano Letters 24, 10177 (2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._counts import resolve_threads, to_counts
from ._memory import check_allocation
from ._validation import check_psnmf_params, clear_fitted
from .binning import as_factor, bin_pixels
from .nmf import PoissonNMF, run_updates

# "auto" bins until a binned pixel holds about this many counts (provisional rule,
# to be replaced by the validation benchmark's criterion).
_AUTO_TARGET_COUNTS = 400.0
_AUTO_MAX_FACTOR = 8


@dataclass
class BinnedResult:
    """Stage-1 result on the binned cube.

    Attributes
    ----------
    factor : (int, int)
        Bin size (fy, fx) in pixels.
    spectra : ndarray (k, n_channels)
        Rows summing to 1.
    maps : ndarray (k, ny // fy, nx // fx)
        Counts per binned pixel.
    loss_history : ndarray
        Generalised KL of the binned fit, initial then per iteration.
    """

    factor: tuple[int, int]
    spectra: np.ndarray
    maps: np.ndarray
    loss_history: np.ndarray


def auto_bin_factor(mean_counts_per_pixel: float, image_shape, n_components: int) -> int:
    """Provisional automatic bin factor.

    The smallest b with b^2 * mean counts >= 400 (enough counts per binned
    pixel for stage 1), capped so that the binned image keeps at least
    16 * k pixels and b <= 8. b = 1 (no binning) when counts are already high.
    """
    b = int(np.ceil(np.sqrt(_AUTO_TARGET_COUNTS / max(mean_counts_per_pixel, 1e-12))))
    b = min(b, _AUTO_MAX_FACTOR)  # before the loop: near-empty data gave b ~ 2e7 steps (fuzzing)
    ny, nx = image_shape
    while b > 1 and (ny // b) * (nx // b) < 16 * n_components:
        b -= 1
    return int(min(max(b, 1), _AUTO_MAX_FACTOR))


def _upsample(maps_binned: np.ndarray, factor, image_shape) -> np.ndarray:
    """(k, nyb, nxb) -> (ny * nx, k): repeat each bin over its pixels, divide by its
    area; cropped edge rows/columns copy the nearest bin."""
    fy, fx = factor
    ny, nx = image_shape
    up = np.repeat(np.repeat(maps_binned, fy, axis=1), fx, axis=2) / (fy * fx)
    up = np.pad(up, ((0, 0), (0, ny - up.shape[1]), (0, nx - up.shape[2])), mode="edge")
    return np.ascontiguousarray(up.reshape(up.shape[0], -1).T)


class PSNMF(BaseEstimator):
    """Two-stage Poisson NMF pan-sharpening (PSNMF) of a STEM-EDX spectrum image.

    Stage 1 factorises the spatially binned cube, whose pixels hold b^2 times
    the counts, into high-fidelity phase spectra. Stage 2 fits full-resolution
    maps to the full cube with those spectra fixed, starting from the stage-1
    maps upsampled and divided by b^2. Spectra from stage 1 and maps from
    stage 2 give the result; ``reconstruct()`` is the denoised cube.

    Parameters
    ----------
    n_components : int
        Number of phases k.
    bin_factor : "auto", int or (int, int), default="auto"
        Bin size of stage 1; see :func:`auto_bin_factor`. 1 disables binning.
    init : {"nndsvda", "random"}, default="nndsvda"
        Initialisation of stage 1.
    max_iter_binned, max_iter : int, default=500, 200
        Iteration limits of stage 1 and stage 2.
    tol : float, default=1e-6
        Relative loss decrease per iteration at which each stage stops. The
        Poisson loss is dominated by the noise, so its relative decrease is small
        long before convergence: 1e-6 recovers spectra measurably better than
        1e-4 on the simulated phantoms (provisional, pending the validation table).
    random_state : int, RandomState or None
    n_threads : int or None
        Threads of the core (None: OpenMP default).
    verbose : bool

    Attributes
    ----------
    spectra_ : ndarray (k, n_channels)
        Phase spectra, each row summing to 1.
    maps_ : ndarray (k, ny, nx)
        Phase maps in counts per pixel: the expected counts of pixel (y, x) are
        ``sum_k maps_[k, y, x] * spectra_[k]``.
    binned_ : BinnedResult
        The stage-1 result.
    bin_factor_ : (int, int)
    loss_history_ : dict
        ``{"binned": ndarray, "full": ndarray}``: generalised KL per iteration.
    image_shape_ : (int, int)
    """

    def __init__(
        self,
        n_components,
        *,
        bin_factor="auto",
        init="nndsvda",
        max_iter_binned=500,
        max_iter=200,
        tol=1e-6,
        random_state=None,
        n_threads=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.bin_factor = bin_factor
        self.init = init
        self.max_iter_binned = max_iter_binned
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    @staticmethod
    def _unfold(X, image_shape):
        """-> (n_pixels, n_channels) matrix (a view when possible), (ny, nx)."""
        if sp.issparse(X) or np.ndim(X) == 2:
            if image_shape is None:
                raise ValueError("a 2-D (n_pixels, n_channels) X needs image_shape=(ny, nx)")
            ny, nx = (int(v) for v in image_shape)
            if ny * nx != X.shape[0]:
                raise ValueError(
                    f"image_shape {image_shape} holds {ny * nx} pixels, X has {X.shape[0]}"
                )
            return (X.tocsr() if sp.issparse(X) else np.asarray(X)), (ny, nx)
        cube = np.asarray(X)
        if cube.ndim != 3:
            raise ValueError(f"cube must be 3-D (ny, nx, n_channels), got shape {cube.shape}")
        if image_shape is not None and tuple(image_shape) != cube.shape[:2]:
            raise ValueError(f"image_shape {image_shape} does not match cube {cube.shape}")
        return cube.reshape(-1, cube.shape[2]), cube.shape[:2]

    def __sklearn_is_fitted__(self):
        return "spectra_" in vars(self) and "maps_" in vars(self)

    def _resolve_factor(self, mean_counts, image_shape):
        if isinstance(self.bin_factor, str):
            if self.bin_factor != "auto":
                raise ValueError(f"bin_factor must be 'auto' or int(s), got {self.bin_factor!r}")
            b = auto_bin_factor(mean_counts, image_shape, self.n_components)
            return (b, b)
        factor = as_factor(self.bin_factor)
        if factor[0] > image_shape[0] or factor[1] > image_shape[1]:
            raise ValueError(f"bin_factor {factor} is larger than the image {image_shape}")
        return factor

    def fit(self, X, y=None, *, image_shape=None):
        """Fit spectra and full-resolution maps.

        Parameters
        ----------
        X : ndarray (ny, nx, n_channels), or (n_pixels, n_channels) dense or
            scipy.sparse with ``image_shape``
            Non-negative counts.
        y : Ignored
        image_shape : (int, int), optional
            (ny, nx) of a 2-D X, pixels unfolded row-major.

        Returns
        -------
        self
        """
        clear_fitted(self)  # an interrupted or failed fit leaves the estimator unfitted
        check_psnmf_params(self, image_shape)
        pixels, shape = self._unfold(X, image_shape)
        n_threads = resolve_threads(self.n_threads)
        counts = to_counts(pixels, n_threads=n_threads)
        factor = self._resolve_factor(counts.total() / counts.shape[0], shape)

        binned = bin_pixels(pixels, shape, factor) if factor != (1, 1) else pixels
        stage1 = PoissonNMF(
            self.n_components,
            init=self.init,
            max_iter=self.max_iter_binned,
            tol=self.tol,
            random_state=self.random_state,
            n_threads=self.n_threads,
            verbose=self.verbose,
        )
        maps_binned = stage1.fit_transform(binned)
        totals = stage1.components_.sum(axis=1)
        totals[totals == 0] = 1.0
        spectra = np.ascontiguousarray(stage1.components_ / totals[:, None])
        maps_binned = maps_binned * totals
        nyb, nxb = shape[0] // factor[0], shape[1] // factor[1]
        maps_binned = maps_binned.T.reshape(-1, nyb, nxb)

        maps = _upsample(maps_binned, factor, shape)
        report = run_updates(
            counts,
            maps,
            spectra,
            max_iter=self.max_iter,
            tol=self.tol,
            update_spectra=False,
            n_threads=n_threads,
        )
        self.bin_factor_ = factor
        self.image_shape_ = shape
        self.binned_ = BinnedResult(factor, spectra.copy(), maps_binned, stage1.loss_history_)
        self.spectra_ = spectra
        self.maps_ = np.ascontiguousarray(maps.T.reshape(-1, *shape))
        self.loss_history_ = {"binned": stage1.loss_history_, "full": report["loss_history"]}
        self.n_iter_ = {"binned": stage1.n_iter_, "full": int(report["n_iter"])}
        return self

    def reconstruct(self, dtype=np.float32):
        """Denoised cube: the expected counts of the fitted model.

        Returns
        -------
        ndarray of shape (ny, nx, n_channels), counts per channel (dense).
        """
        check_is_fitted(self)
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a floating-point type, got {dtype}")
        n_values = int(np.prod(self.image_shape_)) * self.spectra_.shape[1]
        check_allocation(n_values * (8 + dtype.itemsize), "reconstruct() (dense cube)")
        k = self.maps_.shape[0]
        cube = self.maps_.reshape(k, -1).T @ self.spectra_
        return cube.astype(dtype, copy=False).reshape(*self.image_shape_, -1)
