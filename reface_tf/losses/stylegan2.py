"""StyleGAN2's losses: non-saturating logistic, R1 on reals, path-length regularisation, and the reference's
``auto`` values for their weights."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def auto_r1_gamma(resolution: int, batch: int) -> float:
    """NVlabs/stylegan2-ada ``--cfg auto``: gamma = 0.0002 * res^2 / minibatch."""
    return 0.0002 * resolution ** 2 / batch


def auto_ema_kimg(batch: int) -> float:
    """``--cfg auto``: the generator EMA's half-life, minibatch * 10 / 32 thousand images."""
    return batch * 10 / 32


def ema_decay(step: tf.Tensor, batch: int, half_life_kimg: float, rampup: float | None) -> tf.Tensor:
    """Decay per step for a half-life of ``half_life_kimg`` thousand images; with ``rampup`` the half-life is at
    most ``rampup`` times the images seen so far (the reference's 0.05), so early averages forget the start fast."""
    half_life = tf.constant(half_life_kimg * 1000.0, tf.float32)
    if rampup is not None:
        seen = (tf.cast(step, tf.float32) + 1.0) * batch
        half_life = tf.minimum(half_life, seen * rampup)
    return tf.pow(0.5, batch / tf.maximum(half_life, 1e-8))


def generator_logistic(fake_logits: tf.Tensor) -> tf.Tensor:
    """Per-example non-saturating loss ``softplus(-D(G(z)))``."""
    return tf.reshape(tf.nn.softplus(-tf.cast(fake_logits, tf.float32)), [-1])


def discriminator_logistic(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.nn.softplus(tf.cast(fake_logits, tf.float32)) + tf.nn.softplus(-tf.cast(real_logits, tf.float32)), [-1])


def r1_penalty(score: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor) -> tf.Tensor:
    """Per-example ``||d D(x) / d x||^2`` at the real images (Mescheder et al. 2018)."""
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(tf.cast(score(real), tf.float32))  # inside the tape: graph mode records only here
    grad = tape.gradient(total, real)
    return tf.reduce_sum(tf.square(tf.cast(grad, tf.float32)), axis=[1, 2, 3])


def path_lengths(synthesis: Callable[[tf.Tensor], tf.Tensor], ws: tf.Tensor, noise_seed: tf.Tensor) -> tf.Tensor:
    """Per-example ``|J_w^T y|``: the gradient w.r.t. the ws of the image dotted with a random image ``y``
    (pixel std 1/sqrt(H W)), its norm over w_dim averaged over the ws (Karras et al. 2020, section 3.2)."""
    with tf.GradientTape() as tape:
        tape.watch(ws)
        images = tf.cast(synthesis(ws), tf.float32)
        h, w = images.shape[1], images.shape[2]
        y = tf.random.stateless_normal(tf.shape(images), noise_seed) / float((h * w) ** 0.5)
        total = tf.reduce_sum(images * y)
    grad = tape.gradient(total, ws)
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=2), axis=1))
