"""L1 reconstruction: mean absolute error between the generated and the target image."""

from __future__ import annotations

import tensorflow as tf

from reface_tf.config import Config
from reface_tf.losses.terms import LossTerm, per_example_mean


def l1_per_example(outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    return per_example_mean(tf.abs(tf.cast(targets, tf.float32) - tf.cast(outputs, tf.float32)))


def build_l1(cfg: Config) -> LossTerm | None:
    if cfg.loss.lambda_l1 == 0:
        return None
    return LossTerm("l1", cfg.loss.lambda_l1, lambda ctx: l1_per_example(ctx.fake, ctx.targets))
