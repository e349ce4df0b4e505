"""Online augmentation (--augment) through train_dataset / training_batches."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.data.augment import AugmentConfig, build_paired_augmentation
from reface_tf.data.pairs import scan_dataset
from reface_tf.data.pipeline import DecodedPairs, train_dataset, training_batches
from reface_tf.tasks.pix2pix.task import augmentation as _augmentation


class SameImagePairs(DecodedPairs):
    """Every pair's target is its input: geometric-only augmentation must keep them equal."""

    def get(self, index):
        a, _ = super().get(index)
        return a, a


def _store(cfg, cls=DecodedPairs):
    return cls(scan_dataset(cfg.data.root, cfg.data).pairs, cfg.data.load_size, cfg.data.max_pixels)


def _epoch(store, cfg, augmentation, epoch=0, batch=2):
    return [(a.numpy(), b.numpy()) for a, b in train_dataset(store, cfg, epoch, batch, augmentation=augmentation)]


def test_augmentation_changes_batches_keeps_range_and_is_seeded(tiny_config):
    cfg = tiny_config(data={"augment": True})
    augmentation = _augmentation(cfg)
    assert augmentation is not None and _augmentation(cfg.replace(data={"augment": False})) is None
    store = _store(cfg)
    plain = _epoch(store, cfg, None)
    augmented = _epoch(store, cfg, augmentation)
    again = _epoch(store, cfg, _augmentation(cfg))  # a fresh augmentation object, same seed
    assert len(plain) == len(augmented) == len(again) == len(store) // 2
    differing = 0
    for (pa, pb), (aa, ab), (ga, gb) in zip(plain, augmented, again):
        assert aa.shape == pa.shape == (2, 64, 64, 3) and ab.shape == pb.shape
        for x in (aa, ab):
            assert x.dtype == np.float32 and x.min() >= -1.0 and x.max() <= 1.0
        np.testing.assert_array_equal(aa, ga)  # same seed: identical batches
        np.testing.assert_array_equal(ab, gb)
        differing += int(not np.array_equal(aa, pa)) + int(not np.array_equal(ab, pb))
    # Each pair is flipped / warped / recoloured with high probability: most batches change.
    assert differing >= len(plain), differing
    # Another seed gives other batches.
    other = _epoch(store, cfg.replace(runtime={"seed": 1}), _augmentation(cfg))
    assert any(not np.array_equal(o[0], a[0]) for o, a in zip(other, augmented))


def test_geometric_transforms_are_identical_on_input_and_target(tiny_config):
    cfg = tiny_config(data={"augment": True})
    store = _store(cfg, SameImagePairs)
    geometric = build_paired_augmentation(AugmentConfig.geometric_only(hflip=0.5, affine_p=1.0))
    plain = _epoch(store, cfg, None)
    augmented = _epoch(store, cfg, geometric)
    for (pa, pb), (aa, ab) in zip(plain, augmented):
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(aa, ab)  # one geometric draw for both sides
        assert not np.array_equal(aa, pa)      # affine_p = 1: every image was warped
    # The whole run's iterator (training_batches) applies the same (full, seeded) augmentation as train_dataset.
    full = build_paired_augmentation(AugmentConfig())
    run = [(a.numpy(), b.numpy()) for a, b in training_batches(store, cfg, 0, 1, 2, len(store) // 2, augmentation=full)]
    epoch0 = _epoch(store, cfg, full)
    assert len(run) == len(epoch0)
    for (ra, rb), (ea, eb) in zip(run, epoch0):
        np.testing.assert_array_equal(ra, ea)
        np.testing.assert_array_equal(rb, eb)
