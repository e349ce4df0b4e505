"""Distribution metrics on embeddings: Fréchet distance, kernel inception distance (KID), nearest neighbours.

These compare two *sets* of feature vectors (e.g. embeddings of generated and of real faces), not pairs. They
are pure numpy, float64 throughout, and know nothing of the network that made the features
(:mod:`reface_tf.metrics.embeddings` makes them).

* :func:`frechet_distance` fits a Gaussian to each set (mean, covariance with ``ddof=1``) and returns
  ``||m_a - m_b||² + Tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½)``. The trace term is computed from symmetric
  eigen-decompositions, not a general matrix square root: ``S_a^½`` from ``eigh(S_a)``, then the eigenvalues
  of the symmetric positive semi-definite ``S_a^½ S_b S_a^½``, whose square roots sum to
  ``Tr((S_a S_b)^½)``. The result is real by construction. Eigenvalues at rounding level (singular or
  rank-deficient covariances: fewer independent directions than dimensions), which rounding may make
  slightly negative, are set to zero; how many and the largest magnitude among them are reported in the
  result. A clearly negative eigenvalue (a given covariance that is not positive semi-definite) is an error. A distance is reported only when each set has at least
  ``2 x dim`` samples (fewer make the covariance estimate, and so the number, mostly noise); otherwise
  ``value`` is None and ``reason`` says why.
* :func:`kernel_inception_distance` is the unbiased MMD² estimator with the cubic polynomial kernel
  ``k(x, y) = (x·y / d + 1)³`` of Bińkowski et al. (2018), as torch-fidelity and clean-fid compute it, averaged
  over random subsets drawn without replacement (numpy ``Generator`` seeded by ``seed``: the same seed gives
  the same number). ``std`` is the population standard deviation over the subsets, as torch-fidelity reports.
  The estimator is unbiased, so it can be slightly negative when both sets come from one distribution.
* :func:`nearest_neighbours` finds, for each generated feature, its nearest training features by **cosine
  distance** ``1 - cos`` (vectors are L2-normalised first, so for unit embeddings it is ``||a - b||² / 2``);
  :func:`closest_pairs` lists the closest (generated, training) pairs, for the memorisation check.

Example::

    fd = frechet_distance(fake_feats, real_feats)      # FrechetResult: fd.value, or None and fd.reason
    kid = kernel_inception_distance(fake_feats, real_feats, subsets=100, subset_size=1000, seed=0)
    nn = nearest_neighbours(fake_feats, train_feats)  # nn.index[i, 0], nn.distance[i, 0]
    closest_pairs(nn, 8)                               # [ClosePair(generated, training, distance), ...]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

# A negative eigenvalue larger than this fraction of the largest one cannot come from rounding: the matrix
# given as a covariance is not positive semi-definite, and clipping it would hide an error.
NOT_PSD_TOLERANCE = 1e-10
NN_CHUNK = 1024  # generated rows per block of the distance matrix (bounds memory at 1024 x n_training floats)


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a [N, D] feature array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: features contain NaN or Inf")
    return x


def _same_dim(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")


# --------------------------------------------------------------------------------------------- Fréchet distance


@dataclass(frozen=True)
class FrechetResult:
    """A Fréchet distance, or None with ``reason``. ``n_a``/``n_b`` are None when moments were given directly.

    ``clipped_eigenvalues`` counts the eigenvalues (of ``S_a`` and of ``S_a^½ S_b S_a^½``) at rounding level,
    negative or not, that were set to zero; ``clipped_max`` is the largest magnitude among them (0 if none).
    """

    value: float | None
    n_a: int | None
    n_b: int | None
    dim: int
    reason: str | None = None
    clipped_eigenvalues: int = 0
    clipped_max: float = 0.0
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def _psd_eigenvalues(matrix: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Eigenvalues and eigenvectors of a symmetric PSD matrix, those at rounding level set to 0, with their
    count and largest magnitude.

    Rounding level is numpy's ``matrix_rank`` tolerance, ``D * eps * largest``: below it an eigenvalue cannot
    be told from 0, and left as it is, a tiny positive one would add its square root (about 1e-8) to the trace.
    """
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    scale = max(float(np.max(np.abs(values))), np.finfo(np.float64).tiny)
    if values.min() < -NOT_PSD_TOLERANCE * scale:
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {values.min():.3g}, largest {scale:.3g})")
    zeroed = np.abs(values) <= values.size * np.finfo(np.float64).eps * scale
    worst = float(np.abs(values[zeroed]).max()) if zeroed.any() else 0.0
    return np.where(zeroed, 0.0, values), vectors, int(zeroed.sum()), worst


def gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b) -> FrechetResult:
    """The closed form ``||m_a - m_b||² + Tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½)`` for given moments."""
    mean_a, mean_b = np.asarray(mean_a, np.float64).ravel(), np.asarray(mean_b, np.float64).ravel()
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    dim = mean_a.size
    if mean_b.size != dim or cov_a.shape != (dim, dim) or cov_b.shape != (dim, dim):
        raise ValueError(f"moment shapes do not match: means {mean_a.shape}, {mean_b.shape}; "
                         f"covariances {cov_a.shape}, {cov_b.shape}")
    values_a, vectors_a, clipped_a, worst_a = _psd_eigenvalues(cov_a, "cov_a")
    _psd_eigenvalues(cov_b, "cov_b")  # only checked: the formula needs S_b itself, not its roots
    root_a = (vectors_a * np.sqrt(values_a)) @ vectors_a.T
    inner, _, clipped_m, worst_m = _psd_eigenvalues(root_a @ cov_b @ root_a, "S_a^1/2 S_b S_a^1/2")
    diff = mean_a - mean_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.sqrt(inner).sum())
    clipped = clipped_a + clipped_m
    notes = (f"set {clipped} eigenvalue(s) at rounding level to 0 (largest magnitude {max(worst_a, worst_m):.3g}): "
             "singular or rank-deficient covariance",) if clipped else ()
    return FrechetResult(value, None, None, dim, None, clipped, max(worst_a, worst_m), notes)


