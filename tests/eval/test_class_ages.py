"""The per-class age report: a generator whose classes show in the estimate scores a positive Spearman, one that
ignores them scores none, and the real rows come from the held-out faces of each class."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.eval.class_ages import class_age_agreement, markdown_lines
from reface_tf.serve.source import SeedSource


class BrightnessAge:
    """A stand-in estimator: the 'age' of a face is its mean brightness / 4 (checks the bookkeeping, not ages)."""

    def __init__(self):
        self.landmarks_seen = []

    def predict(self, images, landmarks=None):
        self.landmarks_seen.append(landmarks)
        return np.asarray(images, np.float64).mean(axis=(1, 2, 3)) / 4


def source(by_class: bool) -> SeedSource:
    def faces(seeds, cls):
        seeds = np.asarray(seeds)
        level = 80 + (60 * cls if by_class else 0) + (seeds % 5) * 4
        return np.broadcast_to(level[:, None, None, None], (len(seeds), 8, 8, 3)).astype(np.uint8)

    return SeedSource(lambda s: faces(s, 0), 8, "ckpt-1", "test", "stylegan2", class_names=("young", "old", "older"),
                      generate_class=faces)


def test_classes_that_change_the_estimate_correlate_and_the_real_rows_are_per_class():
    real = np.concatenate([np.full((2, 8, 8, 3), 100, np.uint8), np.full((3, 8, 8, 3), 200, np.uint8)])
    estimator = BrightnessAge()
    report = class_age_agreement(source(True), estimator, samples=10, real=real, real_classes=np.array([0, 0, 2, 2, 2]))
    assert report["spearman_generated"] > 0.8 and report["spearman_real"] == pytest.approx(1.0)
    young, old, older = report["classes"]
    assert young["generated"]["n"] == 10 and young["generated"]["mean"] == pytest.approx((80 + 8) / 4)
    assert young["real"] == {"n": 2, "mean": 25.0, "std": 0.0} and old["real"]["n"] == 0 and older["real"]["mean"] == 50.0
    assert report["mean_abs_gap_years"] == pytest.approx((abs(22 - 25) + abs(52 - 50)) / 2)
    assert all(lm == [None] * len(lm) for lm in estimator.landmarks_seen)  # template chips, no detection
    assert any("| old | 37.0 ± 1.4 (n=10) | — |" == line for line in markdown_lines(report))


def test_a_generator_that_ignores_its_class_has_no_correlation():
    report = class_age_agreement(source(False), BrightnessAge(), samples=10)
    assert abs(report["spearman_generated"]) < 1e-9 and "spearman_real" not in report
