"""Poisson NMF and PSNMF on dask arrays: pixels in chunks, on any dask scheduler.

The counts are split into row blocks of pixels (the chunks of the dask array).
One multiplicative-update iteration is a map over the blocks and a tree
reduction:

- each block updates its own maps with the spectra fixed and returns the spectra
  numerator ``maps_c^T (X_c / lambda_c)`` (k x C), the column sums of its maps
  (k) and, on the iterations that record it, its share of the loss
  (``_core.update_block``: one fused pass on the row kernels of the in-memory fit);
- the pieces are summed in a fixed tree (fan-in ``_FAN_IN``), and the spectra
  ``H <- H * N / d`` are updated on the client with the core's guards
  (``_core.apply_spectra_update``);
- the spectra (k x C, small) are broadcast to the next iteration; the maps never
  leave their block: they are persisted where they were computed.

The arithmetic per nonzero is that of the in-memory fit; only the order of the
sums over pixels differs, so results agree with the in-memory fit to rounding
(the tests check 1e-8 relative). The same stopping rule on the global loss is
applied, so the number of iterations is the same.

Memory: each task holds one block of counts and its maps. The working-format
counts (CSR per block when sparse) are persisted once when they fit
(``persist_counts``); otherwise every iteration re-reads the blocks from the
array's source (zarr, hspy/HDF5, ...), so a cube larger than memory is processed
with memory bounded by a few blocks per worker. libgomp is not fork-safe: use
dask.distributed with its default "spawn" start method, never "fork".
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.utils import check_random_state

from . import _core
from ._counts import resolve_threads, to_counts

# Pieces are summed in a tree of this fan-in: the sum order is fixed, whatever the scheduler.
_FAN_IN = 8
# persist_counts="auto" keeps the working-format counts in (cluster) memory when the
# dask array's own size is at most this many bytes; above it the blocks are re-read.
PERSIST_LIMIT_BYTES = 2 * 1024**3


def is_dask_array(X) -> bool:
    """True for a dask array; never imports dask itself."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(X, dask_array.Array)


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as error:  # pragma: no cover - dask arrays imply dask is installed
        raise ImportError("dask input needs the 'dask' extra: pip install psnmf[dask]") from error
    return dask, da


# -- tasks that run on the workers -----------------------------------------------------------


def _block_counts(block, n_threads):
    return to_counts(block.reshape(-1, block.shape[-1]), n_threads=n_threads)


def _block_step(counts, maps, spectra, accumulate_spectra, with_loss, n_threads):
    """One iteration on a block: (updated maps copy, (numerator, maps colsum, loss)).

    The numerator is None unless ``accumulate_spectra``, the loss None unless ``with_loss``.
    """
    maps = np.array(maps, dtype=np.float64, order="C")  # never mutate a task's input
    out = _core.update_block(
        counts.core,
        counts.shape[1],
        maps,
        spectra,
        accumulate_spectra=accumulate_spectra,
        with_loss=with_loss,
        # to_counts (_block_counts) validated them: re-reading every count for that would
        # cost a quarter of the pass on every iteration.
        check_counts=False,
        n_threads=n_threads,
    )
    return maps, (out["spectra_numerator"], out["maps_colsum"], out["loss"])


def _block_loss(counts, maps, spectra, n_threads):
    maps = np.ascontiguousarray(maps, dtype=np.float64)
    return _core.kl_divergence(counts.core, counts.shape[1], maps, spectra, n_threads=n_threads)


def _add_pieces(*pieces):
    numerators = [p[0] for p in pieces]
    numerator = None if numerators[0] is None else np.sum(numerators, axis=0)
    losses = [p[2] for p in pieces]
    loss = None if losses[0] is None else float(sum(losses))
    return numerator, np.sum([p[1] for p in pieces], axis=0), loss


def _add(*values):
    return sum(values[1:], values[0])


def _block_total(counts):
    return counts.total()


def _block_product(counts, dense, transpose):
    return counts.multiply(dense, transpose=transpose)