def frechet_distance(feats_a, feats_b) -> FrechetResult:
    """Fréchet distance between Gaussians fitted to two feature sets [N_a, D] and [N_b, D].

    Omitted (``value`` None, ``reason`` set) unless each set has at least ``2 x D`` samples.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    _same_dim(a, b)
    (n_a, dim), n_b = a.shape, b.shape[0]
    fewest = min(n_a, n_b)
    if fewest < 2 * dim:
        reason = f"omitted: {fewest} samples < 2 x {dim} dims"
        return FrechetResult(None, n_a, n_b, dim, reason, notes=(reason,))
    moments = gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    return FrechetResult(moments.value, n_a, n_b, dim, None, moments.clipped_eigenvalues, moments.clipped_max,
                         moments.notes)


# --------------------------------------------------------------------------------------------- KID


@dataclass(frozen=True)
class KIDResult:
    """KID: mean and std of the unbiased MMD² over ``n_subsets`` subsets of ``subset_size`` from each set."""

    mean: float | None
    std: float | None
    subset_size: int
    n_subsets: int
    n_a: int
    n_b: int
    seed: int
    reason: str | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x·y / d + 1)³`` for every row pair: [N, D] x [M, D] -> [N, M]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equal-size samples: within-set kernel means without the diagonal, minus twice the
    cross-set mean over all pairs."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(feats_a, feats_b, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> KIDResult:
    """KID between two feature sets [N_a, D] and [N_b, D] (see the module docstring).

    Each of ``subsets`` rounds draws ``min(subset_size, N_a, N_b)`` rows of each set without replacement.
    When that size is both set sizes, every round would see the whole of both sets (the estimator does not
    depend on row order), so it is computed once and ``n_subsets`` is 1 with std 0.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    _same_dim(a, b)
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"KID needs subsets >= 1 and subset_size >= 2 (got {subsets}, {subset_size})")
    n_a, n_b = a.shape[0], b.shape[0]
    m = min(subset_size, n_a, n_b)
    if m < 2:
        reason = f"omitted: {min(n_a, n_b)} sample(s); KID needs at least 2 per set"
        return KIDResult(None, None, m, 0, n_a, n_b, seed, reason, (reason,))
    notes: list[str] = []
    if m < subset_size:
        notes.append(f"subset size {m} (requested {subset_size}; limited by the set sizes {n_a} and {n_b})")
    if m == n_a == n_b:
        notes.append("every subset is the whole of both sets: one estimate, std 0")
        return KIDResult(mmd2_unbiased(a, b), 0.0, m, 1, n_a, n_b, seed, None, tuple(notes))
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets, np.float64)
    for i in range(subsets):
        estimates[i] = mmd2_unbiased(a[rng.choice(n_a, m, replace=False)], b[rng.choice(n_b, m, replace=False)])
    return KIDResult(float(estimates.mean()), float(estimates.std()), m, subsets, n_a, n_b, seed, None, tuple(notes))


# --------------------------------------------------------------------------------------------- nearest neighbours


class NearestNeighbours(NamedTuple):
    """For generated sample ``i``: ``index[i, j]`` is its ``j``-th nearest training sample, ``distance[i, j]``
    the cosine distance ``1 - cos`` to it (ascending in ``j``; ties go to the lower training index)."""

    index: np.ndarray     # [N_generated, k] int64
    distance: np.ndarray  # [N_generated, k] float64 in [0, 2]


class ClosePair(NamedTuple):
    generated: int
    training: int
    distance: float


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(generated, training, k: int = 1) -> NearestNeighbours:
    """The ``k`` nearest training features of each generated feature by cosine distance (exact, brute force)."""
    g, t = _features(generated, "generated"), _features(training, "training")
    _same_dim(g, t)
    if not 1 <= k <= t.shape[0]:
        raise ValueError(f"k = {k}: must be between 1 and the number of training samples ({t.shape[0]})")
    g, t = _unit_rows(g), _unit_rows(t)
    index = np.empty((g.shape[0], k), np.int64)
    distance = np.empty((g.shape[0], k), np.float64)
    for start in range(0, g.shape[0], NN_CHUNK):
        block = np.clip(1.0 - g[start:start + NN_CHUNK] @ t.T, 0.0, 2.0)  # rounding can leave -1e-16 for a copy
        order = np.argsort(block, axis=1, kind="stable")[:, :k]
        index[start:start + NN_CHUNK] = order
        distance[start:start + NN_CHUNK] = np.take_along_axis(block, order, axis=1)
    return NearestNeighbours(index, distance)


def closest_pairs(neighbours: NearestNeighbours, count: int) -> list[ClosePair]:
    """The ``count`` closest (generated, nearest training) pairs, closest first (ties: lower generated index)."""
    nearest = neighbours.distance[:, 0]
    order = np.argsort(nearest, kind="stable")[:count]
    return [ClosePair(int(i), int(neighbours.index[i, 0]), float(nearest[i])) for i in order]
