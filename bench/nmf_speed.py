"""PoissonNMF against scikit-learn's MU-KL: per-iteration time, loss, time to a target.

Per-iteration times are the slope of wall time against the iteration count
(fits of two lengths, or chained scikit-learn fits of several lengths), so the
fixed cost of a fit (validation, conversion, final loss) is reported apart.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from psnmf import PoissonNMF
from psnmf._counts import to_counts
from psnmf.nmf import _SOLVERS, run_updates


def _slope(lengths, seconds):
    """(per-iteration, fixed) seconds: least squares of seconds = fixed + n * per_iter."""
    per_iter, fixed = np.polyfit(np.asarray(lengths, float), np.asarray(seconds, float), 1)
    return float(per_iter), float(fixed)


def sklearn_chain(X, W0, H0, chunks):
    """Chained scikit-learn fits from (W0, H0): identical iterates to one long fit
    (MU-KL keeps no state besides W and H). Returns per-chunk (n, seconds, loss)."""
    W, H = W0.copy(), H0.copy()
    out = []
    for n in chunks:
        model = NMF(
            W.shape[1], solver="mu", beta_loss="kullback-leibler", init="custom", max_iter=n, tol=0
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            W = model.fit_transform(X, W=W, H=H)
        seconds = time.perf_counter() - start
        H = model.components_
        out.append((n, seconds, model.reconstruction_err_**2 / 2))  # sklearn: sqrt(2 D)
    return out


def psnmf_fit(X, W0, H0, n_iter, n_threads, solver="mu"):
    model = PoissonNMF(
        W0.shape[1], init="custom", solver=solver, max_iter=n_iter, tol=0, n_threads=n_threads
    )
    start = time.perf_counter()
    model.fit(X, W=W0, H=H0)
    return time.perf_counter() - start, model


def psnmf_per_iteration(X, W0, H0, n_threads, lengths=(10, 60), repeats=3, solver="mu"):
    """Median over repeats of the slope; loss after lengths[-1]... and after 50."""
    lengths_all, seconds_all = [], []
    model = None
    for _ in range(repeats):
        for n in lengths:
            seconds, fitted = psnmf_fit(X, W0, H0, n, n_threads, solver)
            lengths_all.append(n)
            seconds_all.append(seconds)
            model = fitted if n == max(lengths) else model
    slopes = []
    for r in range(repeats):
        sl = slice(r * len(lengths), (r + 1) * len(lengths))
        slopes.append(_slope(lengths_all[sl], seconds_all[sl]))
    per_iter = float(np.median([s[0] for s in slopes]))
    fixed = float(np.median([s[1] for s in slopes]))
    return per_iter, fixed, model


def time_to_target(X, W0, H0, target, n_threads, solver, max_iter, repeats=3):
    """Wall time of the shortest fit whose loss reaches the target, or None.

    The shortest length comes from a probe whose loss is evaluated after every
    iteration (the estimator evaluates it every 10: a probe through it would
    round the length up to a multiple of 10); the timed fits are the estimator's.
    """
    counts = to_counts(X)
    W, H = W0.copy(), H0.copy()
    report = run_updates(
        counts, W, H, max_iter=max_iter, tol=0, n_threads=n_threads, loss_every=1, solver=solver
    )
    history = np.asarray(report["loss_history"])
    reached = np.flatnonzero(history <= target)
    if reached.size == 0:
        return None, None, float(history[-1])
    n_iter = max(int(report["loss_iterations"][reached[0]]), 1)
    times = [psnmf_fit(X, W0, H0, n_iter, n_threads, solver)[0] for _ in range(repeats)]
    return float(np.median(times)), n_iter, float(history[reached[0]])


def other_ranks(make_counts, ranks, log, target_iterations=200, quick=False):
    """For each k in ranks, on counts of a rank-k model from make_counts(k)
    (float64 CSR): MU's time per iteration against scikit-learn's sparse MU-KL
    (psnmf on 2 threads; scikit-learn from chained fits of 5 and 15 iterations),
    and the time to the target loss of solvers "newton" and "mu" (2 threads).
    The target is psnmf's own MU loss after target_iterations, whose iterates
    are scikit-learn's (tests/test_nmf.py): no long scikit-learn fit is needed.
    Returns {k: {"sk_lengths": (n, n), "sk_per_iter": s, "mu_per_iter": s,
    "mu": time_to_target(...), "newton": time_to_target(...)}}."""
    out = {}
    for k in ranks:
        log(f"k = {k}: MU per iteration against scikit-learn; newton against mu")
        X = make_counts(k)
        rng = np.random.default_rng(1)
        W0 = rng.uniform(0.1, 1.0, (X.shape[0], k))
        H0 = rng.uniform(0.1, 1.0, (k, X.shape[1]))
        # Each chunk is a fit of its own: the slope of its seconds against its length.
        lengths = (2, 4) if quick else (5, 15)
        chain = sklearn_chain(X, W0, H0, lengths)
        sk_per_iter = _slope([c[0] for c in chain], [c[1] for c in chain])[0]
        mu_per_iter = psnmf_per_iteration(X, W0, H0, 2, lengths=(10, 50))[0]
        report = run_updates(
            to_counts(X),
            W0.copy(),
            H0.copy(),
            max_iter=target_iterations,
            tol=0,
            n_threads=2,
            loss_every=target_iterations,
            solver="mu",
        )
        target = float(report["loss_history"][-1])
        out[k] = {"sk_lengths": lengths, "sk_per_iter": sk_per_iter, "mu_per_iter": mu_per_iter}
        for solver in ("mu", "newton"):
            out[k][solver] = time_to_target(
                X, W0, H0, target, 2, solver, max_iter=400, repeats=1 if quick else 3
            )
    return out


def kernel_model(counts, nnz, n_pixels, n_channels, k):
    """Flops and bytes of one sparse MU iteration (both half-updates in one
    fused pass over the counts), the model documented in RESULTS.md."""
    arrays = [getattr(counts, f.name) for f in dataclasses.fields(counts)]
    csr_bytes = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    flops = nnz * (8 * k + 2) + 3 * k * (n_pixels + n_channels)
    bytes_moved = csr_bytes + 16 * n_pixels * k
    return {"nnz": nnz, "csr_bytes": csr_bytes, "flops": flops, "bytes": bytes_moved}


def run(X, k, quick, log, target_iterations=200):
    """All NMF measurements on X (float64 CSR). Returns a dict of results."""
    n_pixels, n_channels = X.shape
    rng = np.random.default_rng(1)
    W0 = rng.uniform(0.1, 1.0, (n_pixels, k))
    H0 = rng.uniform(0.1, 1.0, (k, n_channels))
    dense = X.toarray()
    res = {"shape": X.shape, "nnz": X.nnz, "k": k, "solvers": list(_SOLVERS)}

    log(f"scikit-learn sparse: chained fits to {target_iterations} iterations")
    extra = target_iterations - 50
    chain = sklearn_chain(
        X, W0, H0, [10, 40] + [50] * (extra // 50) + [extra % 50] * (extra % 50 > 0)
    )
    res["sk_sparse_per_iter"], res["sk_sparse_fixed"] = _slope(
        [c[0] for c in chain], [c[1] for c in chain]
    )
    res["sk_loss50"] = chain[1][2]
    res["target"] = chain[-1][2]
    log("scikit-learn dense: chained fits to 50 iterations")
    chain = sklearn_chain(dense, W0, H0, [10, 40])
    res["sk_dense_per_iter"], res["sk_dense_fixed"] = _slope(
        [c[0] for c in chain], [c[1] for c in chain]
    )
    res["sk_dense_loss50"] = chain[1][2]

    for threads in (1, 2):
        log(f"psnmf sparse, {threads} thread(s)")
        per_iter, fixed, model = psnmf_per_iteration(X, W0, H0, threads, lengths=(10, 50))
        res[f"ps_sparse_{threads}"] = (per_iter, fixed, model.reconstruction_err_)
    log("psnmf dense input, 2 threads")
    per_iter, fixed, model = psnmf_per_iteration(dense, W0, H0, 2, lengths=(10, 50))
    res["ps_dense_2"] = (per_iter, fixed, model.reconstruction_err_)
    del dense

    res["to_target"] = {}
    for solver in _SOLVERS:
        log(f"time to target, solver {solver!r}")
        res["to_target"][solver] = time_to_target(
            X, W0, H0, res["target"], 2, solver, max_iter=400, repeats=1 if quick else 3
        )
    res["model"] = kernel_model(to_counts(X), X.nnz, n_pixels, n_channels, k)
    return res
