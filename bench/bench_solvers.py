"""psnmf's solvers against scikit-learn's MU-KL, side by side in one process.

Same data, same custom initialisation. Reports per-iteration time (median over
repeats; 1 and 2 threads), the loss after the same number of iterations, and
the wall time each psnmf solver needs to reach scikit-learn's loss after
``--target-iterations`` MU iterations, and its speed-up over psnmf's mu. Run:
``python bench/bench_solvers.py [--pixels 65536 --channels 1024 -k 4 --density 0.1]``
(``--skip-per-iteration --psnmf-target`` for the time to target alone).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from workloads import low_rank_counts

from psnmf import _core
from psnmf._counts import to_counts
from psnmf.nmf import _SOLVERS


def sklearn_loss(X, W0, H0, k, n):
    model = NMF(k, solver="mu", beta_loss="kullback-leibler", init="custom", max_iter=n, tol=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, W=W0.copy(), H=H0.copy())
    return time.perf_counter() - start, model.reconstruction_err_**2 / 2  # sqrt(2 D) -> D


def core_fit(counts, W0, H0, n, solver, n_threads, loss_every=10, callback=None):
    W, H = W0.copy(), H0.copy()
    start = time.perf_counter()
    report = _core.fit_poisson_nmf(
        counts.core,
        H0.shape[1],
        W,
        H,
        max_iter=n,
        tol=0,
        n_threads=n_threads,
        loss_every=loss_every,
        solver=solver,
        callback=callback,
    )
    return time.perf_counter() - start, report


def median_time(repeats, fn, *args):
    results = [fn(*args) for _ in range(repeats)]
    return float(np.median([t for t, _ in results])), results[-1][1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pixels", type=int, default=65536)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--density", type=float, default=0.1, help="mean counts per channel")
    parser.add_argument("--seed", type=int, default=0, help="of the counts (bench/workloads.py)")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--target-iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-per-iteration", action="store_true", help="time to target only")
    parser.add_argument(
        "--psnmf-target", action="store_true", help="target from psnmf mu (identical iterates)"
    )
    args = parser.parse_args()

    X = low_rank_counts(args.pixels, args.channels, args.k, args.density, seed=args.seed)
    rng = np.random.default_rng(1)
    W0 = rng.uniform(0.1, 1.0, (args.pixels, args.k))
    H0 = rng.uniform(0.1, 1.0, (args.k, args.channels))
    counts = to_counts(X)
    n, k = args.iterations, args.k
    print(f"X: {X.shape}, nnz {X.nnz} ({X.nnz / np.prod(X.shape):.1%}), k={k}, seed {args.seed}")

    if not args.skip_per_iteration:
        sk_time, sk_loss = sklearn_loss(X, W0, H0, k, n)
        print(f"\nper iteration, {n} iterations (median of {args.repeats}; sklearn once)")
        print(f"{'':28s} {'ms/iter':>9s} {'vs sklearn':>11s} {'loss':>20s} {'rel. diff':>10s}")
        sk_name = "scikit-learn MU, sparse"
        print(f"{sk_name:28s} {1e3 * sk_time / n:9.2f} {1.0:10.1f}x {sk_loss:20.10e}")
        for solver in _SOLVERS:
            for threads in (1, 2):
                t, report = median_time(args.repeats, core_fit, counts, W0, H0, n, solver, threads)
                loss = report["loss_history"][-1]
                diff = f"{abs(loss - sk_loss) / sk_loss:10.1e}" if solver == "mu" else ""
                print(
                    f"{f'psnmf {solver}, {threads} thread(s)':28s} {1e3 * t / n:9.2f} "
                    f"{sk_time / t:10.1f}x {loss:20.10e} {diff}"
                )

    if args.psnmf_target:
        # psnmf's mu iterates are scikit-learn's (tests/test_nmf.py): same target, minutes sooner.
        _, report = core_fit(counts, W0, H0, args.target_iterations, "mu", 2)
        target = float(report["loss_history"][-1])
    else:
        _, target = sklearn_loss(X, W0, H0, k, args.target_iterations)
    print(
        f"\ntime to scikit-learn's loss after {args.target_iterations} iterations "
        f"({target:.10e}), 2 threads"
    )
    times = {}
    for solver in _SOLVERS:
        # First iteration at or below the target, then the median time of a fit that long.
        _, probe = core_fit(
            counts,
            W0,
            H0,
            5 * args.target_iterations,
            solver,
            2,
            loss_every=1,
            callback=lambda iteration, loss: loss > target,  # stop once reached
        )
        reached = np.flatnonzero(probe["loss_history"] <= target * (1 + 1e-12))
        if reached.size == 0:
            print(f"psnmf {solver}: target not reached in {5 * args.target_iterations} iterations")
            continue
        n_it = int(probe["loss_iterations"][reached[0]])
        t, _ = median_time(args.repeats, core_fit, counts, W0, H0, n_it, solver, 2)
        times[solver] = t
        print(f"psnmf {solver}: {n_it:4d} iterations, {t:.3f} s")
    for solver in times:
        if solver != "mu" and "mu" in times:
            print(f"{solver} vs mu time to target: {times['mu'] / times[solver]:.2f}x")


if __name__ == "__main__":
    main()
