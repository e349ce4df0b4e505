"""The engine's ``tf.function`` train step: one gradient tape per phase, any tf.distribute strategy.

Per-example losses are averaged over the GLOBAL batch (``tf.nn.compute_average_loss``) so gradients are
the same whatever the number of replicas. Losses are float32 under every precision policy; under
``mixed_float16`` the Keras 3 ``LossScaleOptimizer`` scales the loss and unscales the gradients. What the
losses are is the task's (``reface_tf.train.task.StepGroup``); Pix2Pix's are in ``reface_tf.tasks.pix2pix``.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import keras
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.train.task import EMA, StepContext, StepGroup


class FusedAdam(keras.optimizers.Adam):
    """Keras Adam whose per-variable update is TensorFlow's fused ``ResourceApplyAdam`` kernel.

    Same variables (so the same checkpoints) and the same maths as ``keras.optimizers.Adam``
    (``var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``), but one pass over each
    variable instead of about ten separate element-wise ops, each streaming the whole tensor through
    memory. The U-Net has 54M parameters, so on a CPU the unfused update alone costs about as much as
    a quarter of a batch-1 training step. The kernel computes ``1 - beta_2`` in float32 whereas Keras Adam
    uses the Python double, so with ``beta_2 = 0.999`` the second moment differs by about 1.3e-5 relative
    (``float32(0.999) = 0.99900001287``); the updates agree to ~1e-5 relative (tests/train/test_optimizer.py).
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not isinstance(gradient, tf.Tensor) or variable.dtype != tf.float32:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(m), v=_handle(v),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False)


def _handle(variable) -> tf.Tensor:
    # Keras variables wrap a tf.Variable; under tf.distribute ``.handle`` resolves to this replica's copy.
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


def make_optimizer(lr: float, cfg: Config, beta_1: float | None = None, beta_2: float | None = None) -> keras.optimizers.Optimizer:
    """``FusedAdam`` (betas from ``cfg.optim`` unless given), wrapped for loss scaling under ``mixed_float16``."""
    opt = FusedAdam(learning_rate=lr, beta_1=cfg.optim.beta1 if beta_1 is None else beta_1,
                    beta_2=cfg.optim.beta2 if beta_2 is None else beta_2)
    if cfg.runtime.precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def trainable(networks: dict[str, keras.Model], names: tuple[str, ...]) -> list:
    return [v for name in names for v in networks[name].trainable_variables]


def make_group_step(group: StepGroup, networks: dict[str, keras.Model], optimizers: dict[str, keras.optimizers.Optimizer],
                    cfg: Config, strategy: tf.distribute.Strategy, global_batch: int,
                    ) -> Callable[[object, tf.Tensor], dict[str, tf.Tensor]]:
    """Return ``step(distributed_batch, step_count) -> {name: scalar}`` for one group: one gradient tape per
    phase around ONE call of the group's loss function, every gradient computed before any is applied (so
    each phase sees the networks as they were at the forward pass), logs summed over replicas."""
    scaled = cfg.runtime.precision == "mixed_float16"
    variables = [trainable(networks, phase.networks) for phase in group.phases]

    accumulate = cfg.optim.accumulate

    def micro_step(batch: dict[str, tf.Tensor], ctx: StepContext):
        with contextlib.ExitStack() as stack:
            tapes = [stack.enter_context(tf.GradientTape()) for _ in group.phases]
            losses, logs = group.losses(batch, ctx)
            totals = [optimizers[p.optimizer].scale_loss(losses[p.loss]) if scaled else losses[p.loss]
                      for p in group.phases]
        grads = [tape.gradient(total, vs) for tape, total, vs in zip(tapes, totals, variables)]
        return grads, {**logs, **{p.loss: losses[p.loss] for p in group.phases}}

    def replica_step(batch: dict[str, tf.Tensor], step_count: tf.Tensor) -> dict[str, tf.Tensor]:
        ctx = StepContext(global_batch, step_count)
        if accumulate == 1:
            grads, out = micro_step(batch, ctx)
        else:
            # Gradient accumulation: the batch in ``accumulate`` slices run one after another. Losses are sums over
            # examples / GLOBAL batch (ctx.average), so the summed slices are the whole batch's mean, as replicas are.
            slices = {k: tf.split(v, accumulate, axis=0) for k, v in batch.items()}
            grads, out = None, {}
            for i in range(accumulate):
                g, o = micro_step({k: v[i] for k, v in slices.items()}, ctx)
                grads = g if grads is None else [[b if a is None else a if b is None else a + b for a, b in zip(x, y)]
                                                 for x, y in zip(grads, g)]
                out = {k: out.get(k, 0.0) + v for k, v in o.items()}
        for phase, g, vs in zip(group.phases, grads, variables):
            optimizers[phase.optimizer].apply_gradients(zip(g, vs))
        return out

    # XLA compiles one device's program: with several replicas compile the per-replica step, not the
    # cross-replica function (which would place every replica's variables on the first device).
    multi = strategy.num_replicas_in_sync > 1
    replica_fn = tf.function(replica_step, jit_compile=True) if cfg.runtime.jit and multi else replica_step

    @tf.function(jit_compile=(cfg.runtime.jit and not multi) or None)
    def step(batch: dict[str, tf.Tensor], step_count: tf.Tensor) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_fn, args=(batch, step_count))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return step


def make_ema_update(ema: dict[str, EMA], networks: dict[str, keras.Model]) -> Callable[[], None] | None:
    """A ``tf.function`` that moves every EMA network toward its source (cross-replica: all copies alike)."""
    if not ema:
        return None
    pairs = []
    for name, spec in ema.items():
        targets, sources = float_variables(networks[name]), float_variables(networks[spec.source])
        if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
            raise ValueError(f"EMA network {name!r} does not have the variables of {spec.source!r}")
        pairs.append((spec.decay, spec.warmup, spec.schedule, targets, sources))

    @tf.function
    def update(step: tf.Tensor) -> None:
        """``step``: optimiser steps completed before this update (int64)."""
        for decay, warmup, schedule, targets, sources in pairs:
            if schedule is not None:
                decay = schedule(step)
            elif warmup:
                t = tf.cast(step, tf.float32)
                decay = tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))
            for t_var, s in zip(targets, sources):
                t_var.assign(s + tf.cast(decay, t_var.dtype) * (t_var - s))

    return update


def float_variables(model: keras.Model) -> list:
    """Weights and normalisation statistics; not the integer RNG states of dropout layers."""
    return [v for v in model.variables if keras.backend.is_float_dtype(v.dtype)]


def copy_weights(target: keras.Model, source: keras.Model) -> None:
    """Start an EMA network equal to its source (float variables, as the EMA update)."""
    for t, s in zip(float_variables(target), float_variables(source)):
        t.assign(s)
