"""Per-iteration time of psnmf's PoissonNMF against scikit-learn's MU-KL, side by side.

Same data, same custom initialisation, same number of iterations, one process.
Reports medians over repeats, the speed-up ratio and the relative difference of
the final loss. Run: ``python bench/bench_nmf.py [--pixels 65536 --channels 1024 -k 4]``.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from psnmf import PoissonNMF


def low_dose_counts(n_pixels, n_channels, k, mean_per_channel, seed=0):
    rng = np.random.default_rng(seed)
    spectra = rng.gamma(0.3, 1.0, (k, n_channels))
    spectra /= spectra.sum(axis=1, keepdims=True)
    maps = rng.dirichlet(np.full(k, 0.5), n_pixels) * mean_per_channel * n_channels
    return sp.csr_matrix(rng.poisson(maps @ spectra).astype(np.float64))


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pixels", type=int, default=65536)
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--density", type=float, default=0.1, help="mean counts per channel")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    X = low_dose_counts(args.pixels, args.channels, args.k, args.density)
    rng = np.random.default_rng(1)
    W0 = rng.uniform(0.1, 1.0, (args.pixels, args.k))
    H0 = rng.uniform(0.1, 1.0, (args.k, args.channels))
    n = args.iterations
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(f"X: {X.shape}, nnz {X.nnz} ({X.nnz / np.prod(X.shape):.1%}), k={args.k}, {n} iter")

    def ours(n_threads):
        model = PoissonNMF(args.k, init="custom", max_iter=n, tol=0, n_threads=n_threads)
        model.fit(X, W=W0, H=H0)
        return model.reconstruction_err_

    def theirs(data):
        model = NMF(
            args.k, solver="mu", beta_loss="kullback-leibler", init="custom", max_iter=n, tol=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data, W=W0.copy(), H=H0.copy())
        return model.reconstruction_err_**2 / 2  # sklearn reports sqrt(2 D)

    rows = []
    for name, fn, repeats in [
        ("psnmf, 1 thread", lambda: ours(1), args.repeats),
        ("psnmf, 2 threads", lambda: ours(2), args.repeats),
        ("scikit-learn, sparse", lambda: theirs(X), 1),
        ("scikit-learn, dense", lambda: theirs(X.toarray()), 1),
    ]:
        seconds, loss = timed(fn, repeats)
        rows.append((name, seconds / n, loss))
    reference = rows[2]
    print(f"{'solver':<22}{'ms/iter':>10}{'vs sklearn sparse':>20}{'loss rel. diff':>16}")
    for name, per_iter, loss in rows:
        print(
            f"{name:<22}{per_iter * 1e3:>10.2f}{reference[1] / per_iter:>19.1f}x"
            f"{abs(loss - reference[2]) / reference[2]:>16.1e}"
        )


if __name__ == "__main__":
    main()
