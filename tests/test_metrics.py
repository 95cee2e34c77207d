"""Tests of psnmf.metrics against hand computations."""

import itertools

import numpy as np
import pytest

from psnmf import metrics


def test_spectral_angle_known_values():
    assert metrics.spectral_angle([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert metrics.spectral_angle([1, 0], [1, 1]) == pytest.approx(45.0)
    assert metrics.spectral_angle([1, 0], [-1, 0]) == pytest.approx(180.0)
    assert metrics.spectral_angle([2, 2, 2], [1, 1, 1]) == pytest.approx(0.0, abs=1e-6)
    a = [1.0, 2.0, 3.0]
    b = [3.0, 1.0, 0.5]
    by_hand = np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))
    assert metrics.spectral_angle(a, b) == pytest.approx(by_hand)
    theta = np.radians(30.0)
    assert metrics.spectral_angle([1, 0], [np.cos(theta), np.sin(theta)]) == pytest.approx(30.0)


def test_permuted_scaled_copy_matches_with_zero_angle():
    rng = np.random.default_rng(0)
    true = rng.random((4, 50))
    order = np.array([2, 0, 3, 1])
    learned = true[order] * np.array([[3.0], [0.5], [7.0], [1e-3]])
    perm = metrics.match_components(true, learned)
    # learned[perm[i]] is true[i]: order[perm[i]] == i.
    np.testing.assert_array_equal(order[perm], np.arange(4))
    np.testing.assert_allclose(metrics.spectral_angles(true, learned), 0.0, atol=1e-5)


def test_matching_with_extra_learned_components():
    true = np.eye(3, 6)
    learned = np.vstack([np.ones(6), np.eye(3, 6)[::-1] + 0.01])
    perm = metrics.match_components(true, learned)
    np.testing.assert_array_equal(perm, [3, 2, 1])
    with pytest.raises(ValueError, match="fewer"):
        metrics.match_components(true, learned[:2])


def test_matching_is_optimal_against_brute_force():
    rng = np.random.default_rng(3)
    true = rng.random((5, 12))
    learned = rng.random((6, 12))
    cost = np.array([[metrics.spectral_angle(t, s) for s in learned] for t in true])
    best = min(
        sum(cost[i, j] for i, j in enumerate(p)) for p in itertools.permutations(range(6), 5)
    )
    perm = metrics.match_components(true, learned)
    assert sum(cost[i, j] for i, j in enumerate(perm)) == pytest.approx(best)


def test_map_nrmse_hand_computation():
    true = np.array([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]])
    learned = np.array([[[0.0, 1.0], [0.0, 2.0]], [[1.0, 2.0], [3.0, 5.0]]])  # swapped
    # component 0 vs learned 1: diffs 0, 0, 0, 1 -> RMSE 0.5; RMS(true0) = sqrt(30 / 4)
    # component 1 vs learned 0: diffs 0, 0, 0, 1 -> RMSE 0.5; RMS(true1) = sqrt(2 / 4)
    expected = [0.5 / np.sqrt(7.5), 0.5 / np.sqrt(0.5)]
    np.testing.assert_allclose(metrics.map_nrmse(true, learned), expected)
    np.testing.assert_allclose(metrics.map_nrmse(true, learned, permutation=[1, 0]), expected)
    # (n_pixels, k) layout, as scikit-learn's fit_transform returns.
    flat = learned.reshape(2, -1).T
    np.testing.assert_allclose(metrics.map_nrmse(true, flat, permutation=[1, 0]), expected)
    # Scale-aware: half the counts gives 0.5.
    np.testing.assert_allclose(metrics.map_nrmse(true, 0.5 * true, [0, 1]), 0.5)


def test_composition_error():
    true = np.array([[40.0, 60.0, 0.0], [0.0, 50.0, 50.0]])
    est = np.array([[1.0, 48.0, 51.0], [42.0, 57.0, 1.0]])
    err = metrics.composition_error(true, est, permutation=[1, 0])
    diffs = np.abs(np.array([[2.0, -3.0, 1.0], [1.0, -2.0, 1.0]]))
    assert err.max == pytest.approx(3.0)
    assert err.mean == pytest.approx(diffs.mean())
    np.testing.assert_allclose(err.per_phase, [3.0, 2.0])
    with pytest.raises(ValueError, match="elements"):
        metrics.composition_error(true, est[:, :2])


def test_reconstruction_error_frobenius_and_kl():
    rng = np.random.default_rng(1)
    expected = rng.random((30, 20, 16)).astype(np.float32) + 0.1
    recon = expected * 1.1
    assert metrics.reconstruction_error(expected, recon) == pytest.approx(0.1, rel=1e-5)
    noisy = expected + rng.normal(0, 0.05, expected.shape).astype(np.float32)
    e64, r64 = expected.astype(float), noisy.astype(float)
    by_hand = np.linalg.norm(r64 - e64) / np.linalg.norm(e64)
    assert metrics.reconstruction_error(expected, noisy.reshape(-1, 16)) == pytest.approx(
        by_hand, rel=1e-6
    )
    kl = np.sum(e64 * np.log(e64 / (1.1 * e64)) - e64 + 1.1 * e64) / e64.sum()
    assert metrics.reconstruction_error(expected, recon, metric="kl") == pytest.approx(
        kl, rel=1e-5
    )
    assert metrics.reconstruction_error(expected, expected, metric="kl") == pytest.approx(0.0)
    zero = recon.copy()
    zero[0, 0, 0] = 0
    assert metrics.reconstruction_error(expected, zero, metric="kl") == np.inf
    with pytest.raises(ValueError, match="shapes"):
        metrics.reconstruction_error(expected, recon[:-1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="all zero"):
        metrics.spectral_angle([0, 0], [1, 0])
    with pytest.raises(ValueError, match="channels"):
        metrics.match_components(np.ones((2, 5)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="permutation"):
        metrics.spectral_angles(np.eye(2), np.eye(2), permutation=[0, 0])
    with pytest.raises(ValueError, match="metric"):
        metrics.reconstruction_error(np.ones((2, 2)), np.ones((2, 2)), metric="l1")
