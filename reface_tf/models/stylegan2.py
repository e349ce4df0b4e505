"""Class-conditional StyleGAN2 (Karras et al. 2020) in Keras 3: mapping network, skip-architecture synthesis
network and residual discriminator, as NVlabs/stylegan2-ada describes them (config ``auto``), with no custom ops.

* Mapping: z normalised to unit second moment; for conditional models the one-hot class goes through an
  equalised embedding, is normalised too and concatenated; ``mapping_layers`` FC layers with lr multiplier 0.01.
  The average w is tracked during training (decay 0.995) for the truncation trick.
* Synthesis: a learned 4x4 constant, then per resolution two modulated 3x3 convs (the first upsamples x2), each
  with noise of learned strength; every resolution's toRGB output is added to the upsampled image so far (skip).
  ``num_ws = 2 log2(res) - 2`` style vectors; style mixing passes different ws to different layers.
* Discriminator: fromRGB at full resolution, residual blocks (two 3x3 convs, the second down-sampling, plus a
  1x1 down-sampled skip, summed times sqrt(1/2)) down to 4x4, minibatch standard deviation, conv, FC, and either
  one logit or, conditional, the projection of its ``cmap_dim`` features on the embedded class (sum / sqrt(dim)).

Channels at resolution r: ``min(channel_base // r, channel_max)`` (the reference: 32768 * fmaps, max 512).
Mixed precision follows the reference: under a mixed policy only the ``mixed_resolutions`` highest resolutions
compute in 16 bits, with their activations clamped to +-256; everything else, and the mapping, stays float32.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from reface_tf.models.equalized import (EqualConv2D, EqualDense, ModulatedConv2D, minibatch_stddev, normalize_2nd_moment,
                                        upsample2x)

CONV_CLAMP = 256.0
W_AVG_BETA = 0.995
MBSTD_GROUP = 4


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def block_resolutions(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


def block_policy(res: int, resolution: int, mixed_resolutions: int) -> str:
    """The dtype policy of the block at ``res``: the global (mixed) policy for the highest ones, else float32."""
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32" or res < resolution // 2 ** (mixed_resolutions - 1) or mixed_resolutions == 0:
        return "float32"
    return policy


def track(owner: keras.layers.Layer, layer: keras.layers.Layer) -> keras.layers.Layer:
    """Make ``layer`` an attribute of ``owner`` under its name, so checkpoints find it."""
    setattr(owner, f"layer_{layer.name}", layer)
    return layer


class MappingNetwork(keras.layers.Layer):
    def __init__(self, z_dim: int, w_dim: int, num_classes: int, layers: int, num_ws: int, lr_mul: float = 0.01,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.z_dim, self.w_dim, self.num_classes, self.num_ws = z_dim, w_dim, num_classes, num_ws
        self.embed = EqualDense(w_dim, seed=seed, dtype="float32", name="embed") if num_classes else None
        # Layers as attributes: tf.train.Checkpoint tracks attributes, not layers inside Python containers.
        self.fcs = tuple(track(self, EqualDense(w_dim, lr_mul=lr_mul, activation="lrelu", seed=seed + 1 + i,
                                                     dtype="float32", name=f"fc{i}"))
                         for i in range(layers))

    def build(self, input_shape):
        x_dim = self.z_dim + (self.w_dim if self.num_classes else 0)
        for i, fc in enumerate(self.fcs):
            fc.build((None, x_dim if i == 0 else self.w_dim))
        if self.embed is not None:
            self.embed.build((None, self.num_classes))
        self.w_avg = self.add_weight(name="w_avg", shape=(self.w_dim,), initializer="zeros", trainable=False)

    def call(self, z, classes=None, truncation=None, training=False):
        x = normalize_2nd_moment(tf.cast(z, tf.float32))
        if self.embed is not None:
            c = self.embed(tf.one_hot(tf.cast(classes, tf.int32), self.num_classes))
            x = tf.concat([x, normalize_2nd_moment(c)], axis=1)
        for fc in self.fcs:
            x = fc(x)
        if training:  # the running mean of w, kept for truncation (not trained)
            self.w_avg.assign(tf.reduce_mean(x, axis=0) + W_AVG_BETA * (self.w_avg - tf.reduce_mean(x, axis=0)))
        if truncation is not None:
            x = self.w_avg + tf.cast(truncation, tf.float32) * (x - self.w_avg)
        return tf.tile(x[:, None, :], [1, self.num_ws, 1])


class SynthesisNetwork(keras.layers.Layer):
    def __init__(self, resolution: int, w_dim: int, channel_base: int, channel_max: int, mixed_resolutions: int = 0,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.resolution, self.w_dim = resolution, w_dim
        self.blocks = []  # per resolution: (policy, [conv layers], torgb)
        salt = 0
        for res in block_resolutions(resolution):
            policy = block_policy(res, resolution, mixed_resolutions)
            clamp = CONV_CLAMP if policy != "float32" else None
            ch = channels_at(res, channel_base, channel_max)
            convs = []
            if res > 4:
                convs.append(track(self, ModulatedConv2D(ch, 3, up=True, resolution=res, clamp=clamp, salt=salt, seed=seed + salt,
                                                         dtype=policy, name=f"b{res}_conv0")))
                salt += 2
            convs.append(track(self, ModulatedConv2D(ch, 3, resolution=res, clamp=clamp, salt=salt, seed=seed + salt,
                                                     dtype=policy, name=f"b{res}_conv1")))
            salt += 2
            torgb = track(self, ModulatedConv2D(3, 1, demodulate=False, activation="linear", noise=False, clamp=clamp,
                                                seed=seed + 500 + res, dtype=policy, name=f"b{res}_torgb"))
            self.blocks.append((res, policy, tuple(convs), torgb))
        self.num_ws = sum(len(convs) for _, _, convs, _ in self.blocks) + 1
        self.const_channels = channels_at(4, channel_base, channel_max)

    def build(self, input_shape):
        self.const = self.add_weight(name="const", shape=(1, 4, 4, self.const_channels),
                                     initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=7))
        w_shape = (None, self.w_dim)
        cin = self.const_channels
        for res, _, convs, torgb in self.blocks:
            for conv in convs:
                conv.build(((None, res // (2 if conv.up else 1), res // (2 if conv.up else 1), cin), w_shape))
                cin = conv.filters
            torgb.build(((None, res, res, cin), w_shape))

    def call(self, ws, noise_seed=None):
        n = tf.shape(ws)[0]
        x = tf.tile(self.const, [n, 1, 1, 1])
        img = None
        i = 0
        for res, policy, convs, torgb in self.blocks:
            dtype = tf.bfloat16 if "bfloat16" in policy else tf.float16 if "float16" in policy else tf.float32
            x = tf.cast(x, dtype)
            for conv in convs:
                x = conv((x, ws[:, i]), noise_seed=noise_seed)
                i += 1
            y = tf.cast(torgb((x, ws[:, i]), noise_seed=None), tf.float32)
            img = y if img is None else upsample2x(img) + y
        return img


class StyleGAN2Generator(keras.Model):
    """``generator({"z", "class"})`` -> images in [-1, 1]-ish (not squashed; the reference clips only when saving)."""

    def __init__(self, resolution: int, z_dim: int = 512, w_dim: int = 512, num_classes: int = 0, mapping_layers: int = 2,
                 channel_base: int = 16384, channel_max: int = 512, mixed_resolutions: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.resolution, self.z_dim, self.num_classes = resolution, z_dim, num_classes
        self.synthesis = SynthesisNetwork(resolution, w_dim, channel_base, channel_max, mixed_resolutions, seed=seed + 100,
                                          dtype="float32", name="synthesis")
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, num_classes, mapping_layers, self.num_ws, seed=seed, dtype="float32",
                                      name="mapping")
        self.mapping.build(None)
        self.synthesis.build(None)

    def call(self, inputs, truncation=None, noise_seed=None, training=False):
        ws = self.mapping(inputs["z"], inputs.get("class"), truncation=truncation, training=training)
        return self.synthesis(ws, noise_seed=noise_seed)


class StyleGAN2Discriminator(keras.Model):
    """``discriminator({"image", "class"})`` -> logits ``[N, 1]``."""

    def __init__(self, resolution: int, num_classes: int = 0, channel_base: int = 16384, channel_max: int = 512,
                 cmap_dim: int | None = None, mbstd_group: int = MBSTD_GROUP, mixed_resolutions: int = 0, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.resolution, self.num_classes, self.mbstd_group = resolution, num_classes, mbstd_group
        ch = lambda r: channels_at(r, channel_base, channel_max)
        top_policy = block_policy(resolution, resolution, mixed_resolutions)
        self.fromrgb = EqualConv2D(ch(resolution), 1, activation="lrelu", seed=seed, dtype=top_policy, name="fromrgb")
        self.blocks = []
        for res in reversed(block_resolutions(resolution)[1:]):
            policy = block_policy(res, resolution, mixed_resolutions)
            clamp = CONV_CLAMP if policy != "float32" else None
            self.blocks.append((policy,
                                track(self, EqualConv2D(ch(res), 3, activation="lrelu", clamp=clamp, seed=seed + res, dtype=policy,
                                                        name=f"b{res}_conv0")),
                                track(self, EqualConv2D(ch(res // 2), 3, down=True, activation="lrelu", clamp=clamp,
                                                        seed=seed + res + 1, dtype=policy, name=f"b{res}_conv1")),
                                track(self, EqualConv2D(ch(res // 2), 1, down=True, use_bias=False, seed=seed + res + 2,
                                                        dtype=policy, name=f"b{res}_skip"))))
        c4 = ch(4)
        self.cmap_dim = (cmap_dim or c4) if num_classes else 0
        self.epilogue_conv = EqualConv2D(c4, 3, activation="lrelu", seed=seed + 1, dtype="float32", name="b4_conv")
        self.epilogue_fc = EqualDense(c4, activation="lrelu", seed=seed + 2, dtype="float32", name="b4_fc")
        self.out = EqualDense(self.cmap_dim or 1, seed=seed + 3, dtype="float32", name="b4_out")
        self.embed = EqualDense(self.cmap_dim, seed=seed + 4, dtype="float32", name="cmap_embed") if num_classes else None
        self(self._dummy())

    def _dummy(self):
        r = self.resolution
        return {"image": tf.zeros([self.mbstd_group, r, r, 3]), "class": tf.zeros([self.mbstd_group], tf.int32)}

    def call(self, inputs, training=False):
        x = self.fromrgb(inputs["image"])
        for policy, conv0, conv1, skip in self.blocks:
            dtype = tf.bfloat16 if "bfloat16" in policy else tf.float16 if "float16" in policy else tf.float32
            x = tf.cast(x, dtype)
            y = skip(x)
            x = conv1(conv0(x))
            x = (x + y) * tf.cast(math.sqrt(0.5), x.dtype)
        x = minibatch_stddev(tf.cast(x, tf.float32), self.mbstd_group)
        x = self.epilogue_conv(x)
        x = self.epilogue_fc(tf.reshape(x, [tf.shape(x)[0], -1]))
        x = self.out(x)
        if self.embed is not None:  # projection discriminator: score = <features, embedded class> / sqrt(dim)
            cmap = normalize_2nd_moment(self.embed(tf.one_hot(tf.cast(inputs["class"], tf.int32), self.num_classes)))
            x = tf.reduce_sum(x * cmap, axis=1, keepdims=True) / np.sqrt(self.cmap_dim)
        return tf.cast(x, tf.float32)
