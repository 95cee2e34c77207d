"""PoissonNMF: a scikit-learn estimator for Poisson (KL) NMF on the compiled core."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from . import _core, _dask
from ._counts import Counts, resolve_threads, to_counts
from ._init import maps_for_fixed_spectra, nndsvda, random_init
from ._memory import check_allocation
from ._validation import check_factor_matrix, check_n_components, clear_fitted

_INITS = ("nndsvda", "random", "custom")
_SOLVERS = ("mu", "cd", "newton")
_FITTED = (
    "components_",
    "n_iter_",
    "reconstruction_err_",
    "loss_history_",
    "loss_iterations_",
    "n_components_",
)
# The loss costs a log per nonzero, as much as an update: evaluate it (and the
# stopping rule) every LOSS_EVERY iterations, as scikit-learn does.
LOSS_EVERY = 10


def run_updates(
    counts: Counts,
    maps: np.ndarray,
    spectra: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    update_maps: bool = True,
    update_spectra: bool = True,
    n_threads: int = 0,
    callback=None,
    loss_every: int = LOSS_EVERY,
    solver: str = "mu",
) -> dict:
    """Run KL updates (``solver`` "mu", "cd" or "newton") on float64 C-ordered factors, in place.

    Returns the core's report: ``n_iter``, ``converged``, ``loss_history`` and
    ``loss_iterations``: ``loss_history[t]`` is the loss after
    ``loss_iterations[t]`` iterations, evaluated at 0, every ``loss_every``
    iterations and at ``n_iter`` (the returned factors). ``tol`` is compared
    with the mean relative decrease per iteration between two evaluations.
    """
    return _core.fit_poisson_nmf(
        counts.core,
        counts.shape[1],
        maps,
        spectra,
        max_iter=max_iter,
        tol=tol,
        update_maps=update_maps,
        update_spectra=update_spectra,
        n_threads=n_threads,
        callback=callback,
        loss_every=loss_every,
        solver=solver,
    )


class PoissonNMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Non-negative matrix factorisation under Poisson noise.

    Finds non-negative ``W`` (maps, n_pixels x k, in counts) and ``H`` (spectra,
    k x n_channels) minimising the generalised Kullback-Leibler divergence, the
    Poisson negative log-likelihood up to a constant:

    .. math:: D(X \| WH) = \sum_{ij} x_{ij} \log\frac{x_{ij}}{\lambda_{ij}}
              - x_{ij} + \lambda_{ij}, \qquad \lambda = WH.

    Each iteration applies the Lee-Seung multiplicative updates, maps first:

    .. math:: W \leftarrow W \odot \frac{(X / \lambda) H^T}{\mathbf 1 H^T}, \qquad
              H \leftarrow H \odot \frac{W^T (X / \lambda)}{W^T \mathbf 1},

    evaluated by the C++ core only where ``x > 0`` (``lambda`` is floored at
    float32 epsilon there, and zero denominators are guarded as in
    scikit-learn's ``NMF(solver="mu", beta_loss="kullback-leibler")``, whose
    iterates these are). The loss never increases while the model stays above
    that floor, i.e. for counts; values far below float32 epsilon (1.2e-7) can
    make the floored loss rise by a few times their own size.

    Parameters
    ----------
    n_components : int, default=2
        Number of components (phases), ``1 <= k <= min(n_pixels, n_channels)``.
    init : {"nndsvda", "random", "custom"}, default="nndsvda"
        Initialisation. "custom" takes ``W`` and ``H`` passed to ``fit_transform``.
    solver : {"mu", "cd", "newton"}, default="mu"
        "mu": the multiplicative updates above (scikit-learn's iterates).
        "cd": cyclic coordinate descent (Hsieh & Dhillon, KDD 2011): each
        iteration sweeps every map entry, then every spectrum entry, with one
        projected Newton step on the same objective,
        :math:`w \leftarrow \max(0, w - \partial_w D / \partial^2_w D)`,
        evaluated at the nonzeros of X; a step that lowers the entry is halved
        until the derivative at its end is >= 0, so every step lowers the loss.
        It needs a column-major copy of the nonzeros when the spectra are
        updated. It takes about 5x fewer iterations than "mu" to a given loss,
        but an iteration costs about 8 of the vectorised "mu" (bench/run.py,
        65536 x 1024, k = 4: "mu" reached scikit-learn's 200-iteration loss in
        0.6x the time of "cd"), so "mu" is the faster choice.
        "newton": one "mu" iteration (it fixes the scale of the start), then
        alternating projected Newton steps, each lengthened 1.5 times
        (over-relaxation: about a third fewer iterations) before it is tested:
        each iteration gives every map row one Newton step on its k values with
        the spectra fixed (accepted by a trapezoid test on the derivative along
        the step and, where a bound cannot guarantee it, by the row's exact loss
        change; else tried at 2/3, 1/2, 1/4 and 1/8 of its length, else the
        "mu" step), then every spectrum column one Newton step
        with the maps fixed, from gradients and curvatures gathered in the same
        pass over X (taken whole where a bound on the curvature holds over the
        entries it keeps and, for up to 8 components, no pixel with counts in
        the channel is left without model; else shortened until the bound
        guarantees a decrease). Whenever the loss is evaluated, a rise restores
        the last evaluated state and the safer variants (guaranteed column
        steps, then "mu") continue from there, so ``loss_history_`` never
        increases. An iteration costs about 2.6 "mu" iterations (k = 4; 1.9-2.5
        at k = 2, 3 and 5, 3 at k = 6, 4.5-4.7 at k = 7 and 8, with the
        AVX-512 rows), but it converges far faster: on bench/workloads.py
        counts (0.1 counts per channel, k = 2 to 8) it reached the loss of 200
        "mu" iterations in 10-12 iterations, 6.8-7.1 times sooner than "mu"
        at k = 4 (5.4-7.6 at k = 2, 3, 5 and 6, 3.4 at k = 8; 2 threads), and at
        0.01-0.02 counts per channel in 11 (k = 4: 4.5-6.5 times sooner).
        Beyond 8 components an iteration costs 8-10 "mu" ones (k = 12 and 16)
        and the gain shrinks to 1.5-1.6 times (k = 10, 12 and 16).
        ``transform`` (spectra fixed) uses "mu". At most 64 components.
    max_iter : int, default=200
        Maximum number of iterations.
    tol : float, default=1e-4
        Stop when the loss decreases by less than ``tol`` times itself per
        iteration, on average over the 10 iterations since it was last
        evaluated (the loss costs as much as an update, so it is evaluated every
        10 iterations, as in scikit-learn). ``tol=0`` runs ``max_iter`` iterations.
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVD of "nndsvda" and the "random" init.
    n_threads : int or None, default=None
        Threads of the core; None uses the OpenMP default (OMP_NUM_THREADS,
        threadpoolctl limits). Results are bitwise identical for any value.
    verbose : bool or int, default=False
        Print the loss every 10 iterations.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Spectra ``H``.
    n_components_ : int
    n_iter_ : int
        Iterations run.
    reconstruction_err_ : float
        Generalised KL divergence of the final factors (not scikit-learn's
        ``sqrt(2 D)``).
    loss_history_ : ndarray of shape (n_evaluations,)
        Loss of the initial factors, then every 10 iterations, then of the
        final factors (``reconstruction_err_``); non-increasing while the
        model stays above its floor (float32 eps, as in scikit-learn's loss) at
        every count. A start far below it (say a rank-1 start on counts that
        span 8 decades) makes the first value understate the divergence, and
        the next can then be higher although the divergence fell.
    loss_iterations_ : ndarray of int of shape (n_evaluations,)
        Iterations after which each ``loss_history_`` value was evaluated:
        0, 10, 20, ..., ``n_iter_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names.

    Notes
    -----
    X may be dense of any non-negative real dtype, or scipy.sparse. It is
    converted once into the core's working format (CSR when mostly zero) and is
    never densified. libgomp is not fork-safe: with multiprocessing, use the
    "spawn" or "forkserver" start method.

    Pixels (rows) or channels (columns) without any counts get maps or spectra
    entries of exactly 0, never NaN; all-zero X gives a zero model and loss 0.
    Bad input raises ValueError/TypeError naming the parameter (NaN, infinity,
    negative counts, integers above 2**53, bad shapes or parameters); a working
    copy that would not fit in memory raises MemoryError. Ctrl-C stops a fit
    within one pass of the updates and leaves the estimator unfitted.
    """

    def __init__(
        self,
        n_components=2,
        *,
        init="nndsvda",
        solver="mu",
        max_iter=200,
        tol=1e-4,
        random_state=None,
        n_threads=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self):
        # n_features_in_ is set before the iterations: it alone does not make a fit.
        return "components_" in vars(self)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    # -- validation -------------------------------------------------------------------------

    def _check_params(self, n_pixels: int, n_channels: int) -> int:
        k = check_n_components(self.n_components, n_pixels, n_channels)
        # maps, spectra, their transposed copy and the per-thread spectra accumulators
        check_allocation(8 * k * (n_pixels + 4 * n_channels), "the factors")
        if self.init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {self.init!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral):
            raise TypeError(f"max_iter must be an int, got {self.max_iter!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        if not isinstance(self.tol, numbers.Real) or not np.isfinite(self.tol) or self.tol < 0:
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")
        return int(k)

    def _validate_X(self, X, reset: bool):
        X = validate_data(
            self, X, accept_sparse=True, dtype="numeric", reset=reset, accept_large_sparse=True
        )
        check_non_negative(X, f"{type(self).__name__} (input X)")
        return X

    @staticmethod
    def _check_custom(name, array, shape):
        if array is None:
            raise ValueError(f"init='custom' needs {name} of shape {shape}")
        array = check_factor_matrix(array, name, shape)
        return np.array(array, dtype=np.float64, order="C")  # a copy: updated in place

    # -- fitting ----------------------------------------------------------------------------

    def _progress(self):
        if not self.verbose:
            return None

        def report(iteration, loss):
            # The loss of the state after iteration - 1 is known from this iteration on.
            if (iteration - 1) % LOSS_EVERY == 0:
                print(f"PoissonNMF iteration {iteration - 1:4d}  loss {loss:.6e}")
            return True

        return report

    def fit_transform(self, X, y=None, W=None, H=None):
        """Fit the model and return the maps.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_pixels, n_channels)
            Non-negative counts.
        y : Ignored
        W : array-like of shape (n_pixels, n_components), optional
            Initial maps, with ``init="custom"``.
        H : array-like of shape (n_components, n_channels), optional
            Initial spectra, with ``init="custom"``.

        Returns
        -------
        W : ndarray of shape (n_pixels, n_components)
            Maps (abundances, in counts per pixel when H rows sum to 1). For a
            dask array X (chunked along pixels), a dask array of maps already
            computed on the scheduler (see ``psnmf._dask``).
        """
        clear_fitted(self)  # an interrupted fit must not leave a previous fit behind
        if _dask.is_dask_array(X):
            return _dask.fit_transform(self, X, W=W, H=H)
        X = self._validate_X(X, reset=True)
        k = self._check_params(*X.shape)
        n_threads = resolve_threads(self.n_threads)
        counts = to_counts(X, n_threads=n_threads)
        if self.init == "custom":
            maps = self._check_custom("W", W, (X.shape[0], k))
            spectra = self._check_custom("H", H, (k, X.shape[1]))
        elif self.init == "random":
            maps, spectra = random_init(counts, k, rng=self.random_state)
        else:
            maps, spectra = nndsvda(counts, k, rng=self.random_state)
        report = run_updates(
            counts,
            maps,
            spectra,
            max_iter=self.max_iter,
            tol=self.tol,
            n_threads=n_threads,
            callback=self._progress(),
            solver=self.solver,
        )
        self._warn_if_not_converged(report)
        self.components_ = spectra
        self.n_components_ = k
        self.n_iter_ = int(report["n_iter"])
        self.loss_history_ = report["loss_history"]
        self.loss_iterations_ = report["loss_iterations"]
        self.reconstruction_err_ = float(report["loss_history"][-1])
        return maps

    def _warn_if_not_converged(self, report):
        if self.tol > 0 and not report["converged"]:
            warnings.warn(
                f"PoissonNMF: maximum number of iterations {self.max_iter} reached before "
                f"the relative loss decrease fell below tol={self.tol}.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def fit(self, X, y=None, **params):
        """Fit the model to X; see :meth:`fit_transform`. Returns self."""
        self.fit_transform(X, **params)
        return self

    def transform(self, X):
        """Maps of X for the fitted spectra (held fixed).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_pixels, n_channels)

        Returns
        -------
        W : ndarray of shape (n_pixels, n_components)
            A persisted dask array for a dask X.
        """
        check_is_fitted(self)
        if _dask.is_dask_array(X):
            return _dask.transform(self, X)
        X = self._validate_X(X, reset=False)
        n_threads = resolve_threads(self.n_threads)
        counts = to_counts(X, n_threads=n_threads)
        spectra = np.array(self.components_, dtype=np.float64, order="C")
        maps = maps_for_fixed_spectra(counts, spectra)
        run_updates(
            counts,
            maps,
            spectra,
            max_iter=self.max_iter,
            tol=self.tol,
            update_spectra=False,
            n_threads=n_threads,
            # "newton" alternates between both factors; with the spectra fixed, MU.
            solver="mu" if self.solver == "newton" else self.solver,
        )
        return maps

    def inverse_transform(self, X):
        """Model counts ``W @ components_``.

        Parameters
        ----------
        X : array-like of shape (n_pixels, n_components)
            Maps.

        Returns
        -------
        ndarray of shape (n_pixels, n_features)
        """
        check_is_fitted(self)
        W = check_factor_matrix(X, "X (maps)")
        if W.ndim != 2 or W.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X (maps) must have shape (n_pixels, {self.components_.shape[0]}), got {W.shape}"
            )
        check_allocation(8 * W.shape[0] * self.components_.shape[1], "inverse_transform")
        return W @ self.components_
