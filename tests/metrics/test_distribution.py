"""Fréchet distance, KID and nearest neighbours against closed forms, direct double loops and brute force."""

import numpy as np
import pytest
import scipy.linalg

from reface_tf.metrics.distribution import (ClosePair, closest_pairs, frechet_distance, gaussian_frechet_distance,
                                            kernel_inception_distance, nearest_neighbours)


def random_spd(dim, rng):
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def test_closed_form_on_diagonal_covariances():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((m1 - m2) ** 2)  # 4 + 1 + 0 + 1 + 4
    result = gaussian_frechet_distance(m1, np.diag(a), m2, np.diag(b))
    assert result.value == pytest.approx(expected, abs=1e-12) and expected == pytest.approx(10.0)
    assert result.clipped_eigenvalues == 0 and result.notes == () and result.n_a is None and result.dim == 3


def test_closed_form_matches_the_general_matrix_square_root():
    rng = np.random.default_rng(0)
    s1, s2, m1, m2 = random_spd(5, rng), random_spd(5, rng), rng.normal(size=5), rng.normal(size=5)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the pytorch-fid formula, fine on well-conditioned matrices
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert gaussian_frechet_distance(m1, s1, m2, s2).value == pytest.approx(expected, rel=1e-10)
    assert gaussian_frechet_distance(m1, s1, m1, s1).value == pytest.approx(0.0, abs=1e-10)


def test_a_covariance_that_is_not_positive_semi_definite_is_refused():
    with pytest.raises(ValueError, match="cov_b is not positive semi-definite"):
        gaussian_frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -0.5]))
    with pytest.raises(ValueError, match="moment shapes"):
        gaussian_frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_samples_of_two_gaussians_converge_to_the_closed_form():
    rng = np.random.default_rng(1)
    s1, s2 = random_spd(4, rng), random_spd(4, rng)
    m1, m2 = np.zeros(4), np.array([0.5, -0.3, 0.0, 0.2])
    expected = gaussian_frechet_distance(m1, s1, m2, s2).value
    a = rng.multivariate_normal(m1, s1, size=40000)
    b = rng.multivariate_normal(m2, s2, size=40000)
    result = frechet_distance(a, b)
    assert result.value == pytest.approx(expected, rel=0.03)
    assert (result.n_a, result.n_b, result.dim, result.reason) == (40000, 40000, 4, None)


def test_identical_sets_give_zero():
    feats = np.random.default_rng(2).normal(size=(64, 8))
    assert frechet_distance(feats, feats).value == pytest.approx(0.0, abs=1e-9)


def test_rank_deficient_covariance_stays_finite_and_reports_the_clipping():
    rng = np.random.default_rng(3)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 3)))  # features on a 3-d subspace of 6-d space: singular S
    low_a, low_b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) * 1.5 + 0.3
    result = frechet_distance(low_a @ basis.T, low_b @ basis.T)
    # an orthonormal embedding changes neither means' distance nor the traces: the 3-d answer is exact
    assert result.value == pytest.approx(frechet_distance(low_a, low_b).value, rel=1e-8)
    assert np.isfinite(result.value) and result.clipped_eigenvalues > 0
    assert 0 < result.clipped_max < 1e-12 and "rounding level" in result.notes[0]
    assert result.as_dict()["clipped_eigenvalues"] == result.clipped_eigenvalues


def test_too_few_samples_for_the_dimension_are_omitted_with_a_reason():
    rng = np.random.default_rng(4)
    result = frechet_distance(rng.normal(size=(60, 512)), rng.normal(size=(2000, 512)))
    assert result.value is None and result.reason == "omitted: 60 samples < 2 x 512 dims"
    assert result.notes == (result.reason,) and result.as_dict()["value"] is None
    assert frechet_distance(rng.normal(size=(16, 8)), rng.normal(size=(16, 8))).value is not None  # exactly 2 x 8
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros((20, 4)), np.zeros((20, 5)))


def kid_double_loop(x, y):
    d, m = x.shape[1], x.shape[0]
    k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_the_direct_double_loop():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(9, 3)) + 0.4
    result = kernel_inception_distance(a, b, subsets=4, subset_size=5, seed=11)
    draws = np.random.default_rng(11)  # the documented procedure: per round, a subset of a then one of b
    estimates = [kid_double_loop(a[draws.choice(7, 5, replace=False)], b[draws.choice(9, 5, replace=False)])
                 for _ in range(4)]
    assert result.mean == pytest.approx(np.mean(estimates), abs=1e-10)
    assert result.std == pytest.approx(np.std(estimates), abs=1e-10) and result.std > 0
    assert (result.subset_size, result.n_subsets, result.n_a, result.n_b) == (5, 4, 7, 9)
    whole = kernel_inception_distance(a[:6], b[:6], subsets=50, subset_size=1000)
    assert whole.mean == pytest.approx(kid_double_loop(a[:6], b[:6]), abs=1e-10)
    assert (whole.std, whole.n_subsets, whole.subset_size) == (0.0, 1, 6) and "whole of both sets" in whole.notes[-1]


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(6)
    a, b, shifted = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 0.5
    same = kernel_inception_distance(a, b, subsets=20, subset_size=200, seed=0)
    moved = kernel_inception_distance(a, shifted, subsets=20, subset_size=200, seed=0)
    assert moved.mean > 5 * moved.std > 0 and abs(same.mean) < 0.1 * moved.mean
    assert same.std > 0 and "subset size" not in " ".join(same.notes)


def test_kid_is_deterministic_given_the_seed():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))
    first = kernel_inception_distance(a, b, subsets=10, subset_size=30, seed=3)
    assert kernel_inception_distance(a, b, subsets=10, subset_size=30, seed=3) == first
    assert kernel_inception_distance(a, b, subsets=10, subset_size=30, seed=4).mean != first.mean
    capped = kernel_inception_distance(a, b, subsets=2, subset_size=1000)
    assert capped.subset_size == 50 and "requested 1000" in capped.notes[0]
    tiny = kernel_inception_distance(a[:1], b)
    assert tiny.mean is None and tiny.reason.startswith("omitted")


def test_nearest_neighbours_match_brute_force():
    rng = np.random.default_rng(8)
    training = rng.normal(size=(40, 5))
    generated = np.vstack([rng.normal(size=(9, 5)), 3.0 * training[17]])  # the last is a scaled copy
    nn = nearest_neighbours(generated, training, k=3)
    unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
    for i, g in enumerate(generated):
        dist = np.array([1.0 - unit(g) @ unit(t) for t in training])
        np.testing.assert_array_equal(nn.index[i], np.argsort(dist, kind="stable")[:3])
        np.testing.assert_allclose(nn.distance[i], np.sort(dist)[:3], atol=1e-12)
    assert nn.index[9, 0] == 17 and nn.distance[9, 0] == pytest.approx(0.0, abs=1e-12)
    pairs = closest_pairs(nn, 4)
    assert pairs[0] == ClosePair(9, 17, nn.distance[9, 0]) and len(pairs) == 4
    assert [p.distance for p in pairs] == sorted(nn.distance[:, 0])[:4]
    with pytest.raises(ValueError, match="k = 41"):
        nearest_neighbours(generated, training, k=41)
