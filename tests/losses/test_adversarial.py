"""Adversarial losses and discriminator decision statistics against values computed by hand in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reface_tf.losses import adversarial

# Two examples of 2x2 single-channel PatchGAN logits, with known numbers (including 0 and the lsgan threshold 0.5).
REAL = np.array([[[[2.0], [0.0]], [[-1.0], [0.5]]],
                 [[[3.0], [1.5]], [[0.25], [-2.0]]]], dtype=np.float32)
FAKE = np.array([[[[-3.0], [1.0]], [[0.0], [0.5]]],
                 [[[-0.5], [-1.0]], [[2.0], [0.75]]]], dtype=np.float32)


def _softplus(x):
    return np.log1p(np.exp(x))


def _mean(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


def _np(t):
    return np.asarray(t, dtype=np.float64)


# BCE with label 1 is softplus(-x) = -log sigmoid(x); with label 0 it is softplus(x) = -log(1 - sigmoid(x)).
HAND_D = {
    "bce": lambda r, f: _mean(_softplus(-r)) + _mean(_softplus(f)),
    "lsgan": lambda r, f: _mean((r - 1.0) ** 2) + _mean(f ** 2),
    "hinge": lambda r, f: _mean(np.maximum(0.0, 1.0 - r)) + _mean(np.maximum(0.0, 1.0 + f)),
}
HAND_G = {
    "bce": lambda f: _mean(_softplus(-f)),
    "lsgan": lambda f: _mean((f - 1.0) ** 2),
    "hinge": lambda f: _mean(-f),
}


@pytest.mark.parametrize("kind", ["bce", "lsgan", "hinge"])
def test_discriminator_loss_matches_numpy(kind):
    got = adversarial.discriminator_loss(kind, tf.constant(REAL), tf.constant(FAKE))
    assert got.dtype == tf.float32 and got.shape == (2,)
    np.testing.assert_allclose(_np(got), HAND_D[kind](REAL.astype(np.float64), FAKE.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("kind", ["bce", "lsgan", "hinge"])
def test_generator_loss_matches_numpy(kind):
    got = adversarial.generator_loss(kind, tf.constant(FAKE))
    assert got.dtype == tf.float32 and got.shape == (2,)
    np.testing.assert_allclose(_np(got), HAND_G[kind](FAKE.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_losses_hand_values_on_scalars():
    # Fully hand-worked numbers on a 1x1 patch: real logit 1, fake logit -2.
    real, fake = tf.constant([[[[1.0]]]]), tf.constant([[[[-2.0]]]])
    # bce: softplus(-1) + softplus(-2) = log(1 + e^-1) + log(1 + e^-2)
    np.testing.assert_allclose(adversarial.discriminator_loss("bce", real, fake).numpy(),
                               [np.log(1 + np.exp(-1.0)) + np.log(1 + np.exp(-2.0))], rtol=1e-6)
    np.testing.assert_allclose(adversarial.generator_loss("bce", fake).numpy(), [np.log(1 + np.exp(2.0))], rtol=1e-6)
    # lsgan: (1-1)^2 + (-2)^2 = 4 ; generator (-2-1)^2 = 9
    np.testing.assert_allclose(adversarial.discriminator_loss("lsgan", real, fake).numpy(), [4.0])
    np.testing.assert_allclose(adversarial.generator_loss("lsgan", fake).numpy(), [9.0])
    # hinge: relu(1-1) + relu(1-2) = 0 ; generator -(-2) = 2
    np.testing.assert_allclose(adversarial.discriminator_loss("hinge", real, fake).numpy(), [0.0])
    np.testing.assert_allclose(adversarial.generator_loss("hinge", fake).numpy(), [2.0])


def test_losses_are_float32_from_bfloat16_logits():
    real, fake = tf.constant(REAL, tf.bfloat16), tf.constant(FAKE, tf.bfloat16)
    # The test numbers are exactly representable in bfloat16, so the results are the float32 ones.
    for kind in HAND_D:
        got = adversarial.discriminator_loss(kind, real, fake)
        assert got.dtype == tf.float32
        np.testing.assert_allclose(_np(got), HAND_D[kind](REAL.astype(np.float64), FAKE.astype(np.float64)), rtol=1e-6)


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        adversarial.discriminator_loss("wgan", tf.constant(REAL), tf.constant(FAKE))
    with pytest.raises(ValueError):
        adversarial.generator_loss("wgan", tf.constant(FAKE))
    with pytest.raises(ValueError):
        adversarial.decision_stats("wgan", tf.constant(REAL), tf.constant(FAKE))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_decision_thresholds():
    assert adversarial.DECISION_THRESHOLD == {"bce": 0.0, "lsgan": 0.5, "hinge": 0.0}


def test_decision_stats_bce_hand_values():
    got = {k: _np(v) for k, v in adversarial.decision_stats("bce", tf.constant(REAL), tf.constant(FAKE)).items()}
    # d_real / d_fake are the mean probabilities.
    np.testing.assert_allclose(got["d_real"], [_sigmoid(np.array([2.0, 0.0, -1.0, 0.5])).mean(),
                                               _sigmoid(np.array([3.0, 1.5, 0.25, -2.0])).mean()], rtol=1e-6)
    np.testing.assert_allclose(got["d_fake"], [_sigmoid(np.array([-3.0, 1.0, 0.0, 0.5])).mean(),
                                               _sigmoid(np.array([-0.5, -1.0, 2.0, 0.75])).mean()], rtol=1e-6)
    # Threshold 0: example 0 real > 0: {2, 0.5} -> 2/4 (0 itself is not above); fake <= 0: {-3, 0} -> 2/4.
    # Example 1 real > 0: {3, 1.5, 0.25} -> 3/4; fake <= 0: {-0.5, -1} -> 2/4.
    np.testing.assert_allclose(got["d_accuracy"], [0.5 * (0.5 + 0.5), 0.5 * (0.75 + 0.5)])


def test_decision_stats_lsgan_hand_values():
    got = {k: _np(v) for k, v in adversarial.decision_stats("lsgan", tf.constant(REAL), tf.constant(FAKE)).items()}
    # Raw means.
    np.testing.assert_allclose(got["d_real"], [(2.0 + 0.0 - 1.0 + 0.5) / 4, (3.0 + 1.5 + 0.25 - 2.0) / 4], rtol=1e-6)
    np.testing.assert_allclose(got["d_fake"], [(-3.0 + 1.0 + 0.0 + 0.5) / 4, (-0.5 - 1.0 + 2.0 + 0.75) / 4], rtol=1e-6)
    # Threshold 0.5: example 0 real > 0.5: {2} -> 1/4 (0.5 is not above); fake <= 0.5: {-3, 0, 0.5} -> 3/4.
    # Example 1 real > 0.5: {3, 1.5} -> 2/4; fake <= 0.5: {-0.5, -1} -> 2/4.
    np.testing.assert_allclose(got["d_accuracy"], [0.5 * (0.25 + 0.75), 0.5 * (0.5 + 0.5)])


def test_decision_stats_hinge_hand_values():
    got = {k: _np(v) for k, v in adversarial.decision_stats("hinge", tf.constant(REAL), tf.constant(FAKE)).items()}
    np.testing.assert_allclose(got["d_real"], [0.375, 0.6875], rtol=1e-6)
    np.testing.assert_allclose(got["d_fake"], [-0.375, 0.3125], rtol=1e-6)
    # Same threshold as bce (0) but raw outputs: same accuracies as bce.
    np.testing.assert_allclose(got["d_accuracy"], [0.5, 0.625])


def test_decision_stats_perfect_and_inverted_discriminator():
    real, fake = tf.fill([3, 4, 4, 1], 5.0), tf.fill([3, 4, 4, 1], -5.0)
    for kind in ("bce", "lsgan", "hinge"):
        np.testing.assert_allclose(adversarial.decision_stats(kind, real, fake)["d_accuracy"].numpy(), [1.0] * 3)
        np.testing.assert_allclose(adversarial.decision_stats(kind, fake, real)["d_accuracy"].numpy(), [0.0] * 3)
