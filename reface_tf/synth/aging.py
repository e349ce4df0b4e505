"""SIMULATED "older" faces: a deterministic, landmark-driven appearance change of an aligned photo.

Not an age prediction and not a real older photo of anyone. It gives the demo dataset a second class that differs
from the photos in a known, visible way, so an age-conditional generator can be trained and demonstrated end to end
on faces that all have about the same age. Everything written from these outputs must say that it is simulated.

Three edits, all scaled by ``strength`` (0 = an exact copy):

* hair: a band around the top and sides of the head, outside the face as the landmark segmentation
  (:func:`reface_tf.synth.segmaps.landmark_segmap`) draws it, above the eyes and not skin-coloured, is blended
  toward a light grey (background inside the band is greyed too: the landmarks do not outline hair);
* colour: the saturation of the whole picture is lowered;
* lines: thin dark strokes where wrinkles form, placed by landmarks: three forehead lines between the brows and
  the top of the face mesh, crow's feet fanning from the outer eye corners, and nasolabial folds from the nose
  wings past the mouth corners.

>>> older = simulate_older(aligned.image, aligned.landmarks)   # doctest: +SKIP
"""

from __future__ import annotations

import cv2
import numpy as np

from reface_tf.synth import mesh
from reface_tf.synth.procedure import edit_region
from reface_tf.synth.segmaps import landmark_segmap

SIMULATED_AGE_NOTE = ("SIMULATED: greyed hair band, lowered saturation and drawn wrinkle lines placed by face "
                      "landmarks; not an age prediction, not a real older face.")
HAIR_GREY = 200.0  # the grey level hair is pulled toward (0-255)
HAIR_GROWTH = 0.30  # the hair band reaches this share of the face height beyond the face oval
SKIN_DISTANCE = 28.0  # RGB distance from the median skin colour below which a band pixel is left as skin
SATURATION = 0.55  # share of the saturation kept at strength 1
LINE_DARKENING = 0.28  # how much a wrinkle stroke darkens the skin under it at strength 1


def hair_band(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Float32 HxW weights in [0, 1] of the hair band: around the face oval, outside the segmented face, above
    the eyes, and not skin-coloured (the face mesh stops below the hairline on a high forehead: that bare skin
    must stay skin); feathered so the greying has no hard edge."""
    pts = np.asarray(landmarks, dtype=np.float64)
    h, w = image.shape[:2]
    around = edit_region(pts, (h, w), HAIR_GROWTH)
    face = landmark_segmap(pts, (h, w))
    eye_line = pts[list(mesh.RIGHT_EYE) + list(mesh.LEFT_EYE), 1].mean()
    above = (np.arange(h)[:, None] < eye_line) & np.ones((1, w), dtype=bool)
    band = (around & (face == 0) & above).astype(np.float32)
    skin = image[face == 1].astype(np.float32)
    if len(skin):
        distance = np.linalg.norm(image.astype(np.float32) - np.median(skin, axis=0), axis=-1)
        band *= np.clip((distance - SKIN_DISTANCE) / SKIN_DISTANCE, 0.0, 1.0)
    height = np.linalg.norm(pts[mesh.CHIN] - pts[mesh.FOREHEAD])
    return np.clip(cv2.GaussianBlur(band, (0, 0), max(1.0, 0.03 * height)), 0.0, 1.0)


def _wrinkle_strokes(landmarks: np.ndarray) -> list[np.ndarray]:
    """Polylines (float pixel coordinates) of the drawn lines."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eyes = (pts[list(mesh.RIGHT_EYE)].mean(axis=0), pts[list(mesh.LEFT_EYE)].mean(axis=0))
    across = (eyes[1] - eyes[0]) / max(np.linalg.norm(eyes[1] - eyes[0]), 1e-6)
    up = np.array([across[1], -across[0]])  # image "up" for an upright face
    eye_gap = np.linalg.norm(eyes[1] - eyes[0])
    strokes = []
    brow_top = np.concatenate([pts[list(mesh.RIGHT_BROW)], pts[list(mesh.LEFT_BROW)]])
    brow_y = brow_top @ up
    top = pts[mesh.FOREHEAD] @ up
    outer_left, outer_right = pts[70], pts[300]  # the brows' outer ends
    left = outer_left + 0.22 * (outer_right - outer_left)
    right = outer_right - 0.22 * (outer_right - outer_left)
    for share in (0.22, 0.40, 0.58):
        lift = (brow_y.max() + share * (top - brow_y.max())) - (0.5 * (left + right)) @ up
        xs = np.linspace(0.0, 1.0, 9)
        line = left[None] + xs[:, None] * (right - left)[None] + up[None] * lift
        line = line + up[None] * (0.06 * eye_gap * np.sin(np.pi * xs))[:, None]  # a slight arch
        strokes.append(line)
    for corner, side in ((pts[33], -1.0), (pts[263], 1.0)):
        for angle in (-0.45, 0.0, 0.45):
            direction = np.cos(angle) * across * side + np.sin(angle) * up
            start = corner + direction * 0.06 * eye_gap
            strokes.append(np.stack([start, start + direction * 0.22 * eye_gap]))
    for wing, mouth, side in ((pts[129], pts[61], -1.0), (pts[358], pts[291], 1.0)):
        out = across * side * 0.08 * eye_gap
        mid = 0.5 * (wing + mouth) + out * 1.3
        end = mouth + out - up * 0.12 * eye_gap
        strokes.append(np.stack([wing + out * 0.5, mid, end]))
    return strokes


def wrinkle_lines(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float32 HxW stroke intensity in [0, 1] of the drawn lines, anti-aliased and slightly blurred."""
    pts = np.asarray(landmarks, dtype=np.float64)
    canvas = np.zeros(shape[:2], dtype=np.uint8)
    eye_gap = np.linalg.norm(pts[33] - pts[263])
    thickness = max(1, int(round(0.012 * eye_gap)))
    for line in _wrinkle_strokes(pts):
        cv2.polylines(canvas, [np.round(line * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), 0.7)


def simulate_older(image: np.ndarray, landmarks: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """A SIMULATED "older" version (HxWx3 uint8) of an aligned face and its landmarks in the same pixel frame.

    Deterministic: the same inputs give the same bytes. ``strength`` 0 returns an exact copy.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {img.dtype} {img.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0:
        return img.copy()
    h, w = img.shape[:2]
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= 1.0 - (1.0 - SATURATION) * strength
    out = cv2.cvtColor(np.clip(np.rint(hsv), 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    grey = out.mean(axis=-1, keepdims=True) * 0.45 + HAIR_GREY * 0.55
    alpha = (hair_band(img, landmarks) * 0.85 * strength)[..., None]
    out = out * (1.0 - alpha) + grey * alpha
    out *= 1.0 - (wrinkle_lines(landmarks, (h, w)) * LINE_DARKENING * strength)[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
