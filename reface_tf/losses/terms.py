"""The generator loss-term type: adding a term is one module with a builder, listed in ``reface_tf.losses``.

A term is built from the config (``None`` when its weight is 0) and returns a per-example loss
(shape ``[N]``, float32, unweighted). The training loop multiplies by ``term.weight``, sums the terms and
averages over the *global* batch, so terms never need to know about distribution strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from reface_tf.config import Config


@dataclass
class LossTerm:
    name: str                     # shown as loss/<name> in TensorBoard and metrics.jsonl
    weight: float
    fn: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]  # (inputs, outputs, targets) in [-1, 1] -> [N]

    def __call__(self, inputs: tf.Tensor, outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.fn(inputs, outputs, targets), tf.float32)


TermBuilder = Callable[[Config], "LossTerm | None"]


def per_example_mean(x: tf.Tensor) -> tf.Tensor:
    """Mean over every axis but the batch axis, in float32."""
    x = tf.cast(x, tf.float32)
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)
