"""SPADE (Park et al. 2019): a generator whose every normalisation is modulated by the segmentation map, a
multiscale PatchGAN discriminator that returns its feature maps, and the optional VAE style encoder.

Generator: ``z`` → Dense → a ``16 * filters`` grid of ``image_size / 2**num_upsampling`` pixels → a SPADE
residual block at that grid, then ``num_upsampling`` times (nearest ×2 upsampling, SPADE residual block)
with widths ``filters * min(16, 2**(num_upsampling - 1 - i))`` → leaky ReLU, 3x3 conv, tanh. A SPADE layer is
a parameter-free instance norm whose scale and shift are convolutions of the map resized (nearest) to the
layer's grid: ``norm(x) * (1 + gamma(map)) + beta(map)``. The residual blocks' convolutions carry spectral
normalisation (``spectral_norm``); a block whose width changes has a learned 1x1 shortcut.

Discriminator: ``num_scales`` PatchGANs on (one-hot map ‖ image), each scale seeing the input averaged down
by 2 from the previous one; each returns its ``layers`` intermediate feature maps and its logits (the last
item), for the hinge loss and discriminator feature matching.

Encoder: stride-2 3x3 convolutions down to a 4x4 grid (instance norm, leaky ReLU), then two Dense heads
``mu`` and ``logvar`` of ``z_dim``: a style image's latent, ``z = mu + exp(logvar / 2) * eps``.

Where this departs from NVlabs/SPADE: one residual block per grid (NVlabs has two "middle" blocks at the
second grid); the first grid always comes from ``z`` (NVlabs without its encoder convolves the downsampled map
instead), so a map can be drawn as several faces; the scales' average pooling pads as TensorFlow's ``same``
(NVlabs excludes the padding from the average too, but pads both sides); and Keras' spectral normalisation keeps
the kernel normalised in place, where PyTorch's divides a raw weight at each forward pass.

Example::

    g = build_spade_generator(image_size=64, num_classes=19, z_dim=64, filters=16, num_upsampling=4)
    image = g([one_hot_map, z])                         # [N, 64, 64, 3] in [-1, 1]
    d = build_spade_discriminator(64, 19)
    scales = per_scale(d([one_hot_map, image]))         # [[f0, f1, f2, f3, logits], [..]] per scale
"""

from __future__ import annotations

import keras
import tensorflow as tf

from reface_tf.models.layers import conv_init

# Output widths are filters * min(MAX_WIDTH_FACTOR, 2**k), as NVlabs/SPADE's 16 * ngf at the coarsest grid.
MAX_WIDTH_FACTOR = 16
ENCODER_GRID = 4


class Initializers:
    """A distinct seeded N(0, 0.02) initializer per layer: one seeded initializer shared by two layers of one
    shape would start them equal."""

    def __init__(self, seed: int | None):
        self.seed, self.count = seed, 0

    def __call__(self) -> keras.initializers.Initializer:
        self.count += 1
        return conv_init(None if self.seed is None else self.seed * 10_007 + self.count)


def instance_norm(name: str) -> keras.layers.Layer:
    """Parameter-free instance normalisation (the affine part is SPADE's, or none)."""
    return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False, name=name)


