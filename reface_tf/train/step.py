"""The ``tf.function`` train step: two tapes, two optimisers, weighted loss terms, any tf.distribute strategy.

Per-example losses are averaged over the GLOBAL batch (``tf.nn.compute_average_loss``) so gradients are
the same whatever the number of replicas. Losses are float32 under every precision policy; under
``mixed_float16`` the Keras 3 ``LossScaleOptimizer`` scales the loss and unscales the gradients.
When the norm is not batch norm and the per-replica batch is small, the discriminator sees real and fake
pairs in ONE batched call (same result, larger and more efficient convolutions). From a per-replica batch of
``FUSE_MAX_BATCH + 1`` on the calls stay separate: the generator's gradient then flows back through the
discriminator for the fake half only, whereas the fused call also back-propagates zeros through the real half,
about one discriminator pass per image wasted (measured at batch 8, bfloat16: separate calls ~9% less CPU
time per image). With batch norm the two calls are always separate so real and fake statistics never mix,
as in the tutorial.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.losses import adversarial
from reface_tf.losses.terms import LossTerm


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


# Largest per-replica batch at which real and fake pairs share one discriminator call (see the module doc).
FUSE_MAX_BATCH = 2


def make_optimizer(lr: float, cfg: Config) -> keras.optimizers.Optimizer:
    opt = FusedAdam(learning_rate=lr, beta_1=cfg.optim.beta1, beta_2=cfg.optim.beta2)
    if cfg.runtime.precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def make_train_step(generator: keras.Model, discriminator: keras.Model, g_opt: keras.optimizers.Optimizer,
                    d_opt: keras.optimizers.Optimizer, terms: list[LossTerm], cfg: Config,
                    strategy: tf.distribute.Strategy, global_batch: int) -> Callable[[object], dict[str, tf.Tensor]]:
    """Return ``step(distributed_batch) -> {name: scalar}`` (losses averaged over the global batch)."""
    kind, lambda_adv = cfg.loss.adversarial, cfg.loss.lambda_adv
    per_replica_batch = max(1, global_batch // strategy.num_replicas_in_sync)
    fuse_discriminator = cfg.model.norm != "batch" and per_replica_batch <= FUSE_MAX_BATCH
    scaled = cfg.runtime.precision == "mixed_float16"

    def average(per_example: tf.Tensor) -> tf.Tensor:
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)

    def replica_step(inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(inputs, training=True)
            if fuse_discriminator:
                logits = discriminator([tf.concat([inputs, inputs], 0), tf.concat([targets, tf.cast(fake, targets.dtype)], 0)], training=True)
                real_logits, fake_logits = tf.split(logits, 2, axis=0)
            else:
                real_logits = discriminator([inputs, targets], training=True)
                fake_logits = discriminator([inputs, fake], training=True)
            logs = {"g_adv": average(adversarial.generator_loss(kind, fake_logits))}
            g_total = lambda_adv * logs["g_adv"]
            for term in terms:
                logs[term.name] = average(term(inputs, fake, targets))
                g_total += term.weight * logs[term.name]
            d_total = average(adversarial.discriminator_loss(kind, real_logits, fake_logits))
            g_loss = g_opt.scale_loss(g_total) if scaled else g_total
            d_loss = d_opt.scale_loss(d_total) if scaled else d_total
        g_grads = g_tape.gradient(g_loss, generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, discriminator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        n = tf.cast(tf.shape(inputs)[0], tf.float32)
        # Weighted so that the SUM over replicas is the global mean.
        decisions = {k: tf.reduce_mean(v) * n / global_batch
                     for k, v in adversarial.decision_stats(kind, real_logits, fake_logits).items()}
        logs.update(g_total=g_total, d_total=d_total, **decisions)
        return logs

    # XLA compiles one device's program: with several replicas compile the per-replica step, not the
    # cross-replica function (which would place every replica's variables on the first device).
    multi = strategy.num_replicas_in_sync > 1
    replica_fn = tf.function(replica_step, jit_compile=True) if cfg.runtime.jit and multi else replica_step

    @tf.function(jit_compile=(cfg.runtime.jit and not multi) or None)
    def step(batch: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_fn, args=batch)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    return step
