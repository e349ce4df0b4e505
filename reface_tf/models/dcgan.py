"""DCGAN (Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs").

Generator: z -> a 4x4 grid (the paper's projection, a dense layer here; the PyTorch reference's 4x4 transposed
convolution of a 1x1 input is the same map) -> stride-2 4x4 transposed convolutions halving the channels, each
with batch norm and ReLU -> a last transposed convolution to RGB with tanh. Discriminator: stride-2 4x4
convolutions doubling the channels with LeakyReLU 0.2 (batch norm on all but the first) down to 4x4, then a 4x4
valid convolution to one logit. Weights N(0, 0.02), batch-norm scales N(1, 0.02), as the paper; batch-norm
momentum 0.9 (PyTorch's 0.1) and epsilon 1e-5, so the moving statistics follow training as in the reference.

64 px: 4 transposed convolutions from ``8 * filters`` channels; 128 px: 5 from ``16 * filters``.
"""

from __future__ import annotations

import math

import keras

from reface_tf.models.layers import conv_init

BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5
RESOLUTIONS = (32, 64, 128, 256)


def upsamplings(resolution: int) -> int:
    """Stride-2 layers between the 4x4 grid and ``resolution`` (a power of two, at least 8)."""
    steps = math.log2(resolution) - 2
    if resolution < 8 or not steps.is_integer():
        raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {resolution}")
    return int(steps)


def _batch_norm(name: str, seed: int) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name,
                                           gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02, seed=seed))


def build_dcgan_generator(resolution: int = 64, latent_dim: int = 100, filters: int = 64, seed: int = 0,
                          name: str = "generator") -> keras.Model:
    """``z [N, latent_dim] -> image [N, resolution, resolution, 3]`` in [-1, 1] (float32 under every policy)."""
    steps = upsamplings(resolution)
    channels = filters * 2 ** (steps - 1)
    z = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(4 * 4 * channels, use_bias=False, kernel_initializer=conv_init(seed), name="project")(z)
    x = keras.layers.Reshape((4, 4, channels), name="grid")(x)
    x = keras.layers.ReLU(name="project_relu")(_batch_norm("project_bn", seed + 1)(x))
    for i in range(steps - 1):
        channels //= 2
        x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=conv_init(seed + 2 + 2 * i), name=f"up{i}")(x)
        x = keras.layers.ReLU(name=f"up{i}_relu")(_batch_norm(f"up{i}_bn", seed + 3 + 2 * i)(x))
    x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=conv_init(seed + 2 * steps + 2),
                                     name="to_rgb")(x)
    image = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(z, image, name=name)


def build_dcgan_discriminator(resolution: int = 64, filters: int = 64, seed: int = 1000,
                              batch_norm: bool = True) -> keras.Model:
    """``image [N, resolution, resolution, 3] -> logit [N, 1]`` (float32)."""
    steps = upsamplings(resolution)
    image = keras.Input((resolution, resolution, 3), name="image")
    x = image
    for i in range(steps):
        x = keras.layers.Conv2D(filters * 2 ** min(i, 3 + (resolution > 64)), 4, strides=2, padding="same",
                                use_bias=not (batch_norm and i > 0), kernel_initializer=conv_init(seed + 2 * i), name=f"down{i}")(x)
        if batch_norm and i > 0:
            x = _batch_norm(f"down{i}_bn", seed + 2 * i + 1)(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
    x = keras.layers.Conv2D(1, 4, padding="valid", kernel_initializer=conv_init(seed + 2 * steps), name="logit")(x)
    logit = keras.layers.Flatten(dtype="float32", name="flatten")(x)
    return keras.Model(image, logit, name="discriminator")
