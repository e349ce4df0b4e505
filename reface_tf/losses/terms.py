"""The loss-term type: adding a term is one module with a builder, listed in ``reface_tf.losses``.

A term is built from the config (``None`` when its weight is 0) and returns a per-example loss
(shape ``[N]``, float32, unweighted) from a ``LossContext``: the batch, the networks' outputs of this step and
the discriminator's features. The step multiplies by ``term.weight``, sums the terms and averages over the
*global* batch, so terms never need to know about distribution strategies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import tensorflow as tf

from reface_tf.config import Config


@dataclass
class LossContext:
    """What a loss term may read, all in [-1, 1] for images.

    ``batch``: the dict batch of the task's pipeline (Pix2Pix: ``input``, ``target``). ``outputs``: what the
    networks produced this step (Pix2Pix: ``fake``). ``features``: discriminator features by name (feature
    matching: lists of per-layer activations for real and fake), empty when the task has none.
    """

    batch: dict[str, tf.Tensor]
    outputs: dict[str, tf.Tensor]
    features: dict[str, list[tf.Tensor]] = field(default_factory=dict)

    # The names of a translation task, for the terms that compare an output with its target.
    @property
    def inputs(self) -> tf.Tensor:
        return self.batch["input"]

    @property
    def targets(self) -> tf.Tensor:
        return self.batch["target"]

    @property
    def fake(self) -> tf.Tensor:
        return self.outputs["fake"]


@dataclass
class LossTerm:
    name: str                     # shown as loss/<name> in TensorBoard and metrics.jsonl
    weight: float
    fn: Callable[[LossContext], tf.Tensor]  # -> [N]

    def __call__(self, ctx: LossContext) -> tf.Tensor:
        return tf.cast(self.fn(ctx), tf.float32)


TermBuilder = Callable[[Config], "LossTerm | None"]


def per_example_mean(x: tf.Tensor) -> tf.Tensor:
    """Mean over every axis but the batch axis, in float32."""
    x = tf.cast(x, tf.float32)
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)
