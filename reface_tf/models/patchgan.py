"""PatchGAN discriminator conditioned on the input image, as in Pix2Pix / the TensorFlow tutorial.

The input and the (real or generated) target are concatenated on channels; ``n_layers`` strided
convolutions, one stride-1 convolution and a 1-channel stride-1 convolution give one logit per patch.
``n_layers=3`` with 64 base filters and batch norm is the tutorial's 70x70 PatchGAN (2,770,433 parameters).

Example::

    d = build_patchgan(image_size=256)
    logits = d([x, y], training=False)   # [N, 30, 30, 1] float32 logits
"""

from __future__ import annotations

import keras

from reface_tf.models.layers import conv_init, normalization


def build_patchgan(image_size: int = 256, input_channels: int = 3, target_channels: int = 3, n_layers: int = 3,
                   base_filters: int = 64, norm: str = "batch", spectral_norm: bool = False,
                   seed: int | None = None, name: str = "discriminator") -> keras.Model:
    init = conv_init(None if seed is None else seed + 1000)

    def conv(filters: int, strides: int, use_bias: bool, layer_name: str) -> keras.layers.Layer:
        layer = keras.layers.Conv2D(filters, 4, strides=strides, padding="same" if strides == 2 else "valid",
                                    kernel_initializer=init, use_bias=use_bias, name=layer_name)
        return keras.layers.SpectralNormalization(layer, name=f"{layer_name}_sn") if spectral_norm else layer

    inp = keras.Input(shape=(image_size, image_size, input_channels), name="input_image")
    tar = keras.Input(shape=(image_size, image_size, target_channels), name="target_image")
    x = keras.layers.Concatenate(name="condition")([inp, tar])

    size = image_size
    for i in range(n_layers):
        size //= 2
        x = conv(base_filters * min(2 ** i, 8), 2, False, f"down{i}_conv")(x)
        norm_layer = normalization(norm, size, f"down{i}_norm") if i > 0 else None
        if norm_layer is not None:
            x = norm_layer(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i}_lrelu")(x)

    x = keras.layers.ZeroPadding2D(name="pad0")(x)
    x = conv(base_filters * min(2 ** n_layers, 8), 1, False, "conv")(x)
    norm_layer = normalization(norm, size, "norm")
    if norm_layer is not None:
        x = norm_layer(x)
    x = keras.layers.LeakyReLU(0.2, name="lrelu")(x)
    x = keras.layers.ZeroPadding2D(name="pad1")(x)
    x = conv(1, 1, True, "logits_conv")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model([inp, tar], outputs, name=name)
