"""Face segmentation maps rasterised from face-mesh landmarks, in the CelebAMask-HQ 19-class convention.

>>> from reface_tf.synth.segmaps import landmark_segmap, save_label_png, colorize
>>> labels = landmark_segmap(aligned.landmarks, (256, 256))   # doctest: +SKIP
>>> save_label_png("maps/0001.png", labels)                    # lossless, one byte per pixel
>>> preview = colorize(labels)                                  # RGB picture for a person to look at

Class indices (:data:`CLASS_NAMES`) follow the order of CelebAMask-HQ's own label list, background first::

    0 background  1 skin   2 nose    3 eye_g  4 l_eye  5 r_eye  6 l_brow  7 r_brow  8 l_ear  9 r_ear
    10 mouth     11 u_lip 12 l_lip  13 hair  14 hat   15 ear_r 16 neck_l 17 neck   18 cloth

(Other tools, e.g. face-parsing networks trained on the same data, use a different permutation; convert
before mixing maps.) ``l_``/``r_`` mean the subject's left/right: ``l_eye`` is the eye on the RIGHT side of
the picture of a face looking at the camera.

Only the classes the 478-point face mesh outlines are produced: skin (the face oval, which ends at the top of
the forehead mesh), nose, both eyes, both brows, mouth (the inner lip opening), upper and lower lip. Hair,
ears, neck, clothes and accessories stay background: landmarks say nothing reliable about them.

Label images must stay lossless: PNG with one 8-bit channel. JPEG would blur class boundaries into values
that belong to no class, so :func:`save_label_png` refuses any other suffix and :func:`load_label_png` checks
every value is a known class.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from reface_tf.data.celebamask import CLASS_NAMES
from reface_tf.errors import DataError
from reface_tf.faces.align import FACE_OVAL

CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
NUM_CLASSES = len(CLASS_NAMES)

# Face-mesh outlines, each in order around the part. "Image-left" = subject's right.
_EYE_IMAGE_LEFT = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_EYE_IMAGE_RIGHT = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
_BROW_IMAGE_LEFT = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
_BROW_IMAGE_RIGHT = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78)
_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
_MOUTH_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
# Nose: bridge from between the eyes down to the nostrils; filled as a convex hull.
_NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 64, 294, 48, 278, 219, 439, 115, 344,
         129, 358, 49, 279, 131, 360, 134, 363, 51, 281, 45, 275, 220, 440, 193, 417, 122, 351)

# Drawn in this order, later parts over earlier ones.
_PARTS = (
    ("skin", FACE_OVAL, False),
    ("nose", _NOSE, True),
    ("r_brow", _BROW_IMAGE_LEFT, False),
    ("l_brow", _BROW_IMAGE_RIGHT, False),
    ("r_eye", _EYE_IMAGE_LEFT, False),
    ("l_eye", _EYE_IMAGE_RIGHT, False),
    ("u_lip", _UPPER_LIP, False),
    ("l_lip", _LOWER_LIP, False),
    ("mouth", _MOUTH_INNER, False),
)

# The classes the builder can draw (every other class stays background), in class-id order.
DRAWN_CLASSES = tuple(sorted({CLASS_INDEX[name] for name, _, _ in _PARTS}))

# The colours commonly used to show CelebAMask-HQ maps (one RGB triple per class index).
PALETTE = np.array([
    [0, 0, 0], [204, 0, 0], [76, 153, 0], [204, 204, 0], [51, 51, 255], [204, 0, 204], [0, 255, 255],
    [255, 204, 204], [102, 51, 0], [255, 0, 0], [102, 204, 0], [255, 255, 0], [0, 0, 153], [0, 0, 204],
    [255, 51, 153], [0, 204, 204], [0, 51, 0], [255, 153, 51], [0, 204, 0],
], dtype=np.uint8)


def landmark_segmap(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map of the face described by 478 face-mesh ``landmarks`` (pixel x, y)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape != (478, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected finite (478, 2) face-mesh landmarks, got shape {pts.shape}")
    labels = np.zeros(shape[:2], dtype=np.uint8)
    for name, indices, hull in _PARTS:
        poly = pts[list(indices)]
        if hull:
            poly = cv2.convexHull(poly.astype(np.float32))[:, 0, :]
        # 4 fractional bits: sub-pixel placement without anti-aliasing (labels must stay pure).
        cv2.fillPoly(labels, [np.round(poly * 16).astype(np.int32)], CLASS_INDEX[name], lineType=cv2.LINE_8, shift=4)
    return labels


def colorize(labels: np.ndarray) -> np.ndarray:
    """RGB uint8 picture of a label map with :data:`PALETTE` (for people; train on the labels)."""
    arr = np.asarray(labels)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"expected an (H, W) uint8 label map, got {arr.dtype} {arr.shape}")
    if arr.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"label {int(arr.max())} is not a class (0..{NUM_CLASSES - 1})")
    return PALETTE[arr]


def save_label_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write a label map as a single-channel 8-bit PNG (temporary name, then rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError(f"{path}: label maps must be saved as .png (lossless); lossy formats corrupt class ids")
    arr = np.asarray(labels)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise ValueError(f"expected an (H, W) uint8 label map, got {arr.dtype} {arr.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, path)


def load_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label map written by :func:`save_label_png`; refuses colour images and unknown class ids."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.format != "PNG" or img.mode not in ("L", "P"):
                raise DataError(f"{path}: a label map must be a single-channel PNG, got {img.format} {img.mode}")
            arr = np.asarray(img, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read label map ({err})") from None
    if arr.max(initial=0) >= NUM_CLASSES:
        raise DataError(f"{path}: value {int(arr.max())} is not a class id (0..{NUM_CLASSES - 1})")
    return arr
