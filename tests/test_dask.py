"""PoissonNMF and PSNMF on dask arrays give the in-memory results, on dask.distributed
(2 spawned worker processes) and on the threaded scheduler; a zarr cube is re-read
chunk by chunk when its counts are not persisted."""

import multiprocessing

import numpy as np
import pytest

import psnmf
from psnmf import _dask

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

RTOL = 1e-8
# Short fits on purpose: the in-memory fits warn alike.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
K = 3


def relative_error(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    return np.abs(actual - expected).max() / np.abs(expected).max()


def make_counts(n_pixels, n_channels, mean, seed):
    rng = np.random.default_rng(seed)
    maps = rng.gamma(1.0, 2.0, (n_pixels, K))
    spectra = rng.dirichlet(np.full(n_channels, 0.5), K)
    return rng.poisson(maps @ spectra * mean).astype(np.uint16)


@pytest.fixture(scope="module")
def client():
    # libgomp is not fork-safe: the workers must be spawned, which is distributed's default.
    assert dask.config.get("distributed.worker.multiprocessing-method") == "spawn"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def counts():
    return make_counts(500, 48, 2.0, seed=0)


def custom_start(shape, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 1.0, (shape[0], K)), rng.uniform(0.1, 1.0, (K, shape[1]))


def assert_same_fit(dask_model, dask_maps, memory_model, memory_maps):
    assert dask_model.n_iter_ == memory_model.n_iter_
    assert relative_error(dask_model.components_, memory_model.components_) < RTOL
    assert relative_error(dask_maps, memory_maps) < RTOL
    assert relative_error(dask_model.loss_history_, memory_model.loss_history_) < RTOL
    assert dask_model.reconstruction_err_ == pytest.approx(memory_model.reconstruction_err_, RTOL)
    assert dask_model.n_features_in_ == memory_model.n_features_in_


def test_workers_are_separate_spawned_processes(client):
    import os

    info = client.run(lambda: (os.getpid(), multiprocessing.current_process().name))
    assert len(info) == 2
    pids = {pid for pid, _ in info.values()}
    assert len(pids) == 2 and os.getpid() not in pids


def test_poisson_nmf_on_cluster_equals_in_memory(client, counts):
    W, H = custom_start(counts.shape)
    kwargs = dict(init="custom", max_iter=25, tol=1e-6)
    memory = psnmf.PoissonNMF(K, **kwargs)
    memory_maps = memory.fit_transform(counts, W=W, H=H)
    model = psnmf.PoissonNMF(K, **kwargs)
    maps = model.fit_transform(da.from_array(counts, chunks=(150, 48)), W=W, H=H)
    assert isinstance(maps, da.Array) and maps.chunks[0] == (150, 150, 150, 50)
    # The maps stay on the workers, spread over both.
    assert sum(len(keys) > 0 for keys in client.has_what().values()) == 2
    assert_same_fit(model, maps.compute(), memory, memory_maps)


def test_nndsvda_on_cluster_equals_in_memory(client, counts):
    kwargs = dict(max_iter=20, tol=0, random_state=3)
    memory = psnmf.PoissonNMF(K, **kwargs)
    memory_maps = memory.fit_transform(counts)
    model = psnmf.PoissonNMF(K, **kwargs)
    maps = model.fit_transform(da.from_array(counts, chunks=(200, 20)))  # channels rechunked
    assert_same_fit(model, maps.compute(), memory, memory_maps)


def test_threaded_scheduler_random_init_and_tol(counts):
    kwargs = dict(init="random", max_iter=300, tol=1e-4, random_state=5)
    memory = psnmf.PoissonNMF(K, **kwargs)
    memory_maps = memory.fit_transform(counts)
    assert memory.n_iter_ < 300  # the stopping rule, not max_iter, ends both fits
    model = psnmf.PoissonNMF(K, **kwargs)
    with dask.config.set(scheduler="threads"):
        maps = model.fit_transform(da.from_array(counts, chunks=(128, 48))).compute()
        transformed = model.transform(da.from_array(counts, chunks=(100, 48))).compute()
    assert_same_fit(model, maps, memory, memory_maps)
    assert relative_error(transformed, memory.transform(counts)) < RTOL


def test_psnmf_on_cluster_equals_in_memory(client):
    ny, nx = 26, 22
    cube = make_counts(ny * nx, 40, 0.6, seed=2).reshape(ny, nx, 40)
    kwargs = dict(bin_factor=(2, 3), max_iter_binned=60, max_iter=20, random_state=0)
    memory = psnmf.PSNMF(K, **kwargs).fit(cube)
    # Chunks not aligned to the bins: rechunked to whole bins before binning.
    model = psnmf.PSNMF(K, **kwargs).fit(da.from_array(cube, chunks=(13, 10, 40)))
    assert isinstance(model.maps_, da.Array)
    assert model.bin_factor_ == memory.bin_factor_ == (2, 3)
    assert model.n_iter_ == memory.n_iter_
    assert relative_error(model.spectra_, memory.spectra_) < RTOL
    assert relative_error(model.binned_.maps, memory.binned_.maps) < RTOL
    assert relative_error(model.maps_.compute(), memory.maps_) < RTOL
    for stage in ("binned", "full"):
        assert relative_error(model.loss_history_[stage], memory.loss_history_[stage]) < RTOL


@pytest.mark.parametrize("bin_factor", ["auto", 1])
def test_psnmf_unfolded_dask_matrix_equals_in_memory(bin_factor):
    ny, nx = 18, 20
    pixels = make_counts(ny * nx, 32, 1.5, seed=4)
    kwargs = dict(bin_factor=bin_factor, max_iter_binned=40, max_iter=30, random_state=1)
    memory = psnmf.PSNMF(K, **kwargs).fit(pixels, image_shape=(ny, nx))
    with dask.config.set(scheduler="threads"):
        model = psnmf.PSNMF(K, **kwargs).fit(
            da.from_array(pixels, chunks=(100, 32)), image_shape=(ny, nx)
        )
        maps = model.maps_.compute()
    assert model.bin_factor_ == memory.bin_factor_
    assert model.n_iter_ == memory.n_iter_
    assert relative_error(model.spectra_, memory.spectra_) < RTOL
    assert relative_error(maps, memory.maps_) < RTOL


def test_zarr_cube_is_reread_chunk_by_chunk(tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    ny, nx, n_channels = 24, 16, 32
    cube = make_counts(ny * nx, n_channels, 0.8, seed=6).reshape(ny, nx, n_channels)
    store = zarr.open_array(
        str(tmp_path / "cube.zarr"),
        mode="w",
        shape=cube.shape,
        chunks=(8, 8, n_channels),
        dtype=cube.dtype,
    )
    store[:] = cube
    reads = []

    def counting_read(block):
        reads.append(block.shape)
        return block

    lazy = da.from_zarr(str(tmp_path / "cube.zarr")).map_blocks(
        counting_read, meta=np.empty((0, 0, 0), dtype=cube.dtype)
    )
    monkeypatch.setattr(_dask, "PERSIST_LIMIT_BYTES", 0)  # as if larger than memory
    kwargs = dict(bin_factor=2, max_iter_binned=30, max_iter=12, tol=0, random_state=0)
    with dask.config.set(scheduler="threads"):
        model = psnmf.PSNMF(K, **kwargs).fit(lazy)
    memory = psnmf.PSNMF(K, **kwargs).fit(cube)
    # Every task read one zarr chunk; stage 2 read all 6 chunks again in each iteration.
    assert set(reads) == {(8, 8, n_channels)}
    assert len(reads) >= 6 * model.n_iter_["full"]
    assert relative_error(model.spectra_, memory.spectra_) < RTOL
    with dask.config.set(scheduler="threads"):
        assert relative_error(model.maps_.compute(), memory.maps_) < RTOL


def test_bad_dask_input_raises():
    with dask.config.set(scheduler="sync"):
        negative = da.from_array(-np.ones((20, 6)), chunks=(10, 6))
        with pytest.raises(ValueError, match="negative"):
            psnmf.PoissonNMF(2, init="random", max_iter=2).fit(negative)
        with pytest.raises(ValueError, match="2-D"):
            psnmf.PoissonNMF(2).fit(da.ones((4, 5, 6), chunks=2))
        unknown = da.ones((20, 6), chunks=(10, 6))
        unknown = unknown[unknown[:, 0] > 0]
        with pytest.raises(ValueError, match="unknown chunk sizes"):
            psnmf.PoissonNMF(2).fit(unknown)
        with pytest.raises(ValueError, match="n_components"):
            psnmf.PoissonNMF(7).fit(da.ones((20, 6), chunks=(10, 6)))
        with pytest.raises(ValueError, match="W must have shape"):
            psnmf.PoissonNMF(2, init="custom").fit(
                da.ones((20, 6), chunks=(10, 6)), W=np.ones((3, 2)), H=np.ones((2, 6))
            )
        with pytest.raises(ValueError, match="image_shape"):
            psnmf.PSNMF(2).fit(da.ones((20, 6), chunks=(10, 6)))
        for solver in ("cd", "newton"):
            with pytest.raises(ValueError, match=f"solver='{solver}' is not available for dask"):
                psnmf.PoissonNMF(2, solver=solver).fit(da.ones((20, 6), chunks=(10, 6)))


def test_lazy_hspy_cube_equals_in_memory(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    ny, nx, n_channels = 16, 20, 32
    cube = make_counts(ny * nx, n_channels, 1.0, seed=7).reshape(ny, nx, n_channels)
    hs.signals.Signal1D(cube).save(tmp_path / "cube.hspy", chunks=(8, 10, n_channels))
    lazy = hs.load(tmp_path / "cube.hspy", lazy=True)
    assert lazy.data.chunks == ((8, 8), (10, 10), (n_channels,))  # HDF5 chunks, not read yet
    kwargs = dict(bin_factor=2, max_iter_binned=30, max_iter=15, random_state=0)
    memory = psnmf.PSNMF(K, **kwargs).fit(cube)
    with dask.config.set(scheduler="threads"):
        model = psnmf.PSNMF(K, **kwargs).fit(lazy.data)
        maps = model.maps_.compute()
    assert model.n_iter_ == memory.n_iter_
    assert relative_error(model.spectra_, memory.spectra_) < RTOL
    assert relative_error(maps, memory.maps_) < RTOL


def test_block_kernels_match_the_numpy_reference(counts):
    from psnmf import _core
    from psnmf._counts import to_counts

    from reference import generalized_kl, mu_kl

    W, H = custom_start(counts.shape, seed=9)
    expected_W, expected_H = mu_kl(counts, W, H, n_iter=1)
    maps, spectra = W.copy(), H.copy()
    numerator, colsum, loss = np.zeros_like(H), np.zeros(K), 0.0
    for rows in (slice(0, 123), slice(123, 124), slice(124, None)):  # uneven blocks
        block = to_counts(counts[rows])
        block_maps = np.ascontiguousarray(maps[rows])
        out = _core.update_block(block.core, block.shape[1], block_maps, spectra)
        maps[rows] = block_maps
        numerator += out["spectra_numerator"]
        colsum += out["maps_colsum"]
        loss += out["loss"]
    _core.apply_spectra_update(spectra, numerator, colsum)
    assert relative_error(maps, expected_W) < 1e-12
    assert relative_error(spectra, expected_H) < 1e-12
    assert loss == pytest.approx(generalized_kl(counts, W, H), rel=1e-12)
    with pytest.raises(ValueError, match="maps must be"):
        _core.update_block(to_counts(counts).core, counts.shape[1], np.ones((3, K)), spectra)
    with pytest.raises(ValueError, match="non-negative"):
        _core.update_block(to_counts(counts).core, counts.shape[1], -np.ones((500, K)), spectra)