def _tree(delayed_items, combine):
    """Reduce delayed values with ``combine`` in a fixed tree of fan-in _FAN_IN."""
    dask, _ = _dask()
    items = list(delayed_items)
    while len(items) > 1:
        items = [
            dask.delayed(combine, pure=True)(*items[i : i + _FAN_IN])
            for i in range(0, len(items), _FAN_IN)
        ]
    return items[0]


# -- the blocks ------------------------------------------------------------------------------


class Blocks:
    """Row blocks of pixels: delayed working-format counts and their sizes."""

    def __init__(self, delayed_blocks, sizes, n_channels, *, persist_counts, nbytes, n_threads):
        dask, _ = _dask()
        counts = [dask.delayed(_block_counts, pure=True)(b, n_threads) for b in delayed_blocks]
        if persist_counts == "auto":
            persist_counts = nbytes <= PERSIST_LIMIT_BYTES
        elif not isinstance(persist_counts, bool):
            raise ValueError(
                f"persist_counts must be True, False or 'auto', got {persist_counts!r}"
            )
        if persist_counts:
            counts = list(dask.persist(*counts))
        self.counts = counts
        self.sizes = [int(s) for s in sizes]
        self.n_pixels = sum(self.sizes)
        self.n_channels = int(n_channels)
        self.n_threads = n_threads

    def total(self) -> float:
        dask, _ = _dask()
        parts = [dask.delayed(_block_total, pure=True)(c) for c in self.counts]
        return float(_tree(parts, _add).compute())

    def multiply(self, dense):
        """X @ dense (dense: (C, w)) as delayed blocks (n_c, w)."""
        dask, _ = _dask()
        dense = dask.delayed(np.ascontiguousarray(dense, dtype=np.float64))
        return [dask.delayed(_block_product, pure=True)(c, dense, False) for c in self.counts]

    def multiply_transposed(self, blocks) -> np.ndarray:
        """X.T @ Q for Q given as delayed blocks (n_c, w): (C, w), summed in a tree."""
        dask, _ = _dask()
        parts = [
            dask.delayed(_block_product, pure=True)(c, q, True)
            for c, q in zip(self.counts, blocks)
        ]
        return _tree(parts, _add).compute()

    def as_array(self, delayed_blocks, width):
        """Delayed (n_c, width) float64 blocks -> one dask array (n_pixels, width)."""
        _, da = _dask()
        return da.concatenate(
            [
                da.from_delayed(b, shape=(n, width), dtype=np.float64)
                for b, n in zip(delayed_blocks, self.sizes)
            ]
        )


def _matrix_blocks(X, *, persist_counts, n_threads) -> Blocks:
    """A 2-D dask array (n_pixels, C) chunked along pixels -> Blocks."""
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_pixels, n_channels), got shape {X.shape}")
    _check_dask(X)
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})  # a block holds whole spectra
    return Blocks(
        list(X.to_delayed()[:, 0]),
        X.chunks[0],
        X.shape[1],
        persist_counts=persist_counts,
        nbytes=X.nbytes,
        n_threads=n_threads,
    )


def _check_dask(X):
    if any(np.isnan(s) for s in X.shape) or any(np.isnan(c) for cs in X.chunks for c in cs):
        raise ValueError("X: dask array with unknown chunk sizes; call X.compute_chunk_sizes()")
    if X.dtype.kind not in "buif":
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if any(s == 0 for s in X.shape):
        raise ValueError(f"X is empty (shape {X.shape})")


# -- the iteration loop ----------------------------------------------------------------------


