"""Simulated older faces: an exact copy at strength 0, deterministic, and each edit where it is meant to be."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reface_tf.synth import mesh
from reface_tf.synth.aging import hair_band, simulate_older, wrinkle_lines


def test_strength_zero_is_a_copy_and_the_transform_is_deterministic(textured, landmarks):
    np.testing.assert_array_equal(simulate_older(textured, landmarks, 0.0), textured)
    first, second = simulate_older(textured, landmarks), simulate_older(textured, landmarks)
    np.testing.assert_array_equal(first, second)
    assert (first != textured).any(axis=-1).mean() > 0.5  # saturation changes nearly every coloured pixel
    with pytest.raises(ValueError, match="strength"):
        simulate_older(textured, landmarks, 1.5)


def test_saturation_drops_and_hair_greys_above_the_eyes_outside_the_face(landmarks):
    # A brown "hair" picture with a skin-coloured face oval in it.
    image = np.zeros((256, 256, 3), np.uint8)
    image[:] = (90, 60, 30)
    oval = np.round(landmarks[list(mesh.FACE_OVAL)]).astype(np.int32)
    cv2.fillPoly(image, [oval], (220, 170, 140))
    older = simulate_older(image, landmarks)
    hsv_before = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].astype(float)
    hsv_after = cv2.cvtColor(older, cv2.COLOR_RGB2HSV)[..., 1].astype(float)
    assert hsv_after.mean() < 0.7 * hsv_before.mean()
    band = hair_band(image, landmarks)
    eye_y = landmarks[list(mesh.RIGHT_EYE), 1].mean()
    assert band[int(eye_y) + 10:].max() < 0.05  # nothing below the eyes
    top = tuple(np.round(landmarks[mesh.FOREHEAD]).astype(int))
    hair_pixel = (top[1] - 8, top[0])  # just above the top of the face oval
    assert band[hair_pixel] > 0.5
    assert older[hair_pixel].astype(int).mean() > image[hair_pixel].astype(int).mean() + 60  # greyed, lighter
    assert band[int(eye_y) - 20, 128] < 0.05  # the forehead is face, not hair


def test_wrinkle_lines_lie_inside_the_face(landmarks):
    lines = wrinkle_lines(landmarks, (256, 256))
    face = np.zeros((256, 256), np.uint8)
    cv2.fillPoly(face, [np.round(landmarks[list(mesh.FACE_OVAL)]).astype(np.int32)], 1)
    assert lines.sum() > 50
    assert lines[face == 1].sum() > 0.97 * lines.sum()
