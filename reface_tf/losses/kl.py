"""KL divergence of a diagonal Gaussian ``N(mu, exp(logvar))`` from ``N(0, 1)``: the VAE encoder's prior term."""

from __future__ import annotations

import tensorflow as tf


def kl_divergence(mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """Per-example KL ``[N]`` (float32), summed over the latent's dimensions as NVlabs/SPADE sums it."""
    mu, logvar = tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32)
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)
