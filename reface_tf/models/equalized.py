"""StyleGAN2's building blocks in plain TensorFlow ops (no custom CUDA kernels): equalised-learning-rate dense
and conv layers, the modulated/demodulated convolution, noise inputs, and the fixed [1, 3, 3, 1] resampling filter.

Equalised learning rate (Karras et al. 2018): weights are stored as N(0, 1 / lr_mul) and multiplied at run time
by ``lr_mul / sqrt(fan_in)``, so Adam's step is the same relative size for every layer whatever its fan-in, and
``lr_mul`` (0.01 in the mapping network) slows a layer down without changing its initial output scale.

Images are NHWC. Up- and down-sampling use the separable [1, 3, 3, 1] filter as a depthwise convolution:
zero-insertion then blur (x2 up), blur then stride 2 (x2 down), the same FIR filter as the reference's
``upfirdn2d`` (its CUDA kernel is only a faster way to run it).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

SQRT2 = math.sqrt(2.0)


def blur_kernel(channels: int, gain: float = 1.0) -> np.ndarray:
    f = np.array([1.0, 3.0, 3.0, 1.0])
    f = np.outer(f, f)
    f = f / f.sum() * gain
    return np.tile(f[:, :, None, None], [1, 1, channels, 1]).astype(np.float32)


def blur(x: tf.Tensor, pad: tuple[int, int], gain: float = 1.0) -> tf.Tensor:
    """The [1, 3, 3, 1] filter over each channel, with ``pad`` = (before, after) zero rows/columns."""
    x = tf.pad(x, [[0, 0], list(pad), list(pad), [0, 0]])
    kernel = tf.constant(blur_kernel(x.shape[-1], gain), dtype=x.dtype)
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")


def upsample2x(x: tf.Tensor) -> tf.Tensor:
    """Zero insertion then the blur with gain 4 (each output pixel keeps the input's mean level)."""
    n, h, w, c = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    zeros = tf.zeros_like(x)
    x = tf.reshape(tf.stack([x, zeros], axis=3), [n, h, 2 * w, c])        # columns: x, 0, x, 0, ...
    x = tf.reshape(tf.stack([x, tf.zeros_like(x)], axis=2), [n, 2 * h, 2 * w, c])  # rows likewise
    return blur(x, (2, 1), gain=4.0)


def downsample2x(x: tf.Tensor) -> tf.Tensor:
    return blur(x, (1, 1))[:, ::2, ::2, :]


def lrelu(x: tf.Tensor, gain: float = SQRT2) -> tf.Tensor:
    """Leaky ReLU 0.2 times sqrt(2): the reference's gain that keeps activations at unit variance."""
    return tf.nn.leaky_relu(x, 0.2) * tf.cast(gain, x.dtype)


def bias_act(y: tf.Tensor, bias, activation: str, clamp: float | None) -> tf.Tensor:
    """Bias, then lrelu (or nothing), then the optional clamp that keeps 16-bit activations in range."""
    if bias is not None:
        y = y + tf.cast(bias, y.dtype)
    if activation == "lrelu":
        y = lrelu(y)
    return y if clamp is None else tf.clip_by_value(y, -clamp, clamp)


def normalize_2nd_moment(x: tf.Tensor, eps: float = 1e-8) -> tf.Tensor:
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + eps)


class EqualDense(keras.layers.Layer):
    """Fully connected layer with equalised learning rate: ``y = x @ (W * lr_mul / sqrt(fan_in)) + b * lr_mul``."""

    def __init__(self, units: int, lr_mul: float = 1.0, bias_init: float = 0.0, activation: str = "linear",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.lr_mul, self.bias_init, self.activation, self.seed = units, lr_mul, bias_init, activation, seed

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, self.units),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_mul, seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer=keras.initializers.Constant(self.bias_init / self.lr_mul))
        self.weight_gain = self.lr_mul / math.sqrt(fan_in)

    def call(self, x):
        y = tf.matmul(x, tf.cast(self.kernel * self.weight_gain, x.dtype)) + tf.cast(self.bias * self.lr_mul, x.dtype)
        return lrelu(y) if self.activation == "lrelu" else y


