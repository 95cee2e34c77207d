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
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _dask, _stages
from ._counts import resolve_threads, to_counts
from ._memory import check_allocation
from ._validation import check_psnmf_params, clear_fitted
from .bin_selection import select_bin_factor
from .binning import as_factor, bin_pixels


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
        Generalised KL of the kept restart, every 10 iterations and at the end.
    restart_losses : ndarray (n_init,)
        Final loss of every restart; the lowest was kept.
    """

    factor: tuple[int, int]
    spectra: np.ndarray
    maps: np.ndarray
    loss_history: np.ndarray
    restart_losses: np.ndarray


# n_init="auto": restarts while the binned counts have at most this many nonzeros.
# A stage-1 run costs time in proportion to them (every update is a pass over
# them); the validation cubes (128 x 128 x 1024) have at most ~4 million.
AUTO_RESTARTS = 4
AUTO_RESTARTS_MAX_NONZEROS = 2**23


def resolve_n_init(n_init, binned) -> int:
    """Stage-1 runs for ``n_init`` ("auto" or an int) on the binned counts.

    ``binned`` is the binned (n_binned_pixels, C) matrix, dense or sparse.
    """
    if isinstance(n_init, str):
        nonzeros = binned.nnz if sp.issparse(binned) else np.count_nonzero(binned)
        return AUTO_RESTARTS if nonzeros <= AUTO_RESTARTS_MAX_NONZEROS else 1
    return int(n_init)


class PSNMF(BaseEstimator):
    """Two-stage Poisson NMF pan-sharpening (PSNMF) of a STEM-EDX spectrum image.

    Stage 1 factorises the spatially binned cube, whose pixels hold b^2 times
    the counts, into high-fidelity phase spectra (best of ``n_init`` restarts).
    Stage 2 fits full-resolution maps to the full cube with those spectra
    fixed, starting from the stage-1 maps upsampled and divided by b^2. Spectra
    from stage 1 and maps from stage 2 give the result; ``reconstruct()`` is the
    denoised cube. Optionally, ``refine_iter`` joint iterations at full
    resolution then refine the spectra too.

    Parameters
    ----------
    n_components : int
        Number of phases k.
    bin_factor : "auto", int or (int, int), default="auto"
        Bin size of stage 1; 1 disables binning. "auto" chooses it by held-out
        Poisson likelihood on two independent halves of the counts
        (:mod:`psnmf.bin_selection`); it may choose 1.
    init : {"nndsvda", "random"}, default="nndsvda"
        Initialisation of the first stage-1 run; further restarts are random.
    n_init : "auto" or int, default="auto"
        Stage-1 runs; the one with the lowest loss is kept. "auto": 4 while the
        binned counts have at most 2**23 (8.4 million) nonzeros (restarts cost
        little there and won the validation table), 1 above (stage 1 then
        dominates the cost, and each run costs in proportion to the nonzeros).
    max_iter_binned, max_iter : int, default=500, 200
        Iteration limits of stage 1 and stage 2.
    refine_iter : int, default=0
        Joint (maps and spectra) iterations at full resolution after stage 2.
    tol : float, default=1e-6
        Relative loss decrease per iteration at which each stage stops.
    random_state : int, RandomState or None
        Seeds the count split of "auto", the initialisations and the restarts.
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
    bin_selection_ : BinSelection or None
        The held-out deviances behind ``bin_factor="auto"``.
    loss_history_ : dict
        ``{"binned": ndarray, "full": ndarray, "refine": ndarray}``: generalised
        KL of each stage, evaluated every 10 iterations and at the end
        ("refine" is empty when not refined).
    loss_iterations_ : dict
        Same keys: the iterations after which each loss was evaluated.
    n_iter_ : dict
        Iterations of each stage, same keys.
    image_shape_ : (int, int)

    Notes
    -----
    The defaults are the ones that win ``bench/VALIDATION.md`` (``python
    bench/validate.py``: 3 phantoms x doses 10, 50, 250 counts/pixel x 3 seeds,
    128 x 128 x 1024). All 21 target checks pass there.

    - Against plain Poisson NMF at full resolution, PSNMF has the smaller median
      spectral angle and mean at% error at every dose. At 10 counts/pixel:
      3.7 vs 39.3 deg and 0.69 vs 18.1 at% (particles), 5.5 vs 30.4 deg and
      3.4 vs 19.6 at% (catalyst), 5.3 vs 23.9 deg and 2.7 vs 16.7 at% (lamella).
    - Its reconstruction is closer to the noise-free cube than Poisson-weighted
      PCA's in every case.
    - ``n_init="auto"`` (4 runs on these images) beats one stage-1 run: median
      mean at% error 0.85 vs 0.89.
    - Refining the spectra at full resolution (``refine_iter=100``) costs
      accuracy: 4.2 vs 2.9 deg median angle, 2.7 vs 0.85 at%.
    - "auto" chose 6-8 at 10 counts/pixel and 2-3 at 250.

    Poisson NMF has local minima. On the catalyst, the Pt shell and the PtNi
    core share Pt lines, and one of them is still partly mixed at high dose:
    22 at% worst error vs 30 for plain NMF.
    """

    def __init__(
        self,
        n_components,
        *,
        bin_factor="auto",
        init="nndsvda",
        n_init="auto",
        max_iter_binned=500,
        max_iter=200,
        refine_iter=0,
        tol=1e-6,
        random_state=None,
        n_threads=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.bin_factor = bin_factor
        self.init = init
        self.n_init = n_init
        self.max_iter_binned = max_iter_binned
        self.max_iter = max_iter
        self.refine_iter = refine_iter
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

    def _resolve_factor(self, pixels, image_shape, rng, n_threads):
        """-> ((fy, fx), BinSelection or None)."""
        if isinstance(self.bin_factor, str):
            if self.bin_factor != "auto":
                raise ValueError(f"bin_factor must be 'auto' or int(s), got {self.bin_factor!r}")
            selection = select_bin_factor(
                pixels,
                image_shape,
                self.n_components,
                settings={
                    "init": self.init,
                    "max_iter_binned": self.max_iter_binned,
                    "max_iter": self.max_iter,
                    "tol": self.tol,
                },
                random_state=rng,
                n_threads=n_threads,
            )
            return (selection.factor, selection.factor), selection
        factor = as_factor(self.bin_factor)
        if factor[0] > image_shape[0] or factor[1] > image_shape[1]:
            raise ValueError(f"bin_factor {factor} is larger than the image {image_shape}")
        return factor, None

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

        Notes
        -----
        A dask array X (cube chunked along ny/nx, or 2-D chunked along pixels)
        is fitted chunk by chunk on the active dask scheduler; ``maps_`` is then
        a dask array already computed on it (see ``psnmf._dask.fit_psnmf``).
        """
        clear_fitted(self)  # an interrupted or failed fit leaves the estimator unfitted
        check_psnmf_params(self, image_shape)
        if _dask.is_dask_array(X):
            return _dask.fit_psnmf(self, X, image_shape)
        pixels, shape = self._unfold(X, image_shape)
        n_threads = resolve_threads(self.n_threads)
        rng = check_random_state(self.random_state)
        counts = to_counts(pixels, n_threads=n_threads)
        factor, selection = self._resolve_factor(pixels, shape, rng, n_threads)

        # Sparse counts are binned from the working format already validated above.
        source = counts if counts.is_sparse else pixels
        binned = (
            bin_pixels(source, shape, factor, n_threads=n_threads) if factor != (1, 1) else pixels
        )
        stage1, spectra, maps, full = _stages.two_stages(
            binned,
            counts,
            factor,
            shape,
            self.n_components,
            init=self.init,
            n_init=resolve_n_init(self.n_init, binned),
            max_iter_binned=self.max_iter_binned,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=rng,
            n_threads=n_threads,
            verbose=self.verbose,
        )
        refined = {"loss_history": np.empty(0), "loss_iterations": np.empty(0, int), "n_iter": 0}
        if self.refine_iter > 0:
            refined = _stages.refine(
                counts, maps, spectra, max_iter=self.refine_iter, tol=self.tol, n_threads=n_threads
            )
            maps, spectra = _stages.normalise_spectra(maps, spectra)

        nyb, nxb = shape[0] // factor[0], shape[1] // factor[1]
        self.bin_factor_ = factor
        self.bin_selection_ = selection
        self.image_shape_ = shape
        self.binned_ = BinnedResult(
            factor,
            stage1.spectra,
            np.ascontiguousarray(stage1.maps.T.reshape(-1, nyb, nxb)),
            stage1.loss_history,
            stage1.losses,
        )
        self.spectra_ = spectra
        self.maps_ = np.ascontiguousarray(maps.T.reshape(-1, *shape))
        self.loss_history_ = {
            "binned": stage1.loss_history,
            "full": full["loss_history"],
            "refine": refined["loss_history"],
        }
        self.loss_iterations_ = {
            "binned": stage1.loss_iterations,
            "full": full["loss_iterations"],
            "refine": refined["loss_iterations"],
        }
        self.n_iter_ = {
            "binned": stage1.n_iter,
            "full": int(full["n_iter"]),
            "refine": int(refined["n_iter"]),
        }
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