def run_updates(
    blocks: Blocks,
    maps,
    spectra,
    *,
    max_iter,
    tol,
    update_spectra=True,
    callback=None,
):
    """Multiplicative updates over blocks, as ``nmf.run_updates`` does in memory.

    Parameters
    ----------
    blocks : Blocks
    maps : list of delayed ndarray (n_c, k)
        Initial maps per block.
    spectra : ndarray (k, C)
        Initial spectra (updated copy returned).

    Returns
    -------
    maps : list of persisted delayed ndarray (n_c, k)
    spectra : ndarray (k, C)
    report : dict with n_iter, converged, loss_history and loss_iterations, recorded
        as the in-memory core does: the loss before iteration ``it`` enters the
        history when ``(it - 1) % LOSS_EVERY == 0``, the stopping rule compares the
        mean decrease per iteration since the previous entry with ``tol``, and the
        loss of the returned factors comes last.
    """
    from .nmf import LOSS_EVERY

    dask, _ = _dask()
    spectra = np.array(spectra, dtype=np.float64, order="C")
    history, evaluated = [], []
    converged = False
    n_iter = 0
    latest = np.nan
    for iteration in range(1, max_iter + 1):
        record = (iteration - 1) % LOSS_EVERY == 0  # the loss after iteration - 1 iterations
        spectra_task = dask.delayed(spectra.copy())
        steps = [
            dask.delayed(_block_step, nout=2, pure=True)(
                c, m, spectra_task, update_spectra, record, blocks.n_threads
            )
            for c, m in zip(blocks.counts, maps)
        ]
        total = _tree([s[1] for s in steps], _add_pieces)
        *maps, total = dask.persist(*[s[0] for s in steps], total)
        numerator, maps_colsum, loss = total.compute()
        if update_spectra:
            _core.apply_spectra_update(spectra, numerator, maps_colsum)
        n_iter = iteration
        stop = False
        if record:
            history.append(loss)
            evaluated.append(iteration - 1)
            latest = loss
            if tol > 0 and len(history) >= 2:
                span = evaluated[-1] - evaluated[-2]
                stop = history[-2] - history[-1] <= tol * abs(history[-2]) * span
        if callback is not None and not callback(iteration, latest):
            break
        if stop:
            converged = True
            break
    if not evaluated or evaluated[-1] != n_iter:
        history.append(loss_of(blocks, maps, spectra))
        evaluated.append(n_iter)
    report = {
        "n_iter": n_iter,
        "converged": converged,
        "loss_history": np.asarray(history),
        "loss_iterations": np.asarray(evaluated, dtype=np.int32),
    }
    return maps, spectra, report


def loss_of(blocks: Blocks, maps, spectra) -> float:
    """Generalised KL divergence of the blocks for the given maps and spectra."""
    dask, _ = _dask()
    spectra_task = dask.delayed(np.ascontiguousarray(spectra, dtype=np.float64))
    pieces = [
        dask.delayed(_block_loss, pure=True)(c, m, spectra_task, blocks.n_threads)
        for c, m in zip(blocks.counts, maps)
    ]
    return float(_tree(pieces, _add).compute())


# -- initialisation --------------------------------------------------------------------------


def _split_rows(array, blocks: Blocks):
    """An (n_pixels, w) numpy or dask array -> delayed blocks along the pixels."""
    dask, da = _dask()
    if is_dask_array(array):
        return _persisted_blocks(array.astype(np.float64).rechunk((tuple(blocks.sizes), -1)))
    array = np.asarray(array)
    edges = np.cumsum([0, *blocks.sizes])
    return [dask.delayed(np.ascontiguousarray(array[a:b])) for a, b in zip(edges[:-1], edges[1:])]


def _persisted_blocks(array):
    """Row blocks of a dask array with one column chunk, computed and held by the scheduler.

    The delayed blocks are persisted themselves: a persisted *array* would release
    its results on the cluster once the array object is gone.
    """
    dask, _ = _dask()
    return list(dask.persist(*array.to_delayed()[:, 0]))


def random_init(blocks: Blocks, k, rng=None):
    """As ``_init.random_init``: the same draws in the same order, maps block by block."""
    dask, _ = _dask()
    rng = check_random_state(rng)
    scale = np.sqrt(blocks.total() / (blocks.n_pixels * blocks.n_channels) / k)
    # Consecutive draws of a RandomState concatenate: the blocks get the in-memory values.
    maps = [dask.delayed(scale * np.abs(rng.standard_normal((n, k)))) for n in blocks.sizes]
    spectra = scale * np.abs(rng.standard_normal((k, blocks.n_channels)))
    return maps, spectra


