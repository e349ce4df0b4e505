"""Faces too small for the short-range detector's whole-picture pass are found in tiles."""

from __future__ import annotations

import numpy as np


def test_small_face_in_a_large_photo_is_found_at_the_right_place(landmarker, astronaut):
    canvas = np.full((1200, 1600, 3), 90, np.uint8)
    canvas[600:1112, 1000:1512] = astronaut  # face about 7% of the picture width
    assert landmarker._detect_in(canvas, 0, 0) == []  # the whole-picture pass alone misses it
    faces = landmarker.detect(canvas)
    assert len(faces) == 1  # found once, although it lies in the overlap of several tiles
    reference = landmarker.detect(astronaut)[0]
    shift = np.array([1000, 600], dtype=np.float32)
    assert np.abs(faces[0].landmarks - (reference.landmarks + shift)).mean() < 2.0
    x0, y0, x1, y1 = faces[0].box
    assert 1000 <= x0 < x1 <= 1512 and 600 <= y0 < y1 <= 1112
    assert 0.0 < faces[0].score <= 1.0


def test_tiles_find_nothing_in_a_photo_without_a_face(landmarker, no_face_path):
    from reface_tf.data.images import load_rgb

    assert landmarker.detect(load_rgb(no_face_path)) == []
