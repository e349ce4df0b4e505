"""SPADE networks: output shapes, per-scale discriminator features, a generator that follows its map, and
identical weights from one seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from reface_tf.models.spade import (build_spade_discriminator, build_spade_encoder, build_spade_generator,
                                    generator_widths, per_scale)

SIZE, CLASSES, Z = 32, 5, 8


def maps(batch: int, seed: int = 0) -> tf.Tensor:
    ids = np.random.default_rng(seed).integers(0, CLASSES, (batch, SIZE // 4, SIZE // 4))
    return tf.one_hot(np.kron(ids, np.ones((1, 4, 4), np.int64)), CLASSES)


@pytest.fixture(scope="module")
def generator():
    return build_spade_generator(SIZE, CLASSES, Z, filters=4, num_upsampling=3, hidden=8, seed=0)


def test_generator_maps_and_latents_to_images_that_follow_the_map(generator):
    z = tf.random.stateless_normal([2, Z], seed=[0, 1])
    image = generator([maps(2), z], training=False)
    assert image.shape == (2, SIZE, SIZE, 3) and image.dtype == tf.float32
    assert np.all(np.abs(image.numpy()) <= 1.0)
    other_map = generator([maps(2, seed=1), z], training=False)
    other_z = generator([maps(2), tf.random.stateless_normal([2, Z], seed=[5, 1])], training=False)
    assert np.abs(other_map.numpy() - image.numpy()).max() > 1e-4   # SPADE modulation reads the map
    assert np.abs(other_z.numpy() - image.numpy()).max() > 1e-4     # and the latent matters
    assert generator_widths(4, 3) == [64, 16, 8, 4]
    # Spectral norm wraps the residual blocks' convolutions; SPADE's own are plain.
    assert any(layer.name == "head_conv_0_sn" for layer in generator.layers)


def test_one_seed_builds_identical_networks_including_power_iteration_vectors(generator):
    again = build_spade_generator(SIZE, CLASSES, Z, filters=4, num_upsampling=3, hidden=8, seed=0)
    for a, b in zip(generator.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    other = build_spade_generator(SIZE, CLASSES, Z, filters=4, num_upsampling=3, hidden=8, seed=1)
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(generator.weights, other.weights))


def test_multiscale_discriminator_returns_features_then_logits_per_scale():
    d = build_spade_discriminator(SIZE, CLASSES, filters=4, layers=3, num_scales=2, seed=0)
    scales = per_scale(d([maps(2), tf.zeros([2, SIZE, SIZE, 3])], training=False))
    assert len(scales) == 2 and all(len(scale) == 4 for scale in scales)  # 3 feature maps + logits per scale
    shapes = [[tuple(f.shape) for f in scale] for scale in scales]
    assert shapes[0] == [(2, 17, 17, 4), (2, 9, 9, 8), (2, 10, 10, 16), (2, 11, 11, 1)]
    assert shapes[1][-1] == (2, 7, 7, 1)  # the second scale sees the input at half size
    assert all(scale[-1].dtype == tf.float32 for scale in scales)
    one = build_spade_discriminator(SIZE, CLASSES, filters=4, layers=2, num_scales=1, seed=0)
    single = per_scale(one([maps(1), tf.zeros([1, SIZE, SIZE, 3])]))
    assert len(single) == 1 and [tuple(f.shape) for f in single[0]] == [(1, 17, 17, 4), (1, 18, 18, 8), (1, 19, 19, 1)]


def test_encoder_gives_mean_and_log_variance_and_sizes_are_checked():
    mu, logvar = build_spade_encoder(SIZE, Z, filters=4, seed=0)(tf.zeros([3, SIZE, SIZE, 3]))
    assert mu.shape == logvar.shape == (3, Z)
    with pytest.raises(ValueError, match="not a multiple of 2\\*\\*num_upsampling = 16"):
        build_spade_generator(40, CLASSES, Z, filters=4, num_upsampling=4)
