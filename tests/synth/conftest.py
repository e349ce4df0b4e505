"""A synthetic but anatomically ordered 478-point face mesh, so the synth maths is testable without a detector."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.synth import mesh


def _arc(indices, centre, radii, start, stop):
    t = np.linspace(start, stop, len(indices))
    return {i: (centre[0] + radii[0] * np.cos(a), centre[1] + radii[1] * np.sin(a)) for i, a in zip(indices, t)}


def synthetic_landmarks(size: int = 256) -> np.ndarray:
    """Face centred in a ``size`` square: oval, eyes, brows, nose, lips where a frontal face has them."""
    s = size / 256.0
    rng = np.random.default_rng(0)
    # Unnamed points cluster on the nose so hulls and fits stay sensible.
    pts = np.array([128.0, 150.0]) + rng.uniform(-3, 3, size=(478, 2))
    named: dict[int, tuple[float, float]] = {}
    oval = mesh.FACE_OVAL
    named.update(_arc(oval, (128, 140), (60, 82), -np.pi / 2, 1.5 * np.pi - 2 * np.pi / len(oval)))
    for loop, cx in ((mesh.RIGHT_EYE, 100), (mesh.LEFT_EYE, 156)):
        named.update(_arc(loop, (cx, 118), (12, 5), 0 if cx > 128 else np.pi, (2 * np.pi if cx > 128 else 3 * np.pi) - 0.4))
    for brow, (x_lat, x_med) in ((mesh.RIGHT_BROW, (82, 116)), (mesh.LEFT_BROW, (174, 140))):
        xs = np.linspace(x_lat, x_med, 5)
        named.update({i: (x, 98.0) for i, x in zip(brow[:5], xs)})
        named.update({i: (x, 104.0) for i, x in zip(brow[5:], xs[::-1])})
    named.update({i: (128.0, y) for i, y in zip(mesh.NOSE_MIDLINE, np.linspace(112, 172, len(mesh.NOSE_MIDLINE)))})
    named[1], named[4], named[19], named[2] = (128, 162), (128, 158), (128, 166), (128, 172)
    for side, sign in ((mesh.NOSE_ALA_RIGHT, -1), (mesh.NOSE_ALA_LEFT, 1)):
        named.update({i: (128 + sign * (12 + (k % 4)), 150 + 2.5 * k) for k, i in enumerate(side)})
    named.update({45: (124, 163), 275: (132, 163), 44: (123, 160), 274: (133, 160)})
    named.update(_arc(mesh.LIPS_OUTER_UPPER, (128, 192), (22, 9), np.pi, 2 * np.pi))
    named.update(_arc(mesh.LIPS_OUTER_LOWER, (128, 192), (22, 11), np.pi, 0))
    named.update(_arc(mesh.LIPS_INNER_UPPER, (128, 192), (16, 3), np.pi, 2 * np.pi))
    named.update(_arc(mesh.LIPS_INNER_LOWER, (128, 192), (16, 3), np.pi, 0))
    named.update({i: (128 + (-1) ** k * (35 + k), 150 + k) for k, i in enumerate(mesh.CHEEKS)})
    for i, p in named.items():
        pts[i] = p
    return (pts * s).astype(np.float32)


@pytest.fixture
def landmarks():
    return synthetic_landmarks(256)


@pytest.fixture
def textured():
    """A 256x256 picture with detail everywhere, so any moved pixel shows."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:256, 0:256]
    base = np.stack([x, y, (x * 3 + y * 5) % 256], axis=-1)
    return np.clip(base + rng.integers(-25, 25, size=base.shape), 0, 255).astype(np.uint8)