def _sn(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn") if spectral_norm else layer


def seed_power_iterations(model: keras.Model, seed: int | None) -> keras.Model:
    """Draw the power-iteration vectors of the spectral normalisations from ``seed``: Keras draws them unseeded,
    so two builds with one seed would otherwise differ in them."""
    if seed is not None:
        for k, layer in enumerate(l for l in model.layers if isinstance(l, keras.layers.SpectralNormalization)):
            u = layer.vector_u
            u.assign(keras.random.truncated_normal(u.shape, stddev=0.02, seed=seed * 10_007 + 5_000 + k, dtype=u.dtype))
    return model


class SPADE(keras.layers.Layer):
    """``norm(x) * (1 + gamma(map)) + beta(map)`` with the map resized (nearest) to x's grid."""

    def __init__(self, channels: int, hidden: int, inits: Initializers, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.norm = instance_norm(f"{self.name}_norm")
        self.shared = keras.layers.Conv2D(hidden, kernel_size, padding="same", activation="relu",
                                          kernel_initializer=inits(), name=f"{self.name}_shared")
        self.gamma = keras.layers.Conv2D(channels, kernel_size, padding="same", kernel_initializer=inits(),
                                         name=f"{self.name}_gamma")
        self.beta = keras.layers.Conv2D(channels, kernel_size, padding="same", kernel_initializer=inits(),
                                        name=f"{self.name}_beta")

    def build(self, input_shape):
        x_shape, map_shape = input_shape
        hidden_shape = (*x_shape[:3], map_shape[-1])
        self.norm.build(x_shape)
        self.shared.build(hidden_shape)
        self.gamma.build(self.shared.compute_output_shape(hidden_shape))
        self.beta.build(self.shared.compute_output_shape(hidden_shape))

    def call(self, inputs):
        x, segmap = inputs
        segmap = tf.image.resize(tf.cast(segmap, x.dtype), tf.shape(x)[1:3], method="nearest")
        actv = self.shared(segmap)
        return self.norm(x) * (1.0 + self.gamma(actv)) + self.beta(actv)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def spade_resblock(x, segmap, filters: int, hidden: int, spectral_norm: bool, name: str, inits: Initializers):
    """SPADE residual block: two (SPADE, leaky ReLU, 3x3 conv) with a middle width of min(in, out); a learned
    (SPADE, 1x1 conv without bias) shortcut when the width changes."""
    fin = x.shape[-1]
    middle = min(fin, filters)
    if fin != filters:
        shortcut = SPADE(fin, hidden, inits, name=f"{name}_spade_s")([x, segmap])
        shortcut = _sn(keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=inits(), name=f"{name}_conv_s"),
                       spectral_norm)(shortcut)
    else:
        shortcut = x
    dx = SPADE(fin, hidden, inits, name=f"{name}_spade_0")([x, segmap])
    dx = keras.layers.LeakyReLU(0.2, name=f"{name}_act_0")(dx)
    dx = _sn(keras.layers.Conv2D(middle, 3, padding="same", kernel_initializer=inits(), name=f"{name}_conv_0"),
             spectral_norm)(dx)
    dx = SPADE(middle, hidden, inits, name=f"{name}_spade_1")([dx, segmap])
    dx = keras.layers.LeakyReLU(0.2, name=f"{name}_act_1")(dx)
    dx = _sn(keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=inits(), name=f"{name}_conv_1"),
             spectral_norm)(dx)
    return keras.layers.Add(name=f"{name}_add")([shortcut, dx])


def generator_widths(filters: int, num_upsampling: int) -> list[int]:
    """Widths of the head block and of the block after each upsampling."""
    return [filters * MAX_WIDTH_FACTOR] + [filters * min(MAX_WIDTH_FACTOR, 2 ** (num_upsampling - 1 - i))
                                           for i in range(num_upsampling)]


def build_spade_generator(image_size: int = 256, num_classes: int = 19, z_dim: int = 256, filters: int = 64,
                          num_upsampling: int = 5, hidden: int = 128, spectral_norm: bool = True,
                          seed: int | None = None, name: str = "generator") -> keras.Model:
    grid = image_size // 2 ** num_upsampling
    if grid < 1 or grid * 2 ** num_upsampling != image_size:
        raise ValueError(f"image size {image_size} is not a multiple of 2**num_upsampling = {2 ** num_upsampling}")
    widths = generator_widths(filters, num_upsampling)
    segmap = keras.Input((image_size, image_size, num_classes), name="segmap")
    z = keras.Input((z_dim,), name="z")
    inits = Initializers(seed)
    x = keras.layers.Dense(grid * grid * widths[0], kernel_initializer=inits(), name="fc")(z)
    x = keras.layers.Reshape((grid, grid, widths[0]), name="fc_grid")(x)
    x = spade_resblock(x, segmap, widths[0], hidden, spectral_norm, "head", inits)
    for i, width in enumerate(widths[1:]):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = spade_resblock(x, segmap, width, hidden, spectral_norm, f"block{i}", inits)
    x = keras.layers.LeakyReLU(0.2, name="out_act")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=inits(), name="out_conv")(x)
    # float32 output even under a mixed policy: losses and metrics are computed in float32.
    image = keras.layers.Activation("tanh", dtype="float32", name="out_tanh")(x)
    return seed_power_iterations(keras.Model([segmap, z], image, name=name), seed)


