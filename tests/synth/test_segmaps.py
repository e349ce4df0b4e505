"""Segmentation maps from landmarks: CelebAMask-HQ indices, subject-side naming, lossless PNG round trip."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reface_tf.errors import DataError
from reface_tf.synth import mesh
from reface_tf.synth.segmaps import (CLASS_INDEX, CLASS_NAMES, NUM_CLASSES, colorize, landmark_segmap,
                                     load_label_png, save_label_png)


def test_class_order_is_celebamask_hq():
    assert CLASS_NAMES[:6] == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye")
    assert CLASS_NAMES[10:13] == ("mouth", "u_lip", "l_lip") and CLASS_NAMES[17:] == ("neck", "cloth")
    assert NUM_CLASSES == 19


def test_parts_land_where_the_landmarks_are(landmarks):
    labels = landmark_segmap(landmarks, (256, 256))
    assert labels.dtype == np.uint8 and labels.shape == (256, 256)
    at = lambda x, y: int(labels[int(round(y)), int(round(x))])  # noqa: E731
    assert at(0, 0) == CLASS_INDEX["background"]
    assert at(*landmarks[list(mesh.RIGHT_EYE)].mean(0)) == CLASS_INDEX["r_eye"]  # image left = subject's right
    assert at(*landmarks[list(mesh.LEFT_EYE)].mean(0)) == CLASS_INDEX["l_eye"]
    assert at(*landmarks[4]) == CLASS_INDEX["nose"]
    assert at(128, 192) == CLASS_INDEX["mouth"]
    assert at(128, 186) == CLASS_INDEX["u_lip"] and at(128, 199) == CLASS_INDEX["l_lip"]
    assert at(60 + 128 - 100, 140) == CLASS_INDEX["skin"]
    assert set(np.unique(labels)) <= {CLASS_INDEX[n] for n in
                                      ("background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow",
                                       "mouth", "u_lip", "l_lip")}


def test_png_round_trip_and_lossy_refused(tmp_path, landmarks):
    labels = landmark_segmap(landmarks, (256, 256))
    path = tmp_path / "maps" / "0001.png"
    save_label_png(path, labels)
    np.testing.assert_array_equal(load_label_png(path), labels)
    assert Image.open(path).mode == "L"
    with pytest.raises(DataError, match="png"):
        save_label_png(tmp_path / "0001.jpg", labels)
    Image.fromarray(colorize(labels)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="single-channel"):
        load_label_png(tmp_path / "rgb.png")


def test_colorize(landmarks):
    labels = landmark_segmap(landmarks, (64, 64))
    rgb = colorize(labels)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    with pytest.raises(ValueError):
        colorize(np.full((4, 4), 19, np.uint8))
