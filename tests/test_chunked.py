"""The block pass of the chunked (dask) fit, ``_core.update_block``, against the plain-numpy
reference: maps, spectra numerators, maps column sums and loss, for ranks on every row-kernel
path (zero-padded 3 and 5, vectorised 4, 8 and 12, any-k 17), on CSR and dense counts."""

import numpy as np
import pytest

from psnmf import _core
from psnmf._counts import to_counts

from reference import mu_kl_block

RTOL = 1e-12


def relative_error(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    return np.abs(actual - expected).max() / np.abs(expected).max()


def make_problem(k, layout, seed=0, n_pixels=157, n_channels=41):
    """Poisson counts (sparse uint16 -> CSR, or dense float64 -> dense) and a random start."""
    rng = np.random.default_rng(seed)
    mean = 0.3 if layout == "csr" else 6.0
    truth = rng.gamma(1.0, 1.0, (n_pixels, k)) @ rng.dirichlet(np.ones(n_channels), k)
    counts = rng.poisson(truth * mean * n_channels / k)
    counts = counts.astype(np.uint16 if layout == "csr" else np.float64)
    maps = rng.uniform(0.1, 1.0, (n_pixels, k))
    spectra = rng.uniform(0.1, 1.0, (k, n_channels))
    return counts, maps, spectra


@pytest.mark.parametrize("layout", ["csr", "dense"])
@pytest.mark.parametrize("k", [3, 4, 5, 8, 12, 17])
def test_block_pass_matches_the_numpy_reference(k, layout):
    counts, W, H = make_problem(k, layout, seed=k)
    block = to_counts(counts)
    assert (block.dense is None) == (layout == "csr")
    expected_maps, expected_numerator, expected_colsum, expected_loss = mu_kl_block(counts, W, H)
    maps = W.copy()
    out = _core.update_block(block.core, block.shape[1], maps, H, n_threads=2)
    assert relative_error(maps, expected_maps) < RTOL
    assert relative_error(out["spectra_numerator"], expected_numerator) < RTOL
    assert relative_error(out["maps_colsum"], expected_colsum) < RTOL
    assert out["loss"] == pytest.approx(expected_loss, rel=RTOL)


@pytest.mark.parametrize("k", [3, 4, 17])
def test_skipped_pieces_are_none_and_the_rest_is_unchanged(k):
    counts, W, H = make_problem(k, "csr", seed=20 + k)
    block = to_counts(counts)
    full_maps, maps, spectra_fixed_maps = W.copy(), W.copy(), W.copy()
    full = _core.update_block(block.core, block.shape[1], full_maps, H)
    no_loss = _core.update_block(block.core, block.shape[1], maps, H, with_loss=False)
    fixed = _core.update_block(
        block.core, block.shape[1], spectra_fixed_maps, H, accumulate_spectra=False
    )
    assert no_loss["loss"] is None
    assert fixed["spectra_numerator"] is None
    np.testing.assert_array_equal(maps, full_maps)
    np.testing.assert_array_equal(spectra_fixed_maps, full_maps)
    np.testing.assert_array_equal(no_loss["spectra_numerator"], full["spectra_numerator"])
    np.testing.assert_array_equal(no_loss["maps_colsum"], full["maps_colsum"])
    np.testing.assert_array_equal(fixed["maps_colsum"], full["maps_colsum"])
    assert fixed["loss"] == full["loss"]
    unchecked_maps = W.copy()
    unchecked = _core.update_block(
        block.core, block.shape[1], unchecked_maps, H, check_counts=False
    )
    np.testing.assert_array_equal(unchecked_maps, full_maps)
    np.testing.assert_array_equal(unchecked["spectra_numerator"], full["spectra_numerator"])
    assert unchecked["loss"] == full["loss"]


def test_bad_block_arguments_raise():
    counts, W, H = make_problem(3, "csr")
    block = to_counts(counts)
    with pytest.raises(ValueError, match="n_threads"):
        _core.update_block(block.core, block.shape[1], W.copy(), H, n_threads=-1)
    with pytest.raises(ValueError, match="maps must be"):
        _core.update_block(block.core, block.shape[1], W[:, :2].copy(), H)
    with pytest.raises(ValueError, match="spectra: values must be finite"):
        _core.update_block(block.core, block.shape[1], W.copy(), np.full_like(H, np.nan))
    with pytest.raises(TypeError):
        _core.update_block(block.core, block.shape[1], W.astype(np.float32), H)
    indptr, indices, values = block.core
    out_of_range = indices.copy()
    out_of_range[-1] = block.shape[1]
    with pytest.raises(ValueError, match="column index"):
        _core.update_block((indptr, out_of_range, values), block.shape[1], W.copy(), H)
    negative = values.copy()
    negative[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        _core.update_block((indptr, indices, negative), block.shape[1], W.copy(), H)