def nndsvda(blocks: Blocks, k, rng=None, *, n_oversamples=10, n_power_iter=4):
    """As ``_init.nndsvda``, with the products by X as maps over blocks and tree sums.

    The randomized range finder draws the same test matrix; the orthonormal bases
    come from dask's tall-skinny QR instead of LAPACK's on the whole matrix. They
    span the same subspaces, and NNDSVD does not depend on the signs of the
    singular vectors, so the factors agree with the in-memory init to rounding.
    """
    _, da = _dask()
    rng = check_random_state(rng)
    n, m = blocks.n_pixels, blocks.n_channels
    width = min(k + n_oversamples, n, m)

    def orthonormal(delayed_blocks):
        Q, _ = da.linalg.qr(blocks.as_array(delayed_blocks, width))
        return _persisted_blocks(Q.rechunk((tuple(blocks.sizes), -1)))

    Q = blocks.multiply(rng.standard_normal((m, width)))
    for _ in range(n_power_iter):
        Q = orthonormal(Q)
        Z, _ = np.linalg.qr(blocks.multiply_transposed(Q))
        Q = blocks.multiply(Z)
    Q = orthonormal(Q)
    B = blocks.multiply_transposed(Q).T  # (width, m) = Q^T X
    U_b, S, Vt = np.linalg.svd(B, full_matrices=False)
    U = (blocks.as_array(Q, width) @ U_b[:, :k]).rechunk((tuple(blocks.sizes), -1))
    S, Vt = S[:k], Vt[:k]

    # Norms of the positive and negative parts of every u, in one pass.
    u_pos, u_neg = da.maximum(U, 0), da.maximum(-U, 0)
    norms_u_pos, norms_u_neg = da.compute(
        da.sqrt((u_pos**2).sum(axis=0)), da.sqrt((u_neg**2).sum(axis=0))
    )
    spectra = np.zeros((k, m))
    maps_scale = np.zeros(k)  # map j = maps_scale[j] * (u_pos or u_neg)[:, j]
    use_neg = np.zeros(k, dtype=bool)
    maps_scale[0] = np.sqrt(S[0])
    spectra[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, k):
        v = Vt[j]
        v_pos, v_neg = np.maximum(v, 0), np.maximum(-v, 0)
        norms_pos = norms_u_pos[j], np.linalg.norm(v_pos)
        norms_neg = norms_u_neg[j], np.linalg.norm(v_neg)
        if norms_pos[0] * norms_pos[1] >= norms_neg[0] * norms_neg[1]:
            v_part, (nu, nv) = v_pos, norms_pos
        else:
            v_part, (nu, nv), use_neg[j] = v_neg, norms_neg, True
        if nu == 0 or nv == 0:
            continue  # left as zeros, filled below
        scale = np.sqrt(S[j] * nu * nv)
        maps_scale[j] = scale / nu
        spectra[j] = scale * v_part / nv
    mean = blocks.total() / (n * m)
    eps = np.finfo(np.float64).eps
    first = da.abs(U[:, :1])  # the leading pair has one sign throughout
    parts = da.where(use_neg[1:], u_neg[:, 1:], u_pos[:, 1:])
    maps = da.concatenate([first, parts], axis=1) * maps_scale
    maps = da.where(maps < eps, 0.0, maps)
    maps = da.where(maps == 0, mean, maps).rechunk((tuple(blocks.sizes), -1))
    spectra[spectra < eps] = 0
    spectra[spectra == 0] = mean
    return _persisted_blocks(maps), spectra


# -- the estimators --------------------------------------------------------------------------


def _progress(name, verbose):
    if not verbose:
        return None

    def report(iteration, loss):
        if iteration % 10 == 0:
            print(f"{name} (dask) iteration {iteration:4d}  loss {loss:.6e}")
        return True

    return report


