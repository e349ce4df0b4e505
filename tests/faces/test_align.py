"""Alignment maths with known numbers: no MediaPipe, synthetic landmarks and images."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.faces import align
from reface_tf.faces.align import (
    EYE_LEFT,
    EYE_RIGHT,
    FACE_OVAL,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_TIP,
    POINT_NAMES,
    align_face,
    estimate_similarity,
    face_mask,
    stable_points,
    template_points,
    transform_points,
    warp_back,
)


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def synthetic_landmarks(matrix: np.ndarray, size: int = 256, margin: float = 0.2) -> np.ndarray:
    """478 landmarks of a canonical face (stable points exactly on the template) placed in a photo by ``matrix``.

    Eye contours are rings around the template eye centres, the face oval an ellipse around the face, the
    rest jitter near the centre; then everything is moved into a "photo" by ``matrix``.
    """
    rng = np.random.default_rng(0)
    tpl = template_points(size, margin)
    pts = size / 2 + rng.normal(0, size / 20, (478, 2))
    for idx, name in ((EYE_LEFT, "eye_left"), (EYE_RIGHT, "eye_right")):
        t = np.linspace(0, 2 * np.pi, len(idx), endpoint=False)
        pts[list(idx)] = np.array(tpl[name]) + np.stack([12 * np.cos(t), 5 * np.sin(t)], axis=1)
    pts[NOSE_TIP], pts[MOUTH_LEFT], pts[MOUTH_RIGHT] = tpl["nose_tip"], tpl["mouth_left"], tpl["mouth_right"]
    t = np.linspace(-np.pi / 2, 1.5 * np.pi, len(FACE_OVAL), endpoint=False)
    pts[list(FACE_OVAL)] = np.array([size / 2, size / 2]) + np.stack([0.24 * size * np.cos(t), 0.3 * size * np.sin(t)], axis=1)
    return transform_points(pts, matrix)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture (so bilinear resampling is nearly lossless) with distinct channels."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    import cv2

    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------- similarity fit

@pytest.mark.parametrize("angle, scale, tx, ty", [(0, 1, 0, 0), (23, 1.7, -40, 12.5), (-170, 0.31, 500, -300)])
def test_similarity_recovers_a_known_transform_exactly(angle, scale, tx, ty):
    src = np.random.default_rng(1).uniform(0, 1000, (7, 2))
    truth = similarity(angle, scale, tx, ty)
    np.testing.assert_allclose(estimate_similarity(src, transform_points(src, truth)), truth, atol=1e-8)


def test_similarity_is_least_squares_under_noise():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 500, (200, 2))
    truth = similarity(10, 0.8, 30, -20)
    dst = transform_points(src, truth) + rng.normal(0, 1.0, src.shape)
    fit = estimate_similarity(src, dst)
    np.testing.assert_allclose(fit, truth, atol=0.05 * np.abs(truth).max())
    # The fit's residual is no larger than the true transform's: it is the least-squares optimum.
    assert np.square(transform_points(src, fit) - dst).sum() <= np.square(transform_points(src, truth) - dst).sum()


def test_similarity_never_reflects_a_mirrored_point_set():
    src = np.array([[0, 0], [10, 0], [0, 5], [3, 7]], dtype=float)
    mirrored = src * [-1, 1]
    fit = estimate_similarity(src, mirrored)
    assert np.linalg.det(fit[:, :2]) > 0  # a proper rotation + scale, never a flip
    a, b = fit[0, 0], fit[1, 0]
    np.testing.assert_allclose(fit[:, :2], [[a, -b], [b, a]])  # no shear, uniform scale


def test_weights_pull_the_fit_toward_heavy_points():
    src = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    dst = src.copy()
    dst[3] += [5, 5]  # one point disagrees
    light = estimate_similarity(src, dst, weights=[1, 1, 1, 1e-9])
    np.testing.assert_allclose(transform_points(src[:3], light), dst[:3], atol=1e-6)


def test_degenerate_points_are_refused():
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), np.random.default_rng(0).uniform(size=(5, 2)))
    with pytest.raises(ValueError):
        estimate_similarity(np.zeros((5, 2)), np.zeros((4, 2)))


# ------------------------------------------------------------------------------------------------ template

def test_template_is_symmetric_and_margin_moves_points_toward_the_centre():
    tight, loose = template_points(256, 0.0), template_points(256, 0.3)
    assert tuple(tight) == POINT_NAMES
    for name in POINT_NAMES:
        assert all(0 < c < 256 for c in tight[name])
    assert tight["eye_left"][0] + tight["eye_right"][0] == pytest.approx(256)
    assert tight["eye_left"][1] == tight["eye_right"][1]
    assert tight["nose_tip"][0] == pytest.approx(128)
    assert abs(loose["eye_left"][0] - 128) < abs(tight["eye_left"][0] - 128)
    # Eyes above nose above mouth.
    assert tight["eye_left"][1] < tight["nose_tip"][1] < tight["mouth_left"][1]
    with pytest.raises(ValueError):
        template_points(256, 0.5)


def test_template_scales_with_the_output_size():
    small, big = template_points(128, 0.2), template_points(512, 0.2)
    for name in POINT_NAMES:
        np.testing.assert_allclose(np.array(big[name]), 4 * np.array(small[name]))


# --------------------------------------------------------------------------------------------- align_face

@pytest.mark.parametrize("angle, scale", [(0, 1.0), (30, 2.5), (-12, 0.7)])
def test_align_face_puts_stable_points_on_the_template(angle, scale):
    photo_from_canonical = similarity(angle, scale, 300, 200)
    landmarks = synthetic_landmarks(photo_from_canonical)
    rgb = textured(900, 1000)
    aligned = align_face(rgb, landmarks, size=256, margin=0.2)
    assert aligned.image.shape == (256, 256, 3) and aligned.image.dtype == np.uint8
    assert aligned.landmarks.shape == (478, 2) and aligned.landmarks.dtype == np.float32
    tpl = np.array(list(template_points(256, 0.2).values()))
    np.testing.assert_allclose(stable_points(aligned.landmarks), tpl, atol=1e-3)
    # The forward matrix is the inverse of how the face was placed in the photo.
    np.testing.assert_allclose(aligned.matrix, np.linalg.inv(np.vstack([photo_from_canonical, [0, 0, 1]]))[:2], atol=1e-6)
    # Face size is measured in the original photo: it grows with the placement scale.
    assert aligned.face_size == pytest.approx(0.6 * 256 * scale, rel=0.05)


def test_aligned_pixels_come_from_where_the_matrix_says():
    rgb = textured(600, 800, seed=3)
    aligned = align_face(rgb, synthetic_landmarks(similarity(15, 1.3, 380, 260)), size=128, margin=0.1)
    inverse = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))[:2]
    for x, y in [(10, 10), (64, 64), (100, 30)]:
        sx, sy = np.rint(transform_points(np.array([[x, y]], dtype=float), inverse)[0]).astype(int)
        assert np.abs(aligned.image[y, x].astype(int) - rgb[sy, sx]).max() <= 12


def test_border_modes_fill_outside_the_photo_differently():
    rgb = np.full((300, 300, 3), 200, dtype=np.uint8)
    # Face near the top-left corner, so the aligned square reaches past the photo.
    landmarks = synthetic_landmarks(similarity(0, 1.0, -60, -60))
    constant = align_face(rgb, landmarks, size=256, border_mode="constant").image
    replicate = align_face(rgb, landmarks, size=256, border_mode="replicate").image
    assert (constant[:40, :40] == 0).all()
    assert (replicate[:40, :40] == 200).all()
    with pytest.raises(ValueError, match="border_mode"):
        align_face(rgb, landmarks, border_mode="wrap-around")


def test_grayscale_photo_gives_three_channels():
    gray = textured(400, 400)[..., 0]
    aligned = align_face(gray, synthetic_landmarks(similarity(0, 1, 72, 72)), size=64)
    assert aligned.image.shape == (64, 64, 3)


def test_large_downscale_does_not_alias():
    # A 1-px checkerboard shrunk 6x must become flat mid-grey, not a moiré of black and white.
    yy, xx = np.mgrid[0:1800, 0:1800]
    board = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    aligned = align_face(board, synthetic_landmarks(similarity(7, 6.0, 900, 900)), size=256)
    assert abs(float(aligned.image.mean()) - 127.5) < 10
    assert float(aligned.image.std()) < 12


# ------------------------------------------------------------------------------- warp_back and face_mask

def test_warp_back_round_trip_reproduces_the_face_region():
    rgb = textured(700, 600, seed=5)
    landmarks = synthetic_landmarks(similarity(20, 0.9, 310, 330))
    aligned = align_face(rgb, landmarks, size=256)
    back, valid = warp_back(aligned.image, aligned.matrix, rgb.shape[:2])
    assert back.shape == rgb.shape and back.dtype == np.uint8 and valid.shape == rgb.shape[:2]
    assert valid.dtype == bool and 0.05 < valid.mean() < 0.9
    err = np.abs(back.astype(np.float64) - rgb)[valid].mean()
    assert err < 3.0, err
    # Every valid pixel round-trips (two bilinear resamplings of a smooth texture: a few grey levels), not only on
    # average; an image shifted by 3 px differs by ~28 levels on average, so this also pins the geometry.
    per_pixel = np.abs(back.astype(np.float64) - rgb).max(axis=2)[valid]
    assert np.quantile(per_pixel, 0.999) <= 4 and per_pixel.max() <= 8, (np.quantile(per_pixel, 0.999), per_pixel.max())
    # The valid region is exactly the aligned square seen from the photo: valid pixels map inside [0, 255], and
    # pixels mapping at least one pixel inside its border are valid.
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    mapped = np.tensordot(aligned.matrix, np.stack([xx, yy, np.ones_like(xx)]).astype(np.float64), axes=1)
    assert mapped[:, valid].min() >= -1e-6 and mapped[:, valid].max() <= 255 + 1e-6
    inside = np.all((mapped >= 1) & (mapped <= 254), axis=0)
    assert inside.sum() > 0 and valid[inside].all()


def test_warp_back_valid_mask_is_the_aligned_square():
    matrix = similarity(0, 0.5, 0, 0)  # original → aligned: shrink by 2
    back, valid = warp_back(np.full((64, 64), 255, np.uint8), matrix, (200, 200))
    assert valid[:120, :120].all() and not valid[:, 130:].any() and not valid[130:].any()
    assert (back[valid] == 255).all()


def test_face_mask_is_one_inside_zero_outside_and_feathered():
    landmarks = synthetic_landmarks(similarity(0, 1, 0, 0))  # already in the aligned frame
    hard = face_mask(landmarks, 256, feather=0)
    soft = face_mask(landmarks, 256, feather=12)
    for mask in (hard, soft):
        assert mask.shape == (256, 256) and mask.dtype == np.float32
        assert mask.min() >= 0 and mask.max() <= 1
        assert mask[128, 128] == pytest.approx(1.0)
        assert mask[2, 2] == 0 and mask[250, 250] == 0
    assert set(np.unique(hard)) <= {0.0, 1.0} or ((hard > 0) & (hard < 1)).mean() < 0.01  # only AA edge
    partial = ((soft > 0.02) & (soft < 0.98)).sum()
    assert partial > 4 * ((hard > 0.02) & (hard < 0.98)).sum()  # a real soft band
    assert soft.sum() < hard.sum()  # the fade lies inside the oval


def _outline(hard: np.ndarray) -> np.ndarray:
    """The oval's outline: pixels of the oval with a neighbour outside it."""
    import cv2

    return hard & ~cv2.erode(hard.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


# predict.py's default feathers are 2 (64 px models), 4 (128 px) and 8 (256 px): size / 32, at least 2.
@pytest.mark.parametrize("size, feather", [(64, 2.0), (64, 3.0), (128, 4.0), (256, 2.0), (256, 8.0), (256, 12.0),
                                           (256, 20.0)])
def test_face_mask_fade_ends_on_the_oval_edge(size, feather):
    """What face_mask's docstring says: weight exactly 0 on the oval's outline and outside it, the whole fade
    inside. Before, the blurred fade left 7-10 % on the outline (up to 37 % at feather 2), and the first
    inside-only version still 2-4 % at the small feathers predict.py uses for 64 and 128 px models."""
    import cv2

    landmarks = synthetic_landmarks(similarity(0, 1, 0, 0), size=size)
    hard = face_mask(landmarks, size, feather=0) > 0.5
    soft = face_mask(landmarks, size, feather=feather)
    edge = _outline(hard)
    assert edge.sum() > 50
    assert soft[edge].max() == 0.0 and soft[~hard].max() == 0.0
    # ... and it is a fade of about ``feather`` px: full weight from feather + 1.5 px inside the outline on.
    distance = cv2.distanceTransform(hard.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert soft[distance >= feather + 1.5].min() == pytest.approx(1.0)
    band = (soft > 0) & (soft < 1)
    assert distance[band].min() > 1.5 and distance[band].max() < feather + 1.5
    assert soft[size // 2, size // 2] == pytest.approx(1.0)


def _demo_fade_reference(landmarks: np.ndarray, size: int, feather: float) -> np.ndarray:
    """face_mask as it was before the fade moved inside the oval, verbatim: the demo builder's fade."""
    import cv2

    from reface_tf.faces.align import FACE_OVAL

    oval = np.asarray(landmarks, dtype=np.float64)[list(FACE_OVAL)]
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(oval * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    radius = max(1, int(round(feather / 2)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.erode(mask, kernel)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=feather / 3.0)
    return np.clip(mask / 255.0, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("feather", [2.0, 5.12, 8.0, 20.0])
def test_demo_builder_fade_is_kept_bit_for_bit(feather):
    """The procedure simulation (demo dataset) blends with fade_inside=False: its pixels must not change."""
    landmarks = synthetic_landmarks(similarity(10, 0.9, 7.3, -4.1))
    legacy = face_mask(landmarks, 256, feather=feather, fade_inside=False)
    assert np.array_equal(legacy, _demo_fade_reference(landmarks, 256, feather))
    edge = _outline(face_mask(landmarks, 256, feather=0) > 0.5)
    if feather >= 8:
        assert 0.03 < float(legacy[edge].mean()) < 0.15  # what the docstring says of this fade


def test_stable_points_need_a_face_mesh():
    with pytest.raises(ValueError, match="478"):
        stable_points(np.zeros((68, 2)))


def test_align_module_does_not_import_mediapipe():
    import sys

    assert "mediapipe" not in align.__dict__
    source = open(align.__file__, encoding="utf-8").read()
    assert "import mediapipe" not in source and "from mediapipe" not in source
    assert sys.modules["reface_tf.faces.align"] is align
