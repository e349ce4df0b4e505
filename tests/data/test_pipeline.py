import numpy as np
import pytest

from reface_tf.config import Config
from reface_tf.data.pairs import Pair, scan_dataset
from reface_tf.data.pipeline import (DecodedPairs, epoch_order, eval_dataset, paired_jitter, to_uint8, train_dataset,
                                     training_batches)

from .conftest import gradient_rgb


@pytest.fixture
def same_image_pairs(tmp_path, write_image):
    """Pairs whose input and target are the same picture: any crop/flip mismatch shows as a difference."""
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
        write_image(f"ds/A/{i}.png", img)
        write_image(f"ds/B/{i}.png", img)
    cfg = Config()
    cfg.data.root, cfg.data.load_size, cfg.data.image_size = str(tmp_path / "ds"), 72, 64
    return cfg, scan_dataset(cfg.data.root, cfg.data).pairs


def batches(cfg, pairs, epoch, skip=0, batch=2):
    store = DecodedPairs(pairs, cfg.data.load_size, cfg.data.max_pixels)
    return [(a.numpy(), b.numpy()) for a, b in train_dataset(store, cfg, epoch, batch, skip)]


def test_crop_and_flip_are_identical_on_both_images(same_image_pairs):
    cfg, pairs = same_image_pairs
    for a, b in batches(cfg, pairs, epoch=0):
        assert a.shape == (2, 64, 64, 3) and np.array_equal(a, b)
        assert a.min() >= -1 and a.max() <= 1


def test_jitter_moves_pixels_consistently():
    """A coordinate-coded image: the crop window and the flip found in one image hold for the other."""
    import tensorflow as tf

    img = tf.constant(gradient_rgb(72, 72))
    seen_flip = seen_shift = False
    for k in range(20):
        a, b = paired_jitter(img, img, tf.constant([1, k], tf.int64), 64, flip=True)
        a, b = a.numpy(), b.numpy()
        assert np.array_equal(a, b)
        seen_flip |= bool(a[0, 0, 0] > a[0, -1, 0])
        seen_shift |= bool(a[0, 0, 1] > 0)
    assert seen_flip and seen_shift


def test_same_seed_same_batches_other_epoch_other_batches(same_image_pairs):
    cfg, pairs = same_image_pairs
    first, again, other = batches(cfg, pairs, 0), batches(cfg, pairs, 0), batches(cfg, pairs, 1)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(first, again))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, other))
    assert list(epoch_order(6, 0, 0)) != list(epoch_order(6, 0, 1))


def test_skipping_batches_resumes_the_same_sequence(same_image_pairs):
    cfg, pairs = same_image_pairs
    full, resumed = batches(cfg, pairs, 3), batches(cfg, pairs, 3, skip=1)
    assert len(resumed) == len(full) - 1
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(full[1:], resumed))


def test_one_iterator_across_epochs_gives_each_epochs_batches_in_order(same_image_pairs):
    """training_batches (one iterator for the whole run) = train_dataset epoch after epoch, resumed mid-epoch."""
    cfg, pairs = same_image_pairs
    store = DecodedPairs(pairs, cfg.data.load_size, cfg.data.max_pixels)
    run = [a.numpy() for a, _ in training_batches(store, cfg, first_epoch=1, epochs=4, global_batch=2,
                                                   steps_per_epoch=2, skip_batches=1)]
    expected = [a for e, skip in ((1, 1), (2, 0), (3, 0)) for a, _ in batches(cfg, pairs, e, skip)[: 2 - skip]]
    assert len(run) == len(expected) == 5
    assert all(np.array_equal(x, y) for x, y in zip(run, expected))


def test_grayscale_input_channel_and_eval_order(same_image_pairs):
    cfg, pairs = same_image_pairs
    cfg.data.input_channels = 1
    a, b = next(iter(eval_dataset(pairs, cfg, batch_size=6)))
    assert a.shape == (6, 64, 64, 1) and b.shape == (6, 64, 64, 3)
    again = next(iter(eval_dataset(pairs, cfg, batch_size=6)))[1]
    assert np.array_equal(b.numpy(), again.numpy())


def test_to_uint8_rounds_and_clips():
    assert to_uint8(np.array([-1.5, -1.0, 0.0, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]


def test_label_map_inputs_keep_their_classes_through_resize_crop_and_flip(tmp_path, write_image):
    """--input-domain label_map resizes inputs by nearest neighbour: no blended colour is a class of its own."""
    palette = np.array([[0, 0, 0], [200, 30, 30], [30, 200, 30]], np.uint8)
    labels = (np.arange(90)[:, None] // 7 + np.arange(90)[None, :] // 11) % 3
    write_image("ds/A/0.png", palette[labels])
    write_image("ds/B/0.png", np.full((90, 90, 3), 120, np.uint8))
    cfg = Config()
    cfg.data.root, cfg.data.load_size, cfg.data.image_size = str(tmp_path / "ds"), 72, 64
    pairs = scan_dataset(cfg.data.root, cfg.data).pairs
    colours = {tuple(c) for c in palette}
    for domain, expect_pure in (("label_map", True), ("photo", False)):
        cfg.data.input_domain = domain
        nearest = DecodedPairs(pairs, cfg.data.load_size, cfg.data.max_pixels, nearest_inputs=domain == "label_map")
        (inputs, _), = [(a.numpy(), b.numpy()) for a, b in train_dataset(nearest, cfg, 0, 1)]
        seen = {tuple(c) for c in to_uint8(inputs[0]).reshape(-1, 3)}
        assert (seen <= colours) is expect_pure, domain
        evaluated = next(iter(eval_dataset(pairs, cfg)))[0].numpy()
        assert ({tuple(c) for c in to_uint8(evaluated[0]).reshape(-1, 3)} <= colours) is expect_pure, domain
