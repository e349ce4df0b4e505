"""U-Net generator of Pix2Pix (Isola et al. 2017), as in the TensorFlow tutorial.

Depth 8 with 64 base filters and batch norm is exactly the tutorial's network (54,425,859 parameters);
depth 7 is the seed project's. Encoder block i has ``base * min(2**i, 8)`` filters; the decoder mirrors it
with skip connections, and the innermost ``dropout_blocks`` decoder blocks use dropout.

Example::

    g = build_unet_generator(image_size=256, depth=8)
    y = g(tf.zeros([1, 256, 256, 3]), training=False)   # [-1, 1], float32
"""

from __future__ import annotations

import keras

from reface_tf.models.layers import conv_init, normalization


def build_unet_generator(image_size: int = 256, input_channels: int = 3, output_channels: int = 3, depth: int = 8,
                         base_filters: int = 64, norm: str = "batch", dropout: float = 0.5, dropout_blocks: int = 3,
                         seed: int | None = None, name: str = "generator") -> keras.Model:
    init = conv_init(seed)
    filters = [base_filters * min(2 ** i, 8) for i in range(depth)]
    inputs = keras.Input(shape=(image_size, image_size, input_channels), name="input_image")

    x, skips, size = inputs, [], image_size
    for i, f in enumerate(filters):
        size //= 2
        x = keras.layers.Conv2D(f, 4, strides=2, padding="same", kernel_initializer=init, use_bias=False, name=f"down{i}_conv")(x)
        norm_layer = normalization(norm, size, f"down{i}_norm") if i > 0 else None  # no norm on the outermost block
        if norm_layer is not None:
            x = norm_layer(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)
        skips.append(x)

    for j, (f, skip) in enumerate(zip(reversed(filters[:-1]), reversed(skips[:-1]))):
        size *= 2
        x = keras.layers.Conv2DTranspose(f, 4, strides=2, padding="same", kernel_initializer=init, use_bias=False, name=f"up{j}_deconv")(x)
        norm_layer = normalization(norm, size, f"up{j}_norm")
        if norm_layer is not None:
            x = norm_layer(x)
        if j < dropout_blocks and dropout > 0:
            x = keras.layers.Dropout(dropout, seed=None if seed is None else seed + j, name=f"up{j}_dropout")(x)
        x = keras.layers.ReLU(name=f"up{j}_relu")(x)
        x = keras.layers.Concatenate(name=f"up{j}_skip")([x, skip])

    x = keras.layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same", kernel_initializer=init, name="out_deconv")(x)
    # float32 output even under a mixed policy: losses and metrics are computed in float32.
    outputs = keras.layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
    return keras.Model(inputs, outputs, name=name)
