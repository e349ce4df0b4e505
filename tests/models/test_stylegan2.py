"""StyleGAN2 building blocks: modulated convolution, equalised learning rate, conditional mapping, shapes; ADA's p
update and identity at p = 0; R1 against an analytic gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from reface_tf.data import ada
from reface_tf.losses.stylegan2 import auto_ema_kimg, auto_r1_gamma, ema_decay, r1_penalty
from reface_tf.models.equalized import EqualConv2D, EqualDense, modulated_conv2d
from reface_tf.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def test_demodulation_keeps_unit_output_variance():
    # With unit-variance i.i.d. inputs, each demodulated output is a sum of k*k*Cin independent terms whose
    # weights have unit L2 norm, so its variance is 1 whatever the styles. 16x16x64 outputs x 8 examples give
    # ~115k inner samples: the sample variance's standard error is about 0.005 (x ~3 for correlation between
    # neighbouring outputs), so 0.95-1.05 is several standard errors wide. Border pixels are left out: zero
    # padding drops taps there, which lowers their variance by design.
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((8, 16, 16, 32)), tf.float32)
    w = tf.constant(rng.standard_normal((3, 3, 32, 64)) * 5.0, tf.float32)
    styles = tf.constant(rng.uniform(0.1, 3.0, (8, 32)), tf.float32)
    inner = modulated_conv2d(x, w, styles, demodulate=True).numpy()[:, 1:-1, 1:-1]
    assert 0.95 < inner.var() < 1.05
    plain = modulated_conv2d(x, w, styles, demodulate=False).numpy()
    assert plain.var() > 10  # without demodulation the scale of the weights and styles comes through


def test_equalised_learning_rate_scales_at_run_time():
    dense = EqualDense(64, lr_mul=0.01, seed=1)
    dense.build((None, 256))
    assert dense.weight_gain == pytest.approx(0.01 / math.sqrt(256))
    assert np.std(dense.kernel.numpy()) == pytest.approx(100.0, rel=0.05)  # stored N(0, 1 / lr_mul)
    x = tf.random.normal([512, 256], seed=3)
    assert float(tf.math.reduce_std(dense(x))) == pytest.approx(1.0, rel=0.1)  # unit output at init
    conv = EqualConv2D(8, 3, seed=2)
    conv.build((None, 8, 8, 16))
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(16 * 9)) and np.std(conv.kernel.numpy()) == pytest.approx(1.0, rel=0.1)


def _generator(classes=3):
    return StyleGAN2Generator(32, z_dim=16, w_dim=16, num_classes=classes, channel_base=256, channel_max=32, seed=1)


def test_conditional_mapping_and_shapes_at_32px():
    g = _generator()
    z = tf.tile(tf.random.normal([1, 16], seed=4), [3, 1])
    ws = g.mapping(z, tf.constant([0, 1, 0]))
    assert ws.shape == (3, g.num_ws, 16) and g.num_ws == 8
    assert float(tf.reduce_max(tf.abs(ws[0] - ws[1]))) > 1e-3  # another class, another w
    np.testing.assert_array_equal(ws[0].numpy(), ws[2].numpy())
    a = g({"z": z, "class": tf.constant([2, 1, 2])}).numpy()
    assert a.shape == (3, 32, 32, 3) and np.isfinite(a).all()
    np.testing.assert_array_equal(a[0], a[2])  # same seed + class, same face (constant noise)
    d = StyleGAN2Discriminator(32, num_classes=3, channel_base=256, channel_max=32)
    assert d({"image": tf.constant(np.concatenate([a, a[:1]])), "class": tf.constant([0, 1, 2, 0])}).shape == (4, 1)


def test_ada_p_update_follows_the_sign_rule_and_clamps():
    step = 64 * 4 / 500_000
    assert float(ada.adjusted_p(0.5, 0.9, 0.6, 256, 500_000)) == pytest.approx(0.5 + step)   # D over-confident: more
    assert float(ada.adjusted_p(0.5, 0.1, 0.6, 256, 500_000)) == pytest.approx(0.5 - step)   # less
    assert float(ada.adjusted_p(0.0, -1.0, 0.6, 256, 500_000)) == 0.0                          # clamped at 0
    assert float(ada.adjusted_p(1.0, 1.0, 0.6, 256, 500_000)) == 1.0


def test_ada_is_identity_at_p0_deterministic_and_changes_images_at_p1():
    x = tf.random.uniform([4, 32, 32, 3], -1, 1, seed=5)
    seed = tf.constant([3, 4], tf.int64)
    np.testing.assert_allclose(ada.augment(x, seed, 0.0).numpy(), x.numpy(), atol=1e-5)
    a, b = ada.augment(x, seed, 1.0).numpy(), ada.augment(x, seed, 1.0).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - x.numpy()).mean() > 0.1
    with tf.GradientTape() as tape:  # the sampler is differentiable in the image
        tape.watch(x)
        total = tf.reduce_sum(ada.augment(x, seed, 1.0))
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, x)))) > 0


def test_r1_matches_the_analytic_gradient_of_a_quadratic():
    # D(x) = sum(a * x^2) has gradient 2 a x, so R1 = sum((2 a x)^2).
    a = tf.random.uniform([1, 4, 4, 3], 0.5, 2.0, seed=6)
    x = tf.random.normal([2, 4, 4, 3], seed=7)
    got = tf.function(lambda x: r1_penalty(lambda r: tf.reduce_sum(a * r * r, axis=[1, 2, 3]), x))(x)
    np.testing.assert_allclose(got.numpy(), tf.reduce_sum(tf.square(2 * a * x), axis=[1, 2, 3]).numpy(), rtol=1e-5)


def test_auto_config_rules():
    assert auto_r1_gamma(256, 64) == pytest.approx(0.2048) and auto_ema_kimg(32) == 10
    # half-life: after half_life images the old average weighs 1/2
    decay = float(ema_decay(tf.constant(10**6, tf.int64), 32, 10.0, None))
    assert decay ** (10_000 / 32) == pytest.approx(0.5, rel=1e-3)
    assert float(ema_decay(tf.constant(0, tf.int64), 32, 10.0, 0.05)) < decay  # ramp-up: faster at the start
