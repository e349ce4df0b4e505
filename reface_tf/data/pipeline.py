"""``tf.data`` pipelines for paired images.

Training: decode (cached in memory after first use) → resize to ``load_size`` → optional albumentations
hook → random crop to ``image_size`` and random horizontal flip, IDENTICAL on both images → [-1, 1] →
batch → prefetch. All randomness is stateless and derived from (seed, epoch, pair index), and the epoch's
order is a seeded permutation, so the same seed gives the same batches and a resumed run can skip
exactly the batches it already trained on.

Evaluation: resize straight to ``image_size``, in order, no randomness.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.data.images import resize_uint8
from reface_tf.data.pairs import Pair, load_pair_rgb

log = logging.getLogger(__name__)

PairAugmentation = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_EPOCH_STRIDE = 1 << 24  # per-element seed = epoch * stride + index: unique while a split has < 16M pairs


def from_uint8(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float32) / 127.5 - 1.0


def to_uint8(x: tf.Tensor | np.ndarray) -> np.ndarray:
    """[-1, 1] floats to uint8, rounding (not truncating) and clipping."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def label_inputs(cfg: Config) -> bool:
    """Whether the inputs are label maps (``--input-domain label_map``), resized by nearest neighbour."""
    return cfg.data.input_domain == "label_map"


class DecodedPairs:
    """Decoded, resized pairs by index; keeps them in memory when ``cache`` is on (one copy, no tf.data shuffle buffer).

    ``nearest_inputs`` resizes the inputs by nearest neighbour (label maps); targets are always photos. Crops and
    flips after this move pixels without blending them, so label maps stay label maps through the pipeline.
    """

    def __init__(self, pairs: list[Pair], size: int, max_pixels: int, cache: bool = True, nearest_inputs: bool = False):
        self.pairs, self.size, self.max_pixels, self.cache = pairs, size, max_pixels, cache
        self.nearest_inputs = nearest_inputs
        self._store: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.pairs)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = int(index)
        if index in self._store:
            return self._store[index]
        item = self.decode(self.pairs[index])
        if self.cache:
            with self._lock:
                self._store[index] = item
        return item

    def decode(self, pair: Pair) -> tuple[np.ndarray, np.ndarray]:
        a, b = load_pair_rgb(pair, self.max_pixels)
        return resize_uint8(a, self.size, self.nearest_inputs), resize_uint8(b, self.size)

    def load(self, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(index, input uint8, target uint8) of one pair, inside a tf.data map."""
        a, b = tf.numpy_function(self.get, [index], (tf.uint8, tf.uint8), stateful=False)
        a.set_shape([self.size, self.size, 3])
        b.set_shape([self.size, self.size, 3])
        return index, a, b

    def as_dataset(self, indices: tf.data.Dataset) -> tf.data.Dataset:
        """Map a dataset of indices to (index, input uint8, target uint8)."""
        return indices.map(self.load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def epoch_order(num_pairs: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded order of the training pairs in ``epoch`` (0-based)."""
    return np.random.default_rng([seed, epoch]).permutation(num_pairs)


def element_seed(seed: int, epoch: int, index: tf.Tensor) -> tf.Tensor:
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64) * _EPOCH_STRIDE + tf.cast(index, tf.int64)])


