"""Adversarial losses on PatchGAN logits: vanilla BCE (Pix2Pix / TF tutorial), least squares, hinge.

Each function returns per-example losses (``[N]``, float32), averaged over the patches.
The discriminator loss is real term + fake term, as in the tutorial (no 1/2 factor).
"""

from __future__ import annotations

import tensorflow as tf

from reface_tf.losses.terms import per_example_mean


def _bce(logits: tf.Tensor, label: float) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return per_example_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits))


def discriminator_loss(kind: str, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    real, fake = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
    if kind == "bce":
        return _bce(real, 1.0) + _bce(fake, 0.0)
    if kind == "lsgan":
        return per_example_mean(tf.square(real - 1.0)) + per_example_mean(tf.square(fake))
    if kind == "hinge":
        return per_example_mean(tf.nn.relu(1.0 - real)) + per_example_mean(tf.nn.relu(1.0 + fake))
    raise ValueError(f"unknown adversarial loss {kind!r}")


def generator_loss(kind: str, fake_logits: tf.Tensor) -> tf.Tensor:
    fake = tf.cast(fake_logits, tf.float32)
    if kind == "bce":
        return _bce(fake, 1.0)
    if kind == "lsgan":
        return per_example_mean(tf.square(fake - 1.0))
    if kind == "hinge":
        return per_example_mean(-fake)
    raise ValueError(f"unknown adversarial loss {kind!r}")
