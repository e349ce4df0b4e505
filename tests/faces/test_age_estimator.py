"""The offline age estimator: the wheel's preprocessing and read-out, the crop, and the error on documented photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reface_tf.errors import ModelError
from reface_tf.faces.age_estimator import (AGE_BINS, CHIP_SIZE, AgeEstimator, chip_matrix_for_aligned, chip_template,
                                           expected_age, extract_chip, prepare_chips)
from reface_tf.faces.align import template_points, transform_points


def test_bins_and_expectation_read_out():
    assert len(AGE_BINS) == 81 and AGE_BINS[0] == np.float32(0.25) and AGE_BINS[-1] == 80
    p = np.zeros((3, 81), np.float32)
    p[0, 30] = 1.0  # all mass on 30 years
    p[1, [20, 40]] = 0.5  # the expectation, not the argmax: 30, between the two modes
    p[2] = 1.0 / 81
    ages = expected_age(p)
    assert ages.dtype == np.float64
    np.testing.assert_allclose(ages, [30.0, 30.0, AGE_BINS.astype(np.float64).mean()], atol=1e-4)


def test_input_is_mean_subtracted_over_256_nchw():
    chips = np.zeros((2, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    chips[1] = 255
    chips[1, 0, 1] = (10, 20, 30)
    x = prepare_chips(chips)
    assert x.shape == (2, 3, 64, 64) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(x[0, :, 0, 0], -np.array([122.781998, 117.000999, 104.297997]) / 256, rtol=1e-6)
    np.testing.assert_allclose(x[1, :, 0, 1], (np.array([10, 20, 30]) - [122.781998, 117.000999, 104.297997]) / 256,
                               rtol=1e-6)


def test_chip_template_is_dlibs_padded_five_points():
    t = chip_template()
    # dlib: (padding + p) / (2 padding + 1) * size; the base of the nose is near the middle, below the eyes.
    np.testing.assert_allclose(t[4], (0.2 + np.array([0.4901123135679, 0.6277975316475])) / 1.4 * 64)
    assert t[0, 0] > t[1, 0] > t[3, 0] > t[2, 0]  # outer/inner corners of the right then the left eye


def test_template_crop_of_an_aligned_face_puts_the_eyes_on_the_chip_template():
    matrix = chip_matrix_for_aligned(256)
    points = template_points(256)
    eyes = transform_points(np.array([points["eye_left"], points["eye_right"]]), matrix)
    t = chip_template()
    np.testing.assert_allclose(eyes, [t[2:4].mean(axis=0), t[0:2].mean(axis=0)], atol=1e-9)
    # The same face at 64 px gives the same chip placement (the matrix scales with the aligned size).
    image = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    chip = extract_chip(image, matrix)
    assert chip.shape == (64, 64, 3) and chip.dtype == np.uint8


def test_a_missing_or_wrong_model_file_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        AgeEstimator.load(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        AgeEstimator.load(bad)


@pytest.fixture(scope="module")
def estimator():
    try:
        est = AgeEstimator.load()
    except ModelError as err:
        pytest.skip(f"the pinned age model cannot be fetched: {err}")
    yield est
    est.close()


@pytest.mark.slow
@pytest.mark.network
def test_error_on_documented_photos_is_below_12_years(estimator):
    from reface_tf.eval.age_sanity import mean_absolute_error, measure_documented_photos
    from reface_tf.samples import SamplesUnavailable

    try:
        rows = measure_documented_photos(estimator)
    except SamplesUnavailable as err:
        pytest.skip(f"sample photos unavailable: {err}")
    assert all(r.estimate is not None for r in rows)
    assert all(0.25 <= r.estimate <= 80 for r in rows)
    assert mean_absolute_error(rows) < 12.0
    assert mean_absolute_error(rows, aligned=True) < 12.0  # the route training data takes


@pytest.mark.slow
@pytest.mark.network
def test_aligned_faces_get_the_estimate_of_their_photo(estimator):
    """A face aligned by the project's aligner is estimated close to the same face in its photo, by landmarks and
    by the template crop alike."""
    from reface_tf.data.images import load_rgb
    from reface_tf.faces.align import align_face
    from reface_tf.samples import SamplesUnavailable, fetch_samples, select_sources

    try:
        path = fetch_samples(select_sources(["grace_hopper"]))["grace_hopper"]
    except SamplesUnavailable as err:
        pytest.skip(f"sample photos unavailable: {err}")
    rgb = load_rgb(path)
    photo_age = estimator.predict_photo(rgb)[0].age
    face = estimator.landmarker().detect(rgb)[0]
    aligned = align_face(rgb, face.landmarks, size=256)
    by_landmarks = estimator.predict(aligned.image[None])[0]
    by_template = estimator.predict(aligned.image[None], landmarks=[None])[0]
    assert abs(by_landmarks - photo_age) < 5 and abs(by_template - photo_age) < 8
    small = cv2.resize(aligned.image, (64, 64), interpolation=cv2.INTER_AREA)  # a generated sample's size
    assert abs(estimator.predict(small[None], landmarks=[None])[0] - photo_age) < 10
    with pytest.raises(ValueError, match="square uint8"):
        estimator.predict(np.zeros((1, 32, 48, 3), np.uint8))


@pytest.mark.slow
@pytest.mark.network
def test_prepare_ages_writes_estimates_and_lists_faceless_images(tmp_path, estimator, capsys):
    import shutil

    from PIL import Image

    from reface_tf.cli import run_cli
    from reface_tf.data.age_labels import read_class_labels
    from reface_tf.faces.pseudo_ages import main
    from reface_tf.samples import SamplesUnavailable, fetch_samples, select_sources

    try:
        paths = fetch_samples(select_sources(["grace_hopper", "biden"]))
    except SamplesUnavailable as err:
        pytest.skip(f"sample photos unavailable: {err}")
    for name, path in paths.items():
        shutil.copyfile(path, tmp_path / f"{name}.jpg")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    assert run_cli(main, ["--data", str(tmp_path), "--progress", "none"]) == 0
    labels = read_class_labels(tmp_path)
    assert labels.source == "csv" and labels.paths == ["biden.jpg", "grace_hopper.jpg"]
    assert 55 < labels.ages[0] < 80 and labels.ages[1] > 65
    skipped = (tmp_path / "labels_skipped.csv").read_text()
    assert "wall.png,no face found" in skipped and "broken.jpg" in skipped
    assert "2 faces labelled (photos), 2 skipped" in capsys.readouterr().out
    # Existing labels are never replaced silently; a bad group spec is one line before any work.
    assert run_cli(main, ["--data", str(tmp_path), "--progress", "none"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert run_cli(main, ["--data", str(tmp_path), "--age-groups", "0-10,5-20"]) == 2
    assert "--age-groups" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.network
def test_read_or_estimate_labels_estimates_only_a_folder_without_labels(tmp_path, estimator):
    import shutil

    from reface_tf.data.age_labels import AgeGroups
    from reface_tf.faces.pseudo_ages import read_or_estimate_labels
    from reface_tf.samples import SamplesUnavailable, fetch_samples, select_sources

    try:
        path = fetch_samples(select_sources(["grace_hopper"]))["grace_hopper"]
    except SamplesUnavailable as err:
        pytest.skip(f"sample photos unavailable: {err}")
    shutil.copyfile(path, tmp_path / "hopper.jpg")
    labels = read_or_estimate_labels(tmp_path, AgeGroups.parse("0-59,60+"), progress="none")
    assert labels.source == "estimate" and labels.paths == ["hopper.jpg"] and labels.classes.tolist() == [1]
    assert read_or_estimate_labels(tmp_path).source == "csv"  # now labelled: read, not estimated again