def paired_jitter(a: tf.Tensor, b: tf.Tensor, seed: tf.Tensor, image_size: int, flip: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Random crop to ``image_size`` and random horizontal flip, the same for both images of the pair."""
    stacked = tf.stack([a, b])  # one crop window and one flip decision for both
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if stacked.shape[1] != image_size:
        stacked = tf.image.stateless_random_crop(stacked, [2, image_size, image_size, 3], seed=crop_seed)
    if flip:
        do_flip = tf.random.stateless_uniform([], seed=flip_seed) < 0.5
        stacked = tf.cond(do_flip, lambda: tf.reverse(stacked, axis=[2]), lambda: stacked)
    return stacked[0], stacked[1]


def _finish(a: tf.Tensor, b: tf.Tensor, input_channels: int) -> tuple[tf.Tensor, tf.Tensor]:
    a, b = from_uint8(a), from_uint8(b)
    if input_channels == 1:
        a = tf.image.rgb_to_grayscale(a)
    return a, b


def epoch_indices(num_pairs: int, seed: int, epoch: int, global_batch: int, steps: int, skip_batches: int = 0) -> np.ndarray:
    """The pair indices of batches ``skip_batches .. steps - 1`` of ``epoch``, in training order."""
    order = epoch_order(num_pairs, seed, epoch)[: steps * global_batch]
    return order[min(skip_batches, steps) * global_batch:]


def _batches(store: DecodedPairs, cfg: Config, epochs: np.ndarray, indices: np.ndarray, global_batch: int,
             augmentation: PairAugmentation | None) -> tf.data.Dataset:
    """Batches of the ``(epoch, pair index)`` elements, in order; each element's randomness comes from both."""
    d, seed = cfg.data, cfg.runtime.seed
    elements = tf.data.Dataset.from_tensor_slices((epochs.astype(np.int64), indices.astype(np.int64)))
    ds = elements.map(lambda e, i: (e,) + tuple(store.load(i)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augmentation is not None:
        def augment(epoch: tf.Tensor, index: tf.Tensor, a: tf.Tensor, b: tf.Tensor):
            aug_seed = tf.cast(element_seed(seed, epoch, index)[1] % (2**31 - 1), tf.int64)
            a2, b2 = tf.numpy_function(lambda x, y, s: augmentation(x, y, int(s)), [a, b, aug_seed], (tf.uint8, tf.uint8))
            a2.set_shape(a.shape)
            b2.set_shape(b.shape)
            return epoch, index, a2, b2
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def jitter(epoch: tf.Tensor, index: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        a, b = paired_jitter(a, b, element_seed(seed, epoch, index), d.image_size, d.flip)
        return _finish(a, b, d.input_channels)
    ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(global_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_dataset(store: DecodedPairs, cfg: Config, epoch: int, global_batch: int, skip_batches: int = 0,
                  augmentation: PairAugmentation | None = None) -> tf.data.Dataset:
    """Batches ``(inputs, targets)`` of one epoch, both in [-1, 1]; partial last batches are dropped."""
    steps = len(store) // global_batch
    indices = epoch_indices(len(store), cfg.runtime.seed, epoch, global_batch, steps, skip_batches)
    return _batches(store, cfg, np.full(len(indices), epoch), indices, global_batch, augmentation)


def training_batches(store: DecodedPairs, cfg: Config, first_epoch: int, epochs: int, global_batch: int,
                     steps_per_epoch: int, skip_batches: int = 0,
                     augmentation: PairAugmentation | None = None) -> tf.data.Dataset:
    """Every remaining batch of a run, epochs back to back, for ONE iterator over the whole run.

    Epoch ``first_epoch`` starts after its ``skip_batches`` already trained, every epoch has exactly
    ``steps_per_epoch`` batches (so a batch never straddles two epochs), and each batch is the one
    ``train_dataset`` gives for that epoch. A new iterator per epoch would cost an exhausted iterator's release
    at every epoch start, which was measured to block the first one for 7-8 s in about half the runs.
    """
    epoch_of, indices = run_elements(len(store), cfg.runtime.seed, first_epoch, epochs, global_batch, steps_per_epoch,
                                     skip_batches)
    return _batches(store, cfg, epoch_of, indices, global_batch, augmentation)


def run_elements(num_pairs: int, seed: int, first_epoch: int, epochs: int, global_batch: int, steps_per_epoch: int,
                 skip_batches: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, pair index) of every remaining training element of a run, in training order (int64 arrays)."""
    parts = [epoch_indices(num_pairs, seed, e, global_batch, steps_per_epoch, skip_batches if e == first_epoch else 0)
             for e in range(first_epoch, epochs)]
    indices = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    epoch_of = np.concatenate([np.full(len(p), e) for e, p in zip(range(first_epoch, epochs), parts)]) if parts else indices
    return epoch_of.astype(np.int64), indices.astype(np.int64)


def eval_dataset(pairs: list[Pair], cfg: Config, batch_size: int = 1, store: DecodedPairs | None = None) -> tf.data.Dataset:
    """``(inputs, targets)`` in [-1, 1] resized straight to ``image_size``, in the order of ``pairs``."""
    store = store or DecodedPairs(pairs, cfg.data.image_size, cfg.data.max_pixels, cache=False,
                                  nearest_inputs=label_inputs(cfg))
    ds = store.as_dataset(tf.data.Dataset.range(len(store)))
    ds = ds.map(lambda i, a, b: _finish(a, b, cfg.data.input_channels), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
