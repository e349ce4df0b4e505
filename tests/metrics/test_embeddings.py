"""Embedders on the real demo faces, the Inception weights loader, and the distribution report."""

import json

import cv2
import keras
import numpy as np
import pytest

from reface_tf.errors import ConfigError, ModelError, RefaceError
from reface_tf.metrics.embeddings import (INCEPTION_SIZE, available_embedders, distribution_report, get_embedder,
                                       inception_embedder, load_inception, resize_images, save_closest_pairs)

FACES = 16


@pytest.fixture(scope="module")
def faces():
    """The demo dataset's aligned target photos at 64x64 (downloaded and built once, then cached)."""
    from reface_tf.data.images import load_rgb
    from reface_tf.samples import ensure_demo

    try:
        root = ensure_demo("procedure")
    except RefaceError as err:
        pytest.skip(f"demo faces unavailable: {err}")
    paths = sorted((root / "B").glob("*.png"))[:FACES]
    return np.stack([cv2.resize(load_rgb(p), (64, 64), interpolation=cv2.INTER_AREA) for p in paths])


@pytest.fixture(scope="module")
def embedders():
    try:
        return [get_embedder(name) for name in available_embedders()]
    except ModelError as err:
        pytest.skip(f"embedding models unavailable: {err}")


def test_available_embedders_need_a_weights_file_for_inception(tmp_path):
    assert available_embedders() == ("facenet", "sface")
    assert available_embedders(tmp_path / "w.weights.h5") == ("facenet", "sface", "inception")
    with pytest.raises(ModelError, match="--inception-weights PATH"):
        get_embedder("inception")
    with pytest.raises(ConfigError, match="unknown embedder 'clip'"):
        get_embedder("clip")


def test_one_resize_for_every_size():
    images = np.full((2, 37, 53, 3), 200, np.uint8)
    out = resize_images(images, 20).numpy()
    assert out.shape == (2, 20, 20, 3) and out.dtype == np.float32 and np.allclose(out, 200.0)


@pytest.mark.network
def test_facenet_and_sface_give_unit_features_of_their_dimension(faces, embedders):
    for embedder, dim in zip(embedders, (512, 128)):
        feats = embedder(faces[:4])
        assert feats.shape == (4, dim) and feats.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
        assert np.abs(feats[0] @ feats[1]) < 0.99  # two people: not one collapsed vector
    with pytest.raises(ValueError, match="uint8 RGB"):
        embedders[0](faces[:2].astype(np.float32))


def test_inception_loads_a_weights_file_and_reproduces_its_model(tmp_path):
    keras.utils.set_random_seed(0)
    saved = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                           input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    path = tmp_path / "x.weights.h5"
    saved.save_weights(path)  # random weights: this checks the loader only, never a metric
    images = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    feats = inception_embedder(path)(images)
    x = keras.applications.inception_v3.preprocess_input(resize_images(images, INCEPTION_SIZE).numpy())
    assert feats.shape == (1, 2048) and feats.dtype == np.float64 and np.abs(feats).sum() > 0
    np.testing.assert_allclose(feats, saved(x, training=False).numpy(), rtol=1e-4, atol=1e-5)

    with pytest.raises(ModelError, match="file not found") as missing:
        load_inception(tmp_path / "missing.weights.h5")
    (tmp_path / "junk.weights.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(ModelError, match="not a Keras weights file") as junk:
        load_inception(tmp_path / "junk.weights.h5")
    for err in (missing, junk):
        assert "\n" not in str(err.value) and "--inception-weights" in str(err.value)


@pytest.mark.network
def test_report_separates_real_faces_from_noise_and_omits_small_fd(faces, embedders, tmp_path):
    half = FACES // 2
    noise = np.random.default_rng(1).integers(0, 256, (half, 64, 64, 3), dtype=np.uint8)
    training = faces[:half + 4]
    real_vs_real = distribution_report(faces[:half], faces[half:], embedders, training=training, closest=3)
    real_vs_noise = distribution_report(noise, faces[half:], embedders)
    for name in ("facenet", "sface"):
        assert real_vs_real[f"kid_{name}"] < real_vs_noise[f"kid_{name}"], name
        assert real_vs_real[f"kid_{name}_std"] == 0.0  # 8 vs 8: every subset is the whole of both sets
        assert real_vs_real[f"fd_{name}"] is None
        assert real_vs_real["notes"][f"fd_{name}"].startswith(f"omitted: {half} samples < 2 x ")
        memo = real_vs_real["memorisation"][name]
        # the generated set is part of the training set here: each image finds itself
        assert memo["nearest_index"] == list(range(half)) and memo["min"] == pytest.approx(0.0, abs=1e-6)
        assert [p["distance"] for p in memo["closest"]] == sorted(p["distance"] for p in memo["closest"])
    assert json.loads(json.dumps(real_vs_real)) == real_vs_real
    assert real_vs_real["n_generated"] == half and real_vs_real["n_training"] == half + 4

    out = save_closest_pairs(tmp_path / "closest.png", faces[:half], training,
                             real_vs_real["memorisation"]["sface"]["closest"], size=64)
    picture = cv2.imread(str(out))
    assert picture.shape == (3 * 64, 2 * 64, 3) and not list(tmp_path.glob(".closest.png.tmp*"))
