"""Threads: n_threads on every compute call, the default honours OMP_NUM_THREADS and
threadpoolctl, and results are bitwise identical for a fixed (and any) thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from psnmf import PSNMF, PoissonNMF, _core, bin_spatial

threadpoolctl = pytest.importorskip("threadpoolctl")

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.skipif(not _core.openmp, reason="serial build"),
]

RNG = np.random.default_rng(7)
CUBE = RNG.poisson(0.8, (16, 12, 48)).astype(np.uint16)
X = CUBE.reshape(-1, 48)


def _loaded_libgomp() -> set[str]:
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libgomp" in line and "/" in line}
    return {os.path.realpath(p) for p in paths}


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_threadpoolctl_sees_the_openmp_runtime_of_the_core():
    ours = _loaded_libgomp()
    assert ours, "the core is built with OpenMP but no libgomp is mapped"
    seen = {
        os.path.realpath(info["filepath"])
        for info in threadpoolctl.threadpool_info()
        if info["internal_api"] == "openmp"
    }
    assert ours <= seen, (ours, seen)


def test_threadpool_limits_make_the_default_single_threaded():
    assert _core.max_threads() >= 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _core.max_threads() == 1
        limited = PoissonNMF(3, random_state=0, max_iter=20).fit_transform(X)
    with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
        assert _core.max_threads() == 2
    explicit = PoissonNMF(3, random_state=0, max_iter=20, n_threads=1).fit_transform(X)
    assert np.array_equal(limited, explicit)


@pytest.mark.parametrize("omp", ["1", "3"])
def test_default_honours_omp_num_threads(omp):
    env = dict(os.environ, OMP_NUM_THREADS=omp)
    out = subprocess.run(
        [sys.executable, "-c", "from psnmf import _core; print(_core.max_threads())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == omp


def test_poisson_nmf_bitwise_reproducible_for_any_thread_count():
    runs = {}
    for n_threads in (1, 2, 3, 1, 2):
        model = PoissonNMF(4, random_state=0, max_iter=40, tol=0, n_threads=n_threads)
        maps = model.fit_transform(X)
        runs.setdefault(n_threads, []).append((maps, model.components_, model.loss_history_))
    reference = runs[1][0]
    for n_threads, results in runs.items():
        for maps, spectra, losses in results:
            assert np.array_equal(maps, reference[0]), n_threads
            assert np.array_equal(spectra, reference[1]), n_threads
            assert np.array_equal(losses, reference[2]), n_threads


def test_psnmf_and_binning_bitwise_reproducible_for_any_thread_count():
    def run(n_threads):
        model = PSNMF(
            3, bin_factor=2, max_iter=15, max_iter_binned=15, random_state=0, n_threads=n_threads
        ).fit(CUBE)
        return (
            model.maps_,
            model.spectra_,
            bin_spatial(CUBE.astype(np.float32), 3, n_threads=n_threads),
        )

    reference = run(1)
    for n_threads in (2, 3, 2):
        for got, want in zip(run(n_threads), reference):
            assert np.array_equal(got, want), n_threads


def test_numpy_based_steps_run_under_the_requested_blas_limit():
    from psnmf._blas_threads import limits_blas_threads

    @limits_blas_threads
    def blas_threads():
        return {
            lib["num_threads"]
            for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"
        }

    if not blas_threads():
        pytest.skip("no BLAS library visible to threadpoolctl")
    assert blas_threads(n_threads=1) == {1}
    with pytest.raises(ValueError, match="n_threads"):
        blas_threads(n_threads=0)


def test_denoise_pca_and_quantify_take_n_threads():
    from psnmf import denoise_pca, quantify, simulate

    np.testing.assert_array_equal(denoise_pca(CUBE, 2, n_threads=1), denoise_pca(CUBE, 2))
    data = simulate.particles_in_matrix((16, 16), dose=50.0, seed=1)
    args = (data.spectra, data.energy, list(data.lines), data.k_factors)
    limited = quantify(*args, beam_energy=data.beam_energy, efficiency=None, n_threads=1)
    default = quantify(*args, beam_energy=data.beam_energy, efficiency=None)
    np.testing.assert_allclose(limited.atomic_percent, default.atomic_percent, rtol=1e-12)
    with pytest.raises(TypeError, match="n_threads"):
        denoise_pca(CUBE, 2, n_threads=1.5)
