"""Differentiable augmentation (DiffAugment; Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training"): the same random transforms applied to real AND generated images before the discriminator, so
that D cannot memorise a small training set while G still receives gradients through the transforms.

The three policies of the paper, on images in [-1, 1] (``[N, H, W, C]``):

* ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2) about the per-pixel channel mean, contrast
  x U(0.5, 1.5) about the image mean;
* ``translation``: an integer shift of up to 1/8 of the side in each direction, zero padded;
* ``cutout``: one zeroed square of half the side at a random position.

Randomness is stateless, from a ``[2]`` int seed drawn in the data pipeline per batch: a resumed run replays the
exact transforms (``tf.random`` op state would not survive a checkpoint).
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> the names; ValueError naming an unknown one."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}; use any of {', '.join(POLICIES)}")
    return names


def _uniform(seed: tf.Tensor, salt: int, shape, low: float, high: float, dtype=tf.float32) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed + tf.constant([0, salt], seed.dtype), low, high, dtype=dtype)


def color(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n = tf.shape(x)[0]
    x = x + tf.cast(_uniform(seed, 1, [n, 1, 1, 1], -0.5, 0.5), x.dtype)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * tf.cast(_uniform(seed, 2, [n, 1, 1, 1], 0.0, 2.0), x.dtype) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * tf.cast(_uniform(seed, 3, [n, 1, 1, 1], 0.5, 1.5), x.dtype) + mean


def _shift_axis(x: tf.Tensor, shift: tf.Tensor, axis: int, pad: int) -> tf.Tensor:
    """Shift each image of ``x`` by ``shift[n]`` pixels along ``axis`` (1 = rows, 2 = columns), zero filled:
    a gather from the padded image, so the gradient flows to the pixels that stay in view."""
    size = tf.shape(x)[axis]
    paddings = [[0, 0]] * 4
    paddings[axis] = [pad, pad]
    padded = tf.pad(x, paddings)
    index = tf.range(size)[None, :] + pad - shift[:, None]  # [N, size] into the padded axis
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def translation(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _uniform(seed, 4, [n], -sy, sy + 1, tf.int32)
    dx = _uniform(seed, 5, [n], -sx, sx + 1, tf.int32)
    return _shift_axis(_shift_axis(x, dy, 1, sy), dx, 2, sx)


def cutout(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = _uniform(seed, 6, [n, 1, 1], 0, h + (1 - ch % 2), tf.int32)
    cx = _uniform(seed, 7, [n, 1, 1], 0, w + (1 - cw % 2), tf.int32)
    rows, cols = tf.range(h)[None, :, None], tf.range(w)[None, None, :]
    # The square spans [c - size//2, c - size//2 + size), clipped to the image (as the reference's clamped grid).
    top, left = cy - ch // 2, cx - cw // 2
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * tf.cast(~inside, x.dtype)[..., None]


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: tf.Tensor, seed: tf.Tensor, policy: tuple[str, ...]) -> tf.Tensor:
    """``x`` through the policy's transforms in order, every image with its own draw from ``seed`` ([2] int).
    Call it on the real and the generated batch with the SAME seed only if they should share the draws; the
    paper draws them independently (pass two seeds)."""
    for name in policy:
        x = _OPS[name](x, seed)
    return x