class EqualConv2D(keras.layers.Layer):
    """Convolution with equalised learning rate, optional x2 down-sampling (blur, then stride 2), lrelu, clamp."""

    def __init__(self, filters: int, kernel: int, down: bool = False, activation: str = "linear", use_bias: bool = True,
                 clamp: float | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.k, self.down, self.activation, self.use_bias, self.clamp, self.seed = (
            filters, kernel, down, activation, use_bias, clamp, seed)

    def build(self, input_shape):
        cin = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(self.k, self.k, cin, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        self.weight_gain = 1.0 / math.sqrt(cin * self.k * self.k)

    def call(self, x):
        w = tf.cast(self.kernel * self.weight_gain, x.dtype)
        if self.down and self.k == 1:
            y = tf.nn.conv2d(downsample2x(x), w, 1, "VALID")
        elif self.down:  # pad so that blur + stride-2 k x k conv halves the side exactly
            p = (4 - 2) + (self.k - 1)
            y = tf.nn.conv2d(blur(x, ((p + 1) // 2, p // 2)), w, 2, "VALID")
        else:
            y = tf.nn.conv2d(x, w, 1, "SAME")
        return bias_act(y, self.bias, self.activation, self.clamp)


def modulated_conv2d(x: tf.Tensor, weight: tf.Tensor, styles: tf.Tensor, demodulate: bool = True, up: bool = False) -> tf.Tensor:
    """``x [N, H, W, Cin]`` convolved with ``weight [k, k, Cin, Cout]`` scaled per example by ``styles [N, Cin]``;
    demodulation divides each output channel by the norm of its modulated weights, so unit-variance inputs give
    unit-variance outputs. Computed as scale inputs -> shared conv -> scale outputs, which equals the per-example
    convolution exactly and needs no grouped convolution."""
    dtype = x.dtype
    styles = tf.cast(styles, dtype)
    weight = tf.cast(weight, dtype)
    x = x * styles[:, None, None, :]
    if up:
        x = upsample2x(x)
    y = tf.nn.conv2d(x, weight, 1, "SAME")
    if demodulate:
        # sum over k, k, Cin of (w * s)^2, per example and output channel, in float32 for range
        w2 = tf.reduce_sum(tf.square(tf.cast(weight, tf.float32)), axis=[0, 1])            # [Cin, Cout]
        d = tf.math.rsqrt(tf.matmul(tf.square(tf.cast(styles, tf.float32)), w2) + 1e-8)    # [N, Cout]
        y = y * tf.cast(d, dtype)[:, None, None, :]
    return y


class ModulatedConv2D(keras.layers.Layer):
    """A synthesis layer: the style of ``w`` (an equalised affine, bias 1) modulates a conv (demodulated unless
    it is a toRGB layer), then per-pixel noise with a learned strength, a bias, lrelu and an optional clamp.

    ``noise_seed`` [2] (training) draws fresh stateless noise; without it the layer adds its fixed noise image
    (the reference's ``noise_mode='const'``), so a sampled face depends on its seed alone."""

    def __init__(self, filters: int, kernel: int, up: bool = False, demodulate: bool = True, activation: str = "lrelu",
                 noise: bool = True, resolution: int | None = None, clamp: float | None = None, salt: int = 0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.k, self.up, self.demodulate, self.activation = filters, kernel, up, demodulate, activation
        self.use_noise, self.resolution, self.clamp, self.salt, self.seed = noise, resolution, clamp, salt, seed

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        cin = int(x_shape[-1])
        self.affine = EqualDense(cin, bias_init=1.0, seed=None if self.seed is None else self.seed + 1, name="affine",
                                 dtype=self.dtype_policy)
        self.affine.build(w_shape)
        self.kernel = self.add_weight(name="kernel", shape=(self.k, self.k, cin, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.weight_gain = 1.0 / math.sqrt(cin * self.k * self.k)
        if self.use_noise:
            r = self.resolution
            self.noise_const = self.add_weight(name="noise_const", shape=(1, r, r, 1), trainable=False,
                                               initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=1000 + self.salt))
            self.noise_strength = self.add_weight(name="noise_strength", shape=(), initializer="zeros")

    def call(self, inputs, noise_seed=None):
        x, w = inputs
        styles = self.affine(w)
        if not self.demodulate:  # toRGB: the reference scales its style by the weight gain instead
            styles = styles * self.weight_gain
            weight = self.kernel
        else:
            weight = self.kernel * self.weight_gain
        y = modulated_conv2d(x, weight, styles, self.demodulate, self.up)
        if self.use_noise:
            if noise_seed is not None:
                shape = [tf.shape(y)[0], y.shape[1], y.shape[2], 1]
                noise = tf.random.stateless_normal(shape, noise_seed + tf.constant([0, self.salt], noise_seed.dtype))
            else:
                noise = self.noise_const
            y = y + tf.cast(noise * self.noise_strength, y.dtype)
        return bias_act(y, self.bias, self.activation, self.clamp)


def minibatch_stddev(x: tf.Tensor, group: int) -> tf.Tensor:
    """Append one channel: the standard deviation of each feature over groups of ``group`` examples, averaged
    over features and pixels (lets D see the variety of a batch, so G is pushed away from one mode)."""
    n, h, w, c = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    g = tf.minimum(group, n)
    y = tf.reshape(tf.cast(x, tf.float32), [g, -1, h, w, c])
    y = y - tf.reduce_mean(y, axis=0)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)   # [N/g, H, W, C]
    y = tf.reduce_mean(y, axis=[1, 2, 3])                         # [N/g]
    y = tf.tile(tf.reshape(y, [-1, 1, 1, 1]), [g, h, w, 1])        # example i belongs to group i % (N/g)
    return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)
