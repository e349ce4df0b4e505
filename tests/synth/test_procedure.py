"""Simulated procedures: identity at strength 0, pixels outside the edit region untouched, features move."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.synth import mesh
from reface_tf.synth.procedure import (ProcedureConfig, displacement_field, edit_region, simulate_procedure,
                                       target_landmarks)


def _half_width(points: np.ndarray, indices) -> float:
    return float(np.abs(points[list(indices), 0] - 128.0).mean())


def test_strength_zero_is_identity(textured, landmarks):
    out = simulate_procedure(textured, landmarks, strength=0.0)
    np.testing.assert_array_equal(out.image, textured)
    np.testing.assert_array_equal(out.landmarks, landmarks)
    assert not np.shares_memory(out.image, textured)


@pytest.mark.parametrize("strength", [0.5, 1.0, 2.0])
def test_pixels_outside_the_face_region_are_unchanged(textured, landmarks, strength):
    out = simulate_procedure(textured, landmarks, strength=strength)
    outside = ~out.region
    assert outside.sum() > 0.5 * outside.size  # the region really is the face, not the picture
    np.testing.assert_array_equal(out.image[outside], textured[outside])
    changed = (out.image != textured).any(axis=-1)
    assert changed[out.region].mean() > 0.2
    # The region is the face oval grown a little: it contains the whole oval.
    oval = np.round(landmarks[list(mesh.FACE_OVAL)]).astype(int)
    assert out.region[oval[:, 1].clip(0, 255), oval[:, 0].clip(0, 255)].all()


def test_target_landmarks_narrow_nose_tighten_jaw_lift_brows(landmarks):
    after = target_landmarks(landmarks, strength=1.0)
    ala = mesh.NOSE_ALA_RIGHT + mesh.NOSE_ALA_LEFT
    assert _half_width(after, ala) < 0.85 * _half_width(landmarks, ala)
    jaw_angles = (172, 397, 136, 365)
    assert _half_width(after, jaw_angles) < 0.95 * _half_width(landmarks, jaw_angles)
    brows = list(mesh.RIGHT_BROW + mesh.LEFT_BROW)
    assert (after[brows, 1] < landmarks[brows, 1] - 1.0).all()
    assert after[1, 1] < landmarks[1, 1]  # nose tip raised
    fixed = list(mesh.RIGHT_EYE + mesh.LEFT_EYE + mesh.LIPS_OUTER_UPPER + (mesh.FOREHEAD,))
    np.testing.assert_array_equal(after[fixed], landmarks[fixed])
    stronger = target_landmarks(landmarks, strength=2.0)
    assert _half_width(stronger, ala) < _half_width(after, ala)


def test_image_content_follows_the_landmarks(landmarks):
    # Each pixel's red channel is its own x coordinate, so the output tells where it was sampled from.
    ramp = np.zeros((256, 256, 3), np.uint8)
    ramp[..., 0] = np.arange(256, dtype=np.uint8)[None, :]
    cfg = ProcedureConfig(smoothing=0.0)
    out = simulate_procedure(ramp, landmarks, strength=2.0, config=cfg)
    for index in (129, 358, 172, 397):  # an ala on each side, both jaw angles
        bx, by = landmarks[index]
        ax, ay = out.landmarks[index]
        assert abs(ax - bx) > 2.0
        sampled = float(out.image[int(round(ay)), int(round(ax)), 0])
        assert abs(sampled - bx) < 1.5, (index, sampled, bx, ax)


def test_displacement_is_zero_outside_region_and_deterministic(landmarks):
    after = target_landmarks(landmarks, 1.0)
    d1 = displacement_field(landmarks, after, (256, 256))
    d2 = displacement_field(landmarks, after, (256, 256))
    np.testing.assert_array_equal(d1, d2)
    region = edit_region(landmarks, (256, 256))
    assert np.abs(d1[~region]).max() == 0.0
    assert np.abs(d1[region]).max() > 1.0
    assert np.abs(displacement_field(landmarks, landmarks, (256, 256))).max() == 0.0


def test_deterministic_and_marked_simulated(textured, landmarks):
    a = simulate_procedure(textured, landmarks, 1.0)
    b = simulate_procedure(textured, landmarks, 1.0)
    np.testing.assert_array_equal(a.image, b.image)
    assert "SIMULATED" in a.note


def test_rejects_bad_inputs(textured, landmarks):
    with pytest.raises(ValueError, match="uint8"):
        simulate_procedure(textured.astype(np.float32), landmarks)
    with pytest.raises(ValueError, match="strength"):
        simulate_procedure(textured, landmarks, strength=-1)
    with pytest.raises(ValueError, match="478"):
        target_landmarks(landmarks[:468])