def _patchgan_scale(x, filters: int, layers: int, spectral_norm: bool, prefix: str, inits: Initializers) -> list:
    """NVlabs/SPADE's NLayerDiscriminator: 4x4 convs (padding 2), stride 2 but the last, instance norm after
    the first; every block's output is returned, the last being the 1-channel logits."""
    features = []
    width = filters
    for i in range(layers):
        stride = 2 if i < layers - 1 else 1
        x = keras.layers.ZeroPadding2D(2, name=f"{prefix}_pad{i}")(x)
        x = _sn(keras.layers.Conv2D(width, 4, strides=stride, kernel_initializer=inits(), use_bias=i == 0,
                                    name=f"{prefix}_conv{i}"), spectral_norm and i > 0)(x)
        if i > 0:
            x = instance_norm(f"{prefix}_norm{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"{prefix}_act{i}")(x)
        features.append(x)
        width = min(width * 2, 512)
    x = keras.layers.ZeroPadding2D(2, name=f"{prefix}_pad_out")(x)
    x = keras.layers.Conv2D(1, 4, kernel_initializer=inits(), name=f"{prefix}_logits_conv")(x)
    features.append(keras.layers.Activation("linear", dtype="float32", name=f"{prefix}_logits")(x))
    return features


def per_scale(outputs) -> list[list]:
    """The discriminator's outputs as one list per scale: Keras returns a one-scale model's outputs unnested."""
    outputs = list(outputs)
    return [outputs] if outputs and not isinstance(outputs[0], (list, tuple)) else [list(scale) for scale in outputs]


def build_spade_discriminator(image_size: int = 256, num_classes: int = 19, filters: int = 64, layers: int = 4,
                              num_scales: int = 2, spectral_norm: bool = True, seed: int | None = None,
                              name: str = "discriminator") -> keras.Model:
    """Outputs: one list per scale, ``layers`` feature maps then the logits (read them through ``per_scale``)."""
    segmap = keras.Input((image_size, image_size, num_classes), name="segmap")
    image = keras.Input((image_size, image_size, 3), name="image")
    inits = Initializers(None if seed is None else seed + 1000)
    x = keras.layers.Concatenate(name="condition")([segmap, image])
    scales = []
    for s in range(num_scales):
        if s > 0:
            x = keras.layers.AveragePooling2D(3, strides=2, padding="same", name=f"down{s}")(x)
        scales.append(_patchgan_scale(x, filters, layers, spectral_norm, f"d{s}", inits))
    return seed_power_iterations(keras.Model([segmap, image], scales, name=name), seed)


def build_spade_encoder(image_size: int = 256, z_dim: int = 256, filters: int = 64, seed: int | None = None,
                        name: str = "encoder") -> keras.Model:
    """Image in [-1, 1] → (mu, logvar), each ``[N, z_dim]`` float32."""
    steps = max(1, (image_size // ENCODER_GRID).bit_length() - 1)
    inits = Initializers(None if seed is None else seed + 2000)
    image = keras.Input((image_size, image_size, 3), name="image")
    x = image
    for i in range(steps):
        x = keras.layers.Conv2D(filters * min(2 ** i, 8), 3, strides=2, padding="same", kernel_initializer=inits(),
                                name=f"conv{i}")(x)
        if i > 0:
            x = instance_norm(f"norm{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    mu = keras.layers.Dense(z_dim, kernel_initializer=inits(), dtype="float32", name="mu")(x)
    logvar = keras.layers.Dense(z_dim, kernel_initializer=inits(), dtype="float32", name="logvar")(x)
    return keras.Model(image, [mu, logvar], name=name)
