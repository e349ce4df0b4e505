"""An Inception-ResNet-style image encoder: a face in [-1, 1] -> a latent vector (the age editor's encoder).

Seed 002 encodes photos with InceptionResNetV1 (Szegedy et al. 2017, the FaceNet backbone). That network's stem
needs at least 75 px and its 23 M weights are sized for 160 px; this one keeps its building block at the
resolutions a CPU demo trains (32-128 px):

* stem: 3x3 conv at full resolution;
* per stage, ``blocks`` Inception-ResNet-A blocks: three parallel branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3)
  concatenated, projected back by a linear 1x1 and added to the input scaled by 0.17 (the paper's residual
  scaling, which keeps deep residual stacks stable from the first step), then ReLU;
* a reduction between stages: a strided 3x3 conv branch and a max-pool branch side by side, halving the size and
  doubling the width, until 4x4;
* global average pooling and one linear layer to ``out_dim``.

Batch norm follows every convolution but the residual projections (as in the paper). Example::

    encoder = build_inception_resnet_encoder(64, 128)
    z = encoder(images)   # [N, 64, 64, 3] float in [-1, 1] -> [N, 128] float32
"""

from __future__ import annotations

import math

import keras
from keras import layers

RESIDUAL_SCALE = 0.17  # Inception-ResNet-A's scaling of the residual branch


class _Seeds:
    """Distinct initialiser seeds per layer from one model seed, so a model is the same for the same seed."""

    def __init__(self, seed: int):
        self.next = seed * 1009

    def __call__(self):
        self.next += 1
        return keras.initializers.GlorotUniform(seed=self.next)


def _conv_bn(x, filters: int, kernel: int, seeds: _Seeds, strides: int = 1, name: str = ""):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, kernel_initializer=seeds(),
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _block_a(x, channels: int, seeds: _Seeds, name: str):
    branch = max(channels // 4, 8)
    b0 = _conv_bn(x, branch, 1, seeds, name=f"{name}_b0")
    b1 = _conv_bn(_conv_bn(x, branch, 1, seeds, name=f"{name}_b1a"), branch, 3, seeds, name=f"{name}_b1b")
    b2 = _conv_bn(x, branch, 1, seeds, name=f"{name}_b2a")
    b2 = _conv_bn(_conv_bn(b2, branch, 3, seeds, name=f"{name}_b2b"), branch, 3, seeds, name=f"{name}_b2c")
    mixed = layers.Concatenate(name=f"{name}_concat")([b0, b1, b2])
    up = layers.Conv2D(channels, 1, padding="same", kernel_initializer=seeds(), name=f"{name}_project")(mixed)
    x = layers.Add(name=f"{name}_add")([x, layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(up)])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _reduction(x, channels: int, seeds: _Seeds, name: str):
    conv = _conv_bn(x, channels // 2, 3, seeds, strides=2, name=f"{name}_stride")
    pool = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    x = layers.Concatenate(name=f"{name}_concat")([conv, pool])
    return _conv_bn(x, channels, 1, seeds, name=f"{name}_mix")


def build_inception_resnet_encoder(image_size: int, out_dim: int, width: int = 32, blocks: int = 1, max_width: int = 256,
                                   seed: int = 0, name: str = "encoder") -> keras.Model:
    """The encoder for square ``image_size`` RGB inputs (a power of two, at least 8) to ``out_dim`` floats;
    ``width`` channels at full resolution, doubled per stage up to ``max_width``."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two of at least 8, got {image_size}")
    seeds = _Seeds(seed)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    channels = width
    x = _conv_bn(inputs, channels, 3, seeds, name="stem")
    for stage in range(int(math.log2(image_size // 4)) + 1):
        for k in range(blocks):
            x = _block_a(x, channels, seeds, name=f"s{stage}_block{k}")
        if x.shape[1] > 4:
            channels = min(channels * 2, max_width)
            x = _reduction(x, channels, seeds, name=f"s{stage}_reduce")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(out_dim, kernel_initializer=seeds(), dtype="float32", name="latent")(x)
    return keras.Model(inputs, outputs, name=name)
