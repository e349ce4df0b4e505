"""Alignment on real faces: the template is hit, a moved copy aligns to the same picture, warp_back undoes it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reface_tf.data.images import load_rgb
from reface_tf.faces.align import align_face, stable_points, template_points, warp_back

SIZE = 256


@pytest.fixture(scope="module")
def portraits(single_face_path, astronaut, grace_hopper):
    return {"single_face": load_rgb(single_face_path), "astronaut": astronaut, "grace_hopper": grace_hopper}


@pytest.mark.parametrize("name", ["single_face", "astronaut", "grace_hopper"])
def test_eye_centres_land_on_the_template_within_two_percent(landmarker, portraits, name):
    rgb = portraits[name]
    aligned = align_face(rgb, landmarker.detect(rgb)[0].landmarks, size=SIZE)
    # Measured independently: detect the face again in the aligned picture.
    again = landmarker.detect(aligned.image)
    assert len(again) == 1
    eyes = stable_points(again[0].landmarks)[:2]
    tpl = template_points(SIZE)
    target = np.array([tpl["eye_left"], tpl["eye_right"]])
    assert np.linalg.norm(eyes - target, axis=1).max() < 0.02 * SIZE


def test_a_moved_copy_of_a_photo_aligns_to_the_same_picture(landmarker, grace_hopper):
    """The property a before/after pair relies on: pose and framing differences are removed."""
    h, w = grace_hopper.shape[:2]
    moved = cv2.getRotationMatrix2D((w / 2, h / 2), 14, 0.75)
    moved[:, 2] += (-30, 25)
    other = cv2.warpAffine(grace_hopper, moved, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    first = align_face(grace_hopper, landmarker.detect(grace_hopper)[0].landmarks, size=SIZE)
    second = align_face(other, landmarker.detect(other)[0].landmarks, size=SIZE)
    eyes = [stable_points(a.landmarks)[:2] for a in (first, second)]
    assert np.abs(eyes[0] - eyes[1]).max() < 0.01 * SIZE
    centre = (slice(64, 192), slice(64, 192))  # the face, away from border fill
    diff = np.abs(first.image[centre].astype(float) - second.image[centre].astype(float)).mean()
    assert diff < 12, diff
    # Control: without alignment the two photos differ far more in the same place.
    raw = np.abs(cv2.resize(grace_hopper, (SIZE, SIZE)).astype(float) - cv2.resize(other, (SIZE, SIZE)).astype(float))
    assert raw[centre].mean() > 2 * diff


def test_warp_back_restores_the_face_region_of_the_photo(landmarker, portraits):
    rgb = portraits["single_face"]
    face = landmarker.detect(rgb)[0]
    aligned = align_face(rgb, face.landmarks, size=SIZE)
    back, valid = warp_back(aligned.image, aligned.matrix, rgb.shape[:2])
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    region = np.zeros(rgb.shape[:2], bool)
    region[y0:y1, x0:x1] = True
    assert valid[region].all()  # the whole face is inside the aligned square
    error = np.abs(back.astype(float) - rgb.astype(float))[region & valid].mean()
    assert error < 6, error  # resampled twice (down to 256 px and back up), nothing else
    assert (back[~valid] == 0).all()
