"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"): the ``bgc`` pipeline applied to every image D sees, real and generated, each transform with probability
``p``; ``p`` follows how sure D is about the reals.

Geometric transforms (x-flip, 90-degree rotations, integer translation, isotropic scaling, arbitrary rotation,
anisotropic scaling, fractional translation) are composed into ONE 3x3 affine per image, mapping output pixel
coordinates to input ones, and applied once by a bilinear sampler with reflect padding; its gather has exact
gradients, so G learns through the augmentation. Colour transforms (brightness, contrast, luma flip, hue
rotation, saturation) compose into one 4x4 matrix on (R, G, B, 1). Distributions are the reference's: translation
0.125 of the side, scale log2-std 0.2, rotation uniform, brightness std 0.2, contrast log2-std 0.5, saturation
log2-std 1; the arbitrary rotation is applied before and after the anisotropic scaling, each with probability
``1 - sqrt(1 - p)`` so the chance of any rotation stays ``p``.

Randomness is stateless from a [2] seed (drawn per batch in the data pipeline), so a resumed run replays it.
The ``p`` update (every few steps): ``r_t = E[sign(D(real))]``; ``p += sign(r_t - target) * images / (speed
images)``, clamped to [0, 1] (the reference lets p go from 0 to 1 in 500k images).
"""

from __future__ import annotations

import math

import tensorflow as tf

LUMA_AXIS = tf.constant([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3.0)


def _uniform(seed, salt, shape, low=0.0, high=1.0):
    return tf.random.stateless_uniform(shape, seed + tf.constant([0, salt], seed.dtype), low, high)


def _normal(seed, salt, shape, std=1.0):
    return tf.random.stateless_normal(shape, seed + tf.constant([0, salt], seed.dtype)) * std


def _chance(seed, salt, n, p):
    return tf.cast(_uniform(seed, salt, [n]) < p, tf.float32)


def _matrix(rows) -> tf.Tensor:
    """Rows of [N] tensors (or floats) -> [N, R, C]."""
    n = next(tf.shape(v)[0] for row in rows for v in row if isinstance(v, tf.Tensor))
    full = lambda v: v if isinstance(v, tf.Tensor) else tf.fill([n], float(v))
    return tf.stack([tf.stack([full(v) for v in row], axis=-1) for row in rows], axis=-2)


def translate2d(tx, ty):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx, sy):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta):
    c, s = tf.cos(theta), tf.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def geometric_matrix(seed: tf.Tensor, n, size: int, p: tf.Tensor) -> tf.Tensor:
    """``[N, 3, 3]``: output pixel (centred, in pixels) -> input pixel; identity where no transform was drawn."""
    g = tf.eye(3, batch_shape=[n])
    # x-flip
    i = tf.floor(_uniform(seed, 1, [n], 0, 2)) * _chance(seed, 2, n, p)
    g = g @ scale2d(1 - 2 * i, tf.ones([n]))
    # 90-degree rotations
    k = tf.floor(_uniform(seed, 3, [n], 0, 4)) * _chance(seed, 4, n, p)
    g = g @ rotate2d(-k * (math.pi / 2))
    # integer translation, up to 1/8 of the side
    on = _chance(seed, 5, n, p)
    t = _uniform(seed, 6, [2, n], -0.125, 0.125) * on
    g = g @ translate2d(tf.round(t[0] * size), tf.round(t[1] * size))
    # isotropic scaling
    s = tf.pow(2.0, _normal(seed, 7, [n], 0.2) * _chance(seed, 8, n, p))
    g = g @ scale2d(s, s)
    p_rot = 1 - tf.sqrt(tf.maximum(1 - p, 0.0))
    # rotation before the anisotropic scaling
    theta = _uniform(seed, 9, [n], -math.pi, math.pi) * _chance(seed, 10, n, p_rot)
    g = g @ rotate2d(-theta)
    # anisotropic scaling
    s = tf.pow(2.0, _normal(seed, 11, [n], 0.2) * _chance(seed, 12, n, p))
    g = g @ scale2d(s, 1 / s)
    # rotation after it
    theta = _uniform(seed, 13, [n], -math.pi, math.pi) * _chance(seed, 14, n, p_rot)
    g = g @ rotate2d(-theta)
    # fractional translation
    t = _normal(seed, 15, [2, n], 0.125) * _chance(seed, 16, n, p)
    return g @ translate2d(t[0] * size, t[1] * size)


def _reflect(coord: tf.Tensor, size: int) -> tf.Tensor:
    """Mirror coordinates into [0, size - 1] (reflect padding, edge pixel not repeated)."""
    period = 2.0 * (size - 1)
    c = tf.math.floormod(coord, period)
    return tf.where(c > size - 1, period - c, c)


def affine_sample(images: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """Bilinear resampling of ``images [N, H, W, C]`` where output pixel (x, y) reads input ``matrix @ (x, y, 1)``
    (coordinates centred on the image), reflected at the borders; differentiable in ``images``."""
    n, h, w, c = tf.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32) - (h - 1) / 2, tf.range(w, dtype=tf.float32) - (w - 1) / 2, indexing="ij")
    grid = tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([h * w])], axis=0)  # [3, HW]
    src = tf.einsum("nij,jk->nik", matrix, grid)                                              # [N, 3, HW]
    sx, sy = _reflect(src[:, 0] + (w - 1) / 2, w), _reflect(src[:, 1] + (h - 1) / 2, h)
    x0, y0 = tf.floor(sx), tf.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, w - 1), tf.minimum(y0 + 1, h - 1)
    flat = tf.reshape(images, [n, h * w, c])
    at = lambda yy, xx: tf.gather(flat, yy * w + xx, batch_dims=1)                            # [N, HW, C]
    fx, fy = tf.cast(fx, images.dtype)[..., None], tf.cast(fy, images.dtype)[..., None]
    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return tf.reshape(top * (1 - fy) + bottom * fy, [n, h, w, c])


def translate3d(v):
    return _matrix([[1, 0, 0, v], [0, 1, 0, v], [0, 0, 1, v], [0, 0, 0, 1]])


def scale3d(v):
    return _matrix([[v, 0, 0, 0], [0, v, 0, 0], [0, 0, v, 0], [0, 0, 0, 1]])


def rotate3d(axis: tf.Tensor, theta: tf.Tensor) -> tf.Tensor:
    """Rodrigues' rotation about the unit ``axis`` [4] (x, y, z, 0) by ``theta`` [N], as [N, 4, 4]."""
    x, y, z = axis[0], axis[1], axis[2]
    s, c = tf.sin(theta), tf.cos(theta)
    cc = 1 - c
    return _matrix([[x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
                    [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
                    [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
                    [0, 0, 0, 1]])


def color_matrix(seed: tf.Tensor, n, p: tf.Tensor, luma_flip: bool = True) -> tf.Tensor:
    """``[N, 4, 4]`` on (R, G, B, 1) of images in [-1, 1]; identity where no transform was drawn."""
    m = tf.eye(4, batch_shape=[n])
    v = LUMA_AXIS
    vv = tf.tensordot(v, v, axes=0)  # projection on the luma axis
    m = translate3d(_normal(seed, 21, [n], 0.2) * _chance(seed, 22, n, p)) @ m                    # brightness
    m = scale3d(tf.pow(2.0, _normal(seed, 23, [n], 0.5) * _chance(seed, 24, n, p))) @ m           # contrast
    if luma_flip:
        i = tf.floor(_uniform(seed, 25, [n], 0, 2)) * _chance(seed, 26, n, p)
        m = (tf.eye(4) - 2 * vv * i[:, None, None]) @ m                                           # luma flip
    theta = _uniform(seed, 27, [n], -math.pi, math.pi) * _chance(seed, 28, n, p)
    m = rotate3d(v, theta) @ m                                                                    # hue rotation
    s = tf.pow(2.0, _normal(seed, 29, [n], 1.0) * _chance(seed, 30, n, p))
    m = (vv + (tf.eye(4) - vv) * s[:, None, None]) @ m                                            # saturation
    return m


def augment(images: tf.Tensor, seed: tf.Tensor, p: tf.Tensor, luma_flip: bool = True) -> tf.Tensor:
    """The ``bgc`` pipeline on ``images [N, H, W, 3]`` in [-1, 1] with probability ``p`` per transform."""
    dtype = images.dtype
    x = tf.cast(images, tf.float32)
    n, size = tf.shape(x)[0], x.shape[1]
    p = tf.cast(p, tf.float32)
    seed = tf.cast(seed, tf.int64)
    x = affine_sample(x, geometric_matrix(seed, n, size, p))
    m = color_matrix(seed, n, p, luma_flip)
    x = tf.einsum("nij,nhwj->nhwi", m[:, :3, :3], x) + m[:, None, None, :3, 3]
    return tf.cast(x, dtype)


def adjusted_p(p: tf.Tensor, rt: tf.Tensor, target: float, images: int, speed_images: float) -> tf.Tensor:
    """One ADA update: ``p`` moves by ``images / speed_images`` toward more augmentation when ``r_t`` (the mean
    sign of D's logits on reals) is above ``target`` (D over-confident), toward less when below; clamped to [0, 1]."""
    step = tf.sign(tf.cast(rt, tf.float32) - target) * (images / speed_images)
    return tf.clip_by_value(tf.cast(p, tf.float32) + step, 0.0, 1.0)
