"""Adversarial losses on PatchGAN logits: vanilla BCE (Pix2Pix / TF tutorial), least squares, hinge.

Each function returns per-example losses (``[N]``, float32), averaged over the patches.
The discriminator loss is real term + fake term, as in the tutorial (no 1/2 factor). Logits may be one tensor
or a list of tensors, one per discriminator scale (multi-scale discriminators): the losses of the scales are
summed, as in pix2pixHD and SPADE; ``decision_stats`` averages the scales.
"""

from __future__ import annotations

import tensorflow as tf

from reface_tf.losses.terms import per_example_mean


def _bce(logits: tf.Tensor, label: float) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return per_example_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits))


def _scales(logits) -> list:
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def _over_scales(fn, *logits) -> tf.Tensor:
    scales = [_scales(x) for x in logits]
    if len({len(s) for s in scales}) != 1:
        raise ValueError(f"real and fake logits have different numbers of scales: {[len(s) for s in scales]}")
    return tf.add_n([fn(*per_scale) for per_scale in zip(*scales)])


def discriminator_loss(kind: str, real_logits, fake_logits) -> tf.Tensor:
    return _over_scales(lambda r, f: _discriminator_loss(kind, r, f), real_logits, fake_logits)


def generator_loss(kind: str, fake_logits) -> tf.Tensor:
    return _over_scales(lambda f: _generator_loss(kind, f), fake_logits)


def _discriminator_loss(kind: str, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    real, fake = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
    if kind == "bce":
        return _bce(real, 1.0) + _bce(fake, 0.0)
    if kind == "lsgan":
        return per_example_mean(tf.square(real - 1.0)) + per_example_mean(tf.square(fake))
    if kind == "hinge":
        return per_example_mean(tf.nn.relu(1.0 - real)) + per_example_mean(tf.nn.relu(1.0 + fake))
    raise ValueError(f"unknown adversarial loss {kind!r}")


def _generator_loss(kind: str, fake_logits: tf.Tensor) -> tf.Tensor:
    fake = tf.cast(fake_logits, tf.float32)
    if kind == "bce":
        return _bce(fake, 1.0)
    if kind == "lsgan":
        return per_example_mean(tf.square(fake - 1.0))
    if kind == "hinge":
        return per_example_mean(-fake)
    raise ValueError(f"unknown adversarial loss {kind!r}")


# The output value that separates "real" from "fake" decisions: logit 0 (probability 1/2) for bce, the midpoint of
# the targets 0 and 1 for lsgan, the margin centre 0 for hinge.
DECISION_THRESHOLD = {"bce": 0.0, "lsgan": 0.5, "hinge": 0.0}


def decision_stats(kind: str, real_logits, fake_logits) -> dict[str, tf.Tensor]:
    reals, fakes = _scales(real_logits), _scales(fake_logits)
    per_scale = [_decision_stats(kind, r, f) for r, f in zip(reals, fakes)]
    return {k: tf.add_n([s[k] for s in per_scale]) / len(per_scale) for k in per_scale[0]}


def _decision_stats(kind: str, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> dict[str, tf.Tensor]:
    """What the discriminator's outputs mean, per example (float32 ``[N]``).

    ``d_real`` / ``d_fake``: the mean output on real and generated pairs, as a probability (sigmoid) for bce,
    whose outputs are logits, and raw for lsgan and hinge, whose outputs are scores with targets 1/0 and +1/-1.
    ``d_accuracy``: the share of patches the discriminator decides correctly (real above the threshold, fake
    below it), half from the real and half from the generated pairs; 0.5 is a discriminator that is guessing.
    """
    real, fake = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
    if kind not in DECISION_THRESHOLD:
        raise ValueError(f"unknown adversarial loss {kind!r}")
    threshold = DECISION_THRESHOLD[kind]
    show = tf.sigmoid if kind == "bce" else tf.identity
    correct = 0.5 * (per_example_mean(tf.cast(real > threshold, tf.float32))
                     + per_example_mean(tf.cast(fake <= threshold, tf.float32)))
    return {"d_real": per_example_mean(show(real)), "d_fake": per_example_mean(show(fake)), "d_accuracy": correct}