def _custom(name, array, shape):
    if array is None:
        raise ValueError(f"init='custom' needs {name} of shape {shape}")
    if tuple(array.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(array.shape)}")
    if not is_dask_array(array):
        array = np.array(array, dtype=np.float64, order="C")
        if not np.all(np.isfinite(array)) or np.any(array < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    return array  # a dask W is checked block by block by the core


def fit_transform(estimator, X, W=None, H=None, *, persist_counts="auto"):
    """``PoissonNMF.fit_transform`` for a dask array X (n_pixels, n_channels).

    Sets the fitted attributes of ``estimator`` and returns the maps as a dask
    array (n_pixels, k) chunked like X's pixels, already computed and held by the
    scheduler (persisted): ``.compute()`` gathers them. Supported inits:
    "nndsvda" (computed over the blocks), "random" and "custom" (W numpy or
    dask, H numpy). Solver: "mu" only (ValueError otherwise).
    """
    from .nmf import _FITTED

    for name in _FITTED:
        estimator.__dict__.pop(name, None)
    n_threads = resolve_threads(estimator.n_threads)
    blocks = _matrix_blocks(X, persist_counts=persist_counts, n_threads=n_threads)
    k = estimator._check_params(blocks.n_pixels, blocks.n_channels)
    if estimator.solver != "mu":
        # The block updates are MU's; running them under another solver's name
        # would give other iterates than the same fit in memory.
        raise ValueError(
            f"solver={estimator.solver!r} is not available for dask arrays (their blocks are "
            "updated by MU); use solver='mu', or compute X"
        )
    if estimator.init == "custom":
        maps = _split_rows(_custom("W", W, (blocks.n_pixels, k)), blocks)
        spectra = _custom("H", np.asarray(H) if H is not None else None, (k, blocks.n_channels))
    elif estimator.init == "random":
        maps, spectra = random_init(blocks, k, rng=estimator.random_state)
    else:
        maps, spectra = nndsvda(blocks, k, rng=estimator.random_state)
    maps, spectra, report = run_updates(
        blocks,
        maps,
        spectra,
        max_iter=estimator.max_iter,
        tol=estimator.tol,
        callback=_progress(type(estimator).__name__, estimator.verbose),
    )
    estimator._warn_if_not_converged(report)
    estimator.n_features_in_ = blocks.n_channels
    estimator.components_ = spectra
    estimator.n_components_ = k
    estimator.n_iter_ = int(report["n_iter"])
    estimator.loss_history_ = np.asarray(report["loss_history"])
    estimator.loss_iterations_ = report["loss_iterations"]
    estimator.reconstruction_err_ = float(report["loss_history"][-1])
    return blocks.as_array(maps, k)


def _block_fixed_spectra_start(counts, spectra):
    from ._init import maps_for_fixed_spectra

    return maps_for_fixed_spectra(counts, spectra)


def transform(estimator, X, *, persist_counts="auto"):
    """``PoissonNMF.transform`` for a dask array: maps (n_pixels, k) as a persisted dask array."""
    dask, _ = _dask()
    n_threads = resolve_threads(estimator.n_threads)
    blocks = _matrix_blocks(X, persist_counts=persist_counts, n_threads=n_threads)
    if blocks.n_channels != estimator.n_features_in_:
        raise ValueError(
            f"X has {blocks.n_channels} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input"
        )
    spectra = np.array(estimator.components_, dtype=np.float64, order="C")
    spectra_task = dask.delayed(spectra)
    maps = [
        dask.delayed(_block_fixed_spectra_start, pure=True)(c, spectra_task) for c in blocks.counts
    ]
    maps, _, _ = run_updates(
        blocks, maps, spectra, max_iter=estimator.max_iter, tol=estimator.tol, update_spectra=False
    )
    return blocks.as_array(maps, spectra.shape[0])


# -- PSNMF -----------------------------------------------------------------------------------


def _bin_block(block, fy, fx):
    from .binning import bin_spatial

    ny, nx = block.shape[0] // fy, block.shape[1] // fx
    if ny == 0 or nx == 0:  # a trailing block thinner than a bin is cropped, as in memory
        return np.zeros((ny, nx, block.shape[2]), dtype=_binned_dtype(block.dtype))
    return bin_spatial(block, (fy, fx), n_threads=1)


def _binned_dtype(dtype):
    from .binning import bin_spatial

    return bin_spatial(np.zeros((1, 1, 1), dtype=dtype), 1).dtype


def _aligned_chunks(chunks, factor, size):
    """Chunks along one axis rounded to whole bins (the last one takes the remainder)."""
    step = max(1, round(max(chunks) / factor)) * factor
    edges = list(range(0, size, step)) + [size]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:]))


