"""The steps of PSNMF after binning: stage 1 (spectra), stage 2 (maps), refinement.

Each step is one function so that the estimator (pipeline.py) and the automatic
bin-factor selection (bin_selection.py) run exactly the same procedure.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._counts import Counts
from .nmf import PoissonNMF, run_updates


@dataclass
class Stage1Result:
    """Best of the stage-1 restarts on the binned matrix.

    spectra : (k, C) rows summing to 1; maps : (n_binned, k) counts per binned
    pixel; loss_history, loss_iterations : the chosen run's losses and the
    iterations after which they were evaluated; losses : final loss of every
    restart.
    """

    spectra: np.ndarray
    maps: np.ndarray
    loss_history: np.ndarray
    loss_iterations: np.ndarray
    n_iter: int
    losses: np.ndarray


def normalise_spectra(maps: np.ndarray, spectra: np.ndarray):
    """Rescale so each spectrum sums to 1 and the maps carry the counts.

    Returns C-contiguous float64 copies; an all-zero spectrum is left as is.
    """
    totals = spectra.sum(axis=1)
    totals[totals == 0] = 1.0
    return (
        np.ascontiguousarray(maps * totals, dtype=np.float64),
        np.ascontiguousarray(spectra / totals[:, None], dtype=np.float64),
    )


def fit_spectra(
    binned,
    n_components: int,
    *,
    init: str,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state,
    n_threads,
    verbose=False,
) -> Stage1Result:
    """Stage 1: Poisson NMF of the binned (n_binned, C) matrix, ``n_init`` times.

    The first run uses ``init``, the others a random init with their own seed
    drawn from ``random_state``; the run with the lowest final loss is kept
    (all runs see the same data, so their losses compare directly).
    ``n_threads`` follows the core's convention: 0 is OpenMP's default.
    """
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
    best = None
    losses = []
    for run, seed in enumerate(seeds):
        model = PoissonNMF(
            n_components,
            init=init if run == 0 else "random",
            max_iter=max_iter,
            tol=tol,
            random_state=int(seed),
            n_threads=n_threads or None,
            verbose=verbose,
        )
        with warnings.catch_warnings():  # one warning below, for the run that is kept
            warnings.simplefilter("ignore", ConvergenceWarning)
            maps = model.fit_transform(binned)
        losses.append(model.reconstruction_err_)
        if best is None or model.reconstruction_err_ < best[0].reconstruction_err_:
            best = (model, maps)
    model, maps = best
    if model.n_iter_ >= max_iter:
        warnings.warn(
            f"PSNMF stage 1: max_iter_binned={max_iter} reached before the relative loss "
            f"decrease fell below tol={tol}",
            ConvergenceWarning,
            stacklevel=3,
        )
    maps, spectra = normalise_spectra(maps, model.components_)
    return Stage1Result(
        spectra, maps, model.loss_history_, model.loss_iterations_, model.n_iter_, np.array(losses)
    )


def upsample_block(maps_grid: np.ndarray, factor, y0, y1, x0, x1) -> np.ndarray:
    """Stage-2 start of the pixels [y0:y1, x0:x1] from binned maps (k, nyb, nxb).

    Each bin's counts are spread evenly over its fy * fx pixels; rows and
    columns past the last whole bin take the nearest bin. Returns
    (n_block_pixels, k), C-contiguous.
    """
    fy, fx = factor
    k, nyb, nxb = maps_grid.shape
    rows = np.minimum(np.arange(y0, y1) // fy, nyb - 1)
    cols = np.minimum(np.arange(x0, x1) // fx, nxb - 1)
    block = (maps_grid / (fy * fx))[:, rows[:, None], cols[None, :]]
    return np.ascontiguousarray(block.reshape(k, -1).T)


def upsample_maps(maps_binned: np.ndarray, factor, image_shape) -> np.ndarray:
    """(n_binned, k) binned maps -> (ny * nx, k) start of stage 2 (:func:`upsample_block`)."""
    fy, fx = factor
    ny, nx = image_shape
    grid = maps_binned.T.reshape(maps_binned.shape[1], ny // fy, nx // fx)
    return upsample_block(grid, factor, 0, ny, 0, nx)


def fit_maps(counts: Counts, spectra, maps, *, max_iter, tol, n_threads) -> dict:
    """Stage 2: full-resolution maps with the spectra fixed; ``maps`` updated in place."""
    return run_updates(
        counts,
        maps,
        spectra,
        max_iter=max_iter,
        tol=tol,
        update_spectra=False,
        n_threads=n_threads,
    )


def two_stages(
    binned,
    counts: Counts,
    factor,
    image_shape,
    n_components: int,
    *,
    init: str,
    n_init: int,
    max_iter_binned: int,
    max_iter: int,
    tol: float,
    random_state,
    n_threads,
    verbose=False,
):
    """Stage 1 on the binned matrix, then stage 2 on ``counts`` at full resolution.

    The procedure of PSNMF, shared by the estimator and the bin selection.
    Returns ``(stage1, spectra, maps, report)``: the :class:`Stage1Result`, the
    fixed spectra (k, C), the full-resolution maps (ny * nx, k) and stage 2's report.
    """
    stage1 = fit_spectra(
        binned,
        n_components,
        init=init,
        n_init=n_init,
        max_iter=max_iter_binned,
        tol=tol,
        random_state=random_state,
        n_threads=n_threads,
        verbose=verbose,
    )
    spectra = stage1.spectra.copy()
    maps = upsample_maps(stage1.maps, factor, image_shape)
    report = fit_maps(counts, spectra, maps, max_iter=max_iter, tol=tol, n_threads=n_threads)
    return stage1, spectra, maps, report


def refine(counts: Counts, maps, spectra, *, max_iter, tol, n_threads) -> dict:
    """Joint updates of maps and spectra at full resolution, in place."""
    return run_updates(counts, maps, spectra, max_iter=max_iter, tol=tol, n_threads=n_threads)
