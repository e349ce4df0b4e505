"""Discriminator feature matching (pix2pixHD, SPADE): L1 between the discriminator's intermediate feature maps
of the generated and of the real image, the real ones held constant.

``scales`` are the discriminator's outputs per scale, each a list of feature maps ending with the logits (which
are left out). Per scale the layers' distances are summed; the scales are averaged, as NVlabs/SPADE does.
"""

from __future__ import annotations

import tensorflow as tf

from reface_tf.losses.terms import per_example_mean


def feature_matching(real_scales, fake_scales) -> tf.Tensor:
    """Per-example loss ``[N]`` (float32)."""
    if len(real_scales) != len(fake_scales) or not real_scales:
        raise ValueError(f"real and fake features have {len(real_scales)} and {len(fake_scales)} scales")
    per_scale = []
    for real, fake in zip(real_scales, fake_scales):
        per_scale.append(tf.add_n([per_example_mean(tf.abs(tf.cast(f, tf.float32) - tf.stop_gradient(tf.cast(r, tf.float32))))
                                   for r, f in zip(real[:-1], fake[:-1])]))
    return tf.add_n(per_scale) / len(per_scale)