def _as_cube(X, image_shape):
    _, da = _dask()
    if X.ndim == 2:
        if image_shape is None:
            raise ValueError("a 2-D (n_pixels, n_channels) X needs image_shape=(ny, nx)")
        ny, nx = (int(v) for v in image_shape)
        if ny * nx != X.shape[0]:
            raise ValueError(
                f"image_shape {image_shape} holds {ny * nx} pixels, X has {X.shape[0]}"
            )
        return X.reshape(ny, nx, X.shape[1])
    if X.ndim != 3:
        raise ValueError(f"cube must be 3-D (ny, nx, n_channels), got shape {X.shape}")
    if image_shape is not None and tuple(image_shape) != tuple(X.shape[:2]):
        raise ValueError(f"image_shape {image_shape} does not match cube {X.shape}")
    return X


def fit_psnmf(estimator, X, image_shape=None, *, persist_counts="auto"):
    """``PSNMF.fit`` for a dask cube (ny, nx, C) chunked along ny and/or nx.

    Binning runs per chunk (chunks rounded to whole bins), stage 1 runs in
    memory on the binned cube (small), stage 2 over the chunks with the spectra
    fixed (a map per chunk plus a sum of the loss, for the in-memory stopping
    rule). ``maps_`` is a dask array (k, ny, nx) already computed on the
    scheduler; ``spectra_`` and ``binned_`` are numpy. With bin factor 1,
    stage 1 runs over the chunks too (its "random" init then draws the maps in
    chunk order, not in the in-memory pixel order).
    """
    from . import _stages
    from .bin_selection import MAX_SELECTION_PIXELS, central_crop
    from .nmf import PoissonNMF
    from .pipeline import BinnedResult, resolve_n_init

    dask, da = _dask()
    cube = _as_cube(X, image_shape)
    _check_dask(cube)
    ny, nx, n_channels = (int(s) for s in cube.shape)
    shape = (ny, nx)
    n_threads = resolve_threads(estimator.n_threads)
    if estimator.refine_iter:
        raise ValueError("PSNMF on a dask array does not support refine_iter > 0")
    rng = check_random_state(estimator.random_state)
    if isinstance(estimator.bin_factor, str) and estimator.bin_factor == "auto":
        # The selection judges a central crop only: gather just that crop.
        ys, xs = central_crop(shape, MAX_SELECTION_PIXELS)
        crop = np.asarray(cube[ys, xs].compute())
        factor, selection = estimator._resolve_factor(
            crop.reshape(-1, n_channels), crop.shape[:2], rng, n_threads
        )
    else:
        factor, selection = estimator._resolve_factor(None, shape, rng, n_threads)
    fy, fx = factor
    cube = cube.rechunk(
        {
            0: _aligned_chunks(cube.chunks[0], fy, ny),
            1: _aligned_chunks(cube.chunks[1], fx, nx),
            2: -1,
        }
    )
    tiles = cube.to_delayed()[:, :, 0]
    y_edges = np.cumsum([0, *cube.chunks[0]])
    x_edges = np.cumsum([0, *cube.chunks[1]])
    spans = [
        (y_edges[i], y_edges[i + 1], x_edges[j], x_edges[j + 1])
        for i in range(len(cube.chunks[0]))
        for j in range(len(cube.chunks[1]))
    ]
    blocks = Blocks(
        list(tiles.ravel()),
        [(y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in spans],
        n_channels,
        persist_counts=persist_counts,
        nbytes=cube.nbytes,
        n_threads=n_threads,
    )

    restart_losses = np.empty(0)
    if factor != (1, 1):
        binned = cube.map_blocks(
            _bin_block,
            fy,
            fx,
            chunks=(
                tuple(c // fy for c in cube.chunks[0]),
                tuple(c // fx for c in cube.chunks[1]),
                (n_channels,),
            ),
            dtype=_binned_dtype(cube.dtype),
        ).compute()
        stage1 = _stages.fit_spectra(
            binned.reshape(-1, n_channels),
            estimator.n_components,
            init=estimator.init,
            n_init=resolve_n_init(estimator.n_init, binned),
            max_iter=estimator.max_iter_binned,
            tol=estimator.tol,
            random_state=rng,
            n_threads=n_threads,
            verbose=estimator.verbose,
        )
        spectra = stage1.spectra.copy()
        maps_binned = stage1.maps.T.reshape(-1, ny // fy, nx // fx)
        maps_binned_task = dask.delayed(maps_binned)
        maps = [
            dask.delayed(_stages.upsample_block, pure=True)(maps_binned_task, factor, *span)
            for span in spans
        ]
        binned_loss, binned_iter = stage1.loss_history, stage1.n_iter
        binned_evaluated = stage1.loss_iterations
        restart_losses = stage1.losses
    else:
        # One run over the chunks (n_init restarts are not repeated at full size).
        k = PoissonNMF(estimator.n_components)._check_params(ny * nx, n_channels)
        init = random_init if estimator.init == "random" else nndsvda
        maps, spectra, report = run_updates(
            blocks,
            # The seed of the in-memory stage 1's first run (see _stages.fit_spectra).
            *init(blocks, k, rng=int(rng.randint(np.iinfo(np.int32).max, size=1)[0])),
            max_iter=estimator.max_iter_binned,
            tol=estimator.tol,
            callback=_progress("PSNMF stage 1", estimator.verbose),
        )
        totals = spectra.sum(axis=1)
        totals[totals == 0] = 1.0
        spectra = np.ascontiguousarray(spectra / totals[:, None])
        maps = [dask.delayed(np.multiply)(m, totals) for m in maps]
        maps_binned = _assemble_maps(maps, spans, cube.chunks, k)
        binned_loss, binned_iter = np.asarray(report["loss_history"]), int(report["n_iter"])
        binned_evaluated = report["loss_iterations"]

    maps, _, report = run_updates(
        blocks,
        maps,
        spectra,
        max_iter=estimator.max_iter,
        tol=estimator.tol,
        update_spectra=False,
        callback=_progress("PSNMF stage 2", estimator.verbose),
    )
    k = spectra.shape[0]
    estimator.bin_factor_ = factor
    estimator.image_shape_ = shape
    estimator.bin_selection_ = selection
    estimator.binned_ = BinnedResult(
        factor, spectra.copy(), maps_binned, binned_loss, restart_losses
    )
    estimator.spectra_ = spectra
    estimator.maps_ = _assemble_maps(maps, spans, cube.chunks, k)
    estimator.loss_history_ = {
        "binned": binned_loss,
        "full": np.asarray(report["loss_history"]),
        "refine": np.empty(0),
    }
    estimator.n_iter_ = {"binned": binned_iter, "full": int(report["n_iter"]), "refine": 0}
    estimator.loss_iterations_ = {
        "binned": binned_evaluated,
        "full": report["loss_iterations"],
        "refine": np.empty(0, int),
    }
    return estimator


def _assemble_maps(maps, spans, chunks, k):
    """Per-tile maps (n_tile_pixels, k) -> dask array (k, ny, nx)."""
    _, da = _dask()
    tiles = [
        da.from_delayed(m, shape=((y1 - y0) * (x1 - x0), k), dtype=np.float64).T.reshape(
            k, y1 - y0, x1 - x0
        )
        for m, (y0, y1, x0, x1) in zip(maps, spans)
    ]
    n_cols = len(chunks[1])
    return da.block([tiles[i : i + n_cols] for i in range(0, len(tiles), n_cols)])
