"""DiffAugment: each transform does what the paper says, is differentiable, and replays from its seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reface_tf.data import diffaugment
from reface_tf.data.diffaugment import diff_augment, parse_policy

SEED = tf.constant([3, 5], tf.int64)


def _images(n=4, size=16):
    return tf.constant(np.random.default_rng(0).uniform(-1, 1, (n, size, size, 3)), tf.float32)


def test_translation_is_a_zero_filled_integer_shift():
    x = _images()
    y = diffaugment.translation(x, SEED).numpy()
    for image, out in zip(x.numpy(), y):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = np.zeros_like(image)
                src = image[max(0, -dy): 16 - max(0, dy), max(0, -dx): 16 - max(0, dx)]
                shifted[max(0, dy): max(0, dy) + src.shape[0], max(0, dx): max(0, dx) + src.shape[1]] = src
                matches.append(np.array_equal(shifted, out))
        assert sum(matches) == 1  # exactly one shift within 1/8 of the side (2 px) explains the output


def test_cutout_zeroes_one_square_of_half_the_side_at_most():
    x = tf.ones([64, 16, 16, 3])
    zeros = (diffaugment.cutout(x, SEED).numpy()[..., 0] == 0)
    counts = zeros.sum(axis=(1, 2))
    assert counts.max() == 64 and counts.min() > 0  # 8x8 when inside, clipped at the borders
    rows = zeros.any(axis=2).sum(axis=1)
    assert rows.max() == 8


def test_color_keeps_shapes_and_moves_brightness():
    x = _images()
    y = diffaugment.color(x, SEED)
    assert y.shape == x.shape and not np.allclose(y.numpy(), x.numpy())


def test_gradients_flow_and_the_seed_replays_the_draws():
    x = _images()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = diff_augment(x, SEED, ("color", "translation", "cutout"))
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.3
    again = diff_augment(x, SEED, ("color", "translation", "cutout"))
    np.testing.assert_array_equal(y.numpy(), again.numpy())
    other = diff_augment(x, SEED + 1, ("color", "translation", "cutout"))
    assert not np.array_equal(y.numpy(), other.numpy())


def test_policy_names_are_checked():
    assert parse_policy("color, cutout") == ("color", "cutout") and parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'"):
        parse_policy("color,flip")


def test_the_light_config_knows_the_same_policies():
    from reface_tf.tasks.dcgan import DIFFAUGMENT_POLICIES

    assert DIFFAUGMENT_POLICIES == diffaugment.POLICIES
