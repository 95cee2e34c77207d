"""Property-based tests (hypothesis) over random shapes, dtypes, sparsity and values: no
crash, and either a documented exception or results that satisfy the invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from psnmf import PoissonNMF, bin_spatial, quantify

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = [
    np.bool_, np.uint8, np.uint16, np.uint32, np.uint64,
    np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64,
]  # fmt: skip


@st.composite
def counts_arrays(draw, shape):
    """Non-negative counts of a random dtype: mostly zeros, some large values."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    top = 1 if dtype == np.bool_ else draw(st.sampled_from([3, 200, 60000]))
    if dtype.kind in "iu":
        top = min(top, int(np.iinfo(dtype).max))
    elif dtype == np.float16:
        top = min(top, 60000)
    values = rng.integers(0, top, size=shape, endpoint=True).astype(np.float64)
    if dtype.kind == "f" and draw(st.booleans()):
        values = values * rng.random(shape)  # non-integer counts (e.g. gain-corrected)
    values[rng.random(shape) >= density] = 0
    return values.astype(dtype)


@FAST
@given(data=st.data())
def test_binning_preserves_counts(data):
    ny, nx, n_channels = (data.draw(st.integers(1, n)) for n in (7, 7, 5))
    cube = data.draw(counts_arrays((ny, nx, n_channels)))
    fy, fx = data.draw(st.integers(1, ny)), data.draw(st.integers(1, nx))
    layout = data.draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        cube = np.asfortranarray(cube)
    elif layout == "strided":
        wide = np.zeros((ny, nx, 2 * n_channels), dtype=cube.dtype)
        wide[..., ::2] = cube
        cube = wide[..., ::2]
    binned = bin_spatial(cube, (fy, fx), n_threads=data.draw(st.integers(1, 3)))
    nyb, nxb = ny // fy, nx // fx
    assert binned.shape == (nyb, nxb, n_channels)
    kept = cube[: nyb * fy, : nxb * fx].astype(np.float64)
    expected = kept.reshape(nyb, fy, nxb, fx, n_channels).sum(axis=(1, 3))
    if cube.dtype.kind in "biu":
        assert binned.dtype.kind in "iu" and binned.dtype.itemsize == 8
        assert np.array_equal(binned.astype(np.float64), expected)  # exact: sums < 2**53
        assert int(binned.sum()) == int(kept.sum())
    else:
        assert np.all(np.isfinite(binned)) and np.all(binned >= 0)
        np.testing.assert_allclose(binned, expected, rtol=2e-7 * fy * fx, atol=0)


@FAST
@given(data=st.data())
def test_nmf_invariants(data):
    n_pixels, n_channels = data.draw(st.integers(1, 14)), data.draw(st.integers(1, 10))
    X = data.draw(counts_arrays((n_pixels, n_channels)))
    k = data.draw(st.integers(1, min(n_pixels, n_channels)))
    init = data.draw(st.sampled_from(["nndsvda", "random"]))
    model = PoissonNMF(
        k, init=init, max_iter=data.draw(st.integers(1, 30)), tol=0, random_state=0,
        n_threads=data.draw(st.integers(1, 2)),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        maps = model.fit_transform(X)
    spectra = model.components_
    assert maps.shape == (n_pixels, k) and spectra.shape == (k, n_channels)
    for factor in (maps, spectra):
        assert np.all(np.isfinite(factor)) and np.all(factor >= 0)
    losses = model.loss_history_
    assert np.all(np.isfinite(losses)) and np.all(losses >= -1e-9 * max(1.0, float(X.sum())))
    # Multiplicative updates never increase the loss (up to rounding of the sums).
    slack = 1e-10 * np.abs(losses[:-1]) + 1e-9
    assert np.all(np.diff(losses) <= slack), losses
    reconstruction = model.inverse_transform(maps)
    assert np.all(np.isfinite(reconstruction)) and np.all(reconstruction >= 0)
    transformed = model.transform(X)
    assert np.all(np.isfinite(transformed)) and np.all(transformed >= 0)


ENERGY = np.linspace(0.2, 12.0, 160)
LINES = ["Fe_Ka", "Ni_Ka", "O_Ka"]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_quantify_finite_or_documented(data):
    n = data.draw(st.integers(1, 4))
    spectra = data.draw(counts_arrays((n, ENERGY.size))).astype(np.float64)
    if data.draw(st.booleans()):
        spectra[0] = 0.0  # an empty spectrum in the batch
    method = data.draw(st.sampled_from(["windows", "fit"]))
    kwargs = {"efficiency": None} if method == "fit" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = quantify(spectra, ENERGY, LINES, [1.0, 1.1, 2.0], method=method, **kwargs)
    at = result.atomic_percent
    assert at.shape == (n, len(LINES))
    signal = np.clip(result.intensities, 0, None).sum(axis=1) > 0
    # A spectrum with some positive line intensity has a finite composition summing to 100;
    # one without any is documented to give NaN (cliff_lorimer: composition undefined).
    assert np.all(np.isfinite(at[signal])) and np.all(at[signal] >= 0)
    np.testing.assert_allclose(at[signal].sum(axis=1), 100.0, rtol=1e-9)
    assert np.all(np.isnan(at[~signal]))
    assert np.all(np.isfinite(result.atomic_percent_std[signal]))


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_quantify_rejects_bad_values(bad):
    spectra = np.ones((2, ENERGY.size))
    spectra[1, 10] = bad
    with pytest.raises(ValueError, match="spectra contains"):
        quantify(spectra, ENERGY, LINES, [1.0, 1.1, 2.0], method="windows")
