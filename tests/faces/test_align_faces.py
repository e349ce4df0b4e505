"""Alignment on real photos: detected eyes land on the template, pose differences vanish, the inverse warp gives
the face back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from reface_tf.data.images import load_rgb
from reface_tf.faces.align import align_face, face_mask, stable_points, template_points, warp_back

PHOTOS = ["single_face", "astronaut", "grace_hopper"]


@pytest.fixture(scope="module")
def faces(landmarker, single_face_path, astronaut, grace_hopper):
    photos = {"single_face": load_rgb(single_face_path), "astronaut": astronaut, "grace_hopper": grace_hopper}
    return {name: (rgb, landmarker.detect(rgb)[0].landmarks) for name, rgb in photos.items()}


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("size,margin", [(256, 0.2), (128, 0.1)])
def test_eye_centres_land_within_two_percent_of_the_template(landmarker, faces, name, size, margin):
    rgb, landmarks = faces[name]
    aligned = align_face(rgb, landmarks, size=size, margin=margin)
    assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
    template = template_points(size, margin)
    redetected = landmarker.detect(aligned.image)
    assert len(redetected) == 1
    # Checked on landmarks found afresh in the aligned picture, not only on the transformed ones.
    for points in (stable_points(aligned.landmarks), stable_points(redetected[0].landmarks)):
        for i, key in enumerate(("eye_left", "eye_right")):
            assert np.hypot(*(points[i] - template[key])) < 0.02 * size, (key, points[i], template[key])


@pytest.mark.parametrize("name", PHOTOS)
def test_round_trip_reproduces_the_face_region(faces, name):
    rgb, landmarks = faces[name]
    aligned = align_face(rgb, landmarks, size=256)
    back, valid = warp_back(aligned.image, aligned.matrix, rgb.shape[:2])
    assert back.shape == rgb.shape and back.dtype == np.uint8
    oval, _ = warp_back(face_mask(aligned.landmarks, 256, feather=0), aligned.matrix, rgb.shape[:2])
    inside = valid & (oval > 0.5)
    assert inside.sum() > 0.3 * aligned.face_size**2  # the face oval, not a sliver of it
    error = np.abs(back.astype(np.float64) - rgb)[inside].mean()
    assert error < 6.0, error  # only the detail lost to downsampling differs
    # Pixels that map more than a pixel outside the aligned square get nothing back and are not valid.
    ys, xs = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    mapped = np.stack([xs, ys], axis=-1) @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    outside = ((mapped < -1) | (mapped > 256)).any(axis=-1)
    assert outside.any() and not valid[outside].any() and (back[outside] == 0).all()


def test_face_size_is_measured_in_the_original(faces):
    rgb, landmarks = faces["single_face"]
    full = align_face(rgb, landmarks)
    half = align_face(rgb[::2, ::2].copy(), landmarks / 2)
    assert half.face_size == pytest.approx(full.face_size / 2, rel=1e-6)
    assert 0.25 * max(rgb.shape[:2]) < full.face_size <= max(rgb.shape[:2])


def test_before_and_after_photos_share_one_frame(faces):
    """Two different people aligned to the same template: their eyes and noses coincide in the output."""
    a = align_face(*faces["astronaut"], size=256)
    b = align_face(*faces["grace_hopper"], size=256)
    distance = np.hypot(*(stable_points(a.landmarks)[:3] - stable_points(b.landmarks)[:3]).T)
    assert distance.max() < 0.04 * 256


def test_a_moved_copy_of_a_photo_aligns_to_the_same_picture(landmarker, grace_hopper):
    """The property a before/after pair relies on: pose and framing differences are removed."""
    h, w = grace_hopper.shape[:2]
    moved = cv2.getRotationMatrix2D((w / 2, h / 2), 14, 0.75)
    moved[:, 2] += (-30, 25)
    other = cv2.warpAffine(grace_hopper, moved, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    first = align_face(grace_hopper, landmarker.detect(grace_hopper)[0].landmarks, size=256)
    second = align_face(other, landmarker.detect(other)[0].landmarks, size=256)
    eyes = [stable_points(a.landmarks)[:2] for a in (first, second)]
    assert np.abs(eyes[0] - eyes[1]).max() < 0.01 * 256
    centre = (slice(64, 192), slice(64, 192))  # the face, away from border fill
    diff = np.abs(first.image[centre].astype(float) - second.image[centre].astype(float)).mean()
    assert diff < 12, diff
    # Control: without alignment the two photos differ far more in the same place.
    raw = np.abs(cv2.resize(grace_hopper, (256, 256)).astype(float) - cv2.resize(other, (256, 256)).astype(float))
    assert raw[centre].mean() > 2 * diff
