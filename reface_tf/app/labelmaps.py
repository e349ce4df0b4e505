"""Editing SPADE label maps: start maps, palette pictures, brush strokes, moving and swapping a part.

A map is ``[S, S]`` uint8 class ids at the model's map size. The canvas shows it as its palette picture scaled
up; a stroke is read back by comparing the canvas with that picture: a pixel counts as painted when it moved
away from the picture and is close to one palette colour (the brush colours are the palette, fixed), and takes
that colour's class. Anti-aliased stroke edges, which are blends of two colours, are left as they were rather
than given a wrong class.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from reface_tf.errors import DataError

# A canvas pixel is a stroke when its colour is further than this from the picture underneath (RGB distance),
# and is given a class only when it is nearer than this to that class's colour.
CHANGED_DISTANCE = 40.0
PALETTE_DISTANCE = 60.0
MAX_LISTED_MAPS = 500


def blank_map(size: int) -> np.ndarray:
    """All background (class 0)."""
    return np.zeros((size, size), np.uint8)


def list_maps(maps_dir: Path | None) -> list[str]:
    """The stems of the PNG maps of a training set's ``labels/`` folder (sorted, at most ``MAX_LISTED_MAPS``)."""
    if maps_dir is None or not maps_dir.is_dir():
        return []
    return sorted(p.stem for p in maps_dir.glob("*.png"))[:MAX_LISTED_MAPS]


def load_map(maps_dir: Path, stem: str, size: int, num_classes: int) -> np.ndarray:
    """One dataset map at the model size (nearest neighbour: every pixel stays a class)."""
    from reface_tf.synth.segmaps import load_label_png

    path = maps_dir / f"{stem}.png"
    if os.sep in stem or "/" in stem or not path.is_file():
        raise DataError(f"{stem!r}: no such map in {maps_dir}")
    ids = load_label_png(path)
    if ids.shape != (size, size):
        ids = cv2.resize(ids, (size, size), interpolation=cv2.INTER_NEAREST)
    if ids.max(initial=0) >= num_classes:
        raise DataError(f"{path}: class {int(ids.max())} is not below this model's {num_classes} classes")
    return ids


def picture(ids: np.ndarray, palette: np.ndarray, scale: int = 1) -> np.ndarray:
    """The map's palette picture, each map pixel a ``scale`` x ``scale`` block."""
    rgb = np.asarray(palette, np.uint8)[np.asarray(ids)]
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1) if scale > 1 else rgb


def apply_strokes(ids: np.ndarray, canvas: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, int]:
    """(the map with the canvas's strokes applied, map pixels changed). ``canvas`` is the edited palette picture
    (RGB or RGBA, at any size; an RGBA canvas is first laid over the picture)."""
    ids = np.asarray(ids, np.uint8)
    size = ids.shape[0]
    canvas = np.asarray(canvas)
    if canvas.ndim != 3 or canvas.shape[-1] not in (3, 4):
        raise DataError(f"the canvas is not an RGB picture (shape {list(canvas.shape)})")
    base = picture(ids, palette).astype(np.float32)
    small = cv2.resize(canvas.astype(np.float32), (size, size), interpolation=cv2.INTER_NEAREST)
    if small.shape[-1] == 4:  # transparent pixels show the picture underneath
        alpha = small[..., 3:] / 255.0
        small = small[..., :3] * alpha + base * (1 - alpha)
    moved = np.linalg.norm(small - base, axis=-1) > CHANGED_DISTANCE
    distances = np.linalg.norm(small[:, :, None, :] - np.asarray(palette, np.float32)[None, None], axis=-1)
    nearest, closeness = distances.argmin(axis=-1), distances.min(axis=-1)
    painted = moved & (closeness < PALETTE_DISTANCE)
    out = ids.copy()
    out[painted] = nearest[painted].astype(np.uint8)
    return out, int((out != ids).sum())


def surrounding_class(ids: np.ndarray, cls: int) -> int:
    """The most common other class just around the pixels of ``cls`` (what a removed part leaves behind)."""
    mask = (ids == cls).astype(np.uint8)
    ring = cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool) & ~mask.astype(bool)
    around = ids[ring]
    if around.size == 0:
        return 0
    return int(np.bincount(around, minlength=int(ids.max()) + 1).argmax())


def _without(ids: np.ndarray, cls: int) -> np.ndarray:
    out = ids.copy()
    out[ids == cls] = surrounding_class(ids, cls)
    return out


def move_class(ids: np.ndarray, cls: int, dx: int, dy: int) -> np.ndarray:
    """The part of class ``cls`` shifted by (``dx``, ``dy``) map pixels (right, down); where it was, the class
    around it; parts shifted past the border are cut."""
    ids = np.asarray(ids, np.uint8)
    if not (ids == cls).any():
        raise DataError(f"class {cls} is not in this map; paint it or pick another class")
    out = _without(ids, cls)
    ys, xs = np.nonzero(ids == cls)
    ys, xs = ys + int(dy), xs + int(dx)
    keep = (ys >= 0) & (ys < ids.shape[0]) & (xs >= 0) & (xs < ids.shape[1])
    out[ys[keep], xs[keep]] = cls
    return out


def replace_part(ids: np.ndarray, other: np.ndarray, cls: int) -> np.ndarray:
    """``ids`` with its part of class ``cls`` replaced by the same part of ``other`` (same size)."""
    ids, other = np.asarray(ids, np.uint8), np.asarray(other, np.uint8)
    if ids.shape != other.shape:
        raise DataError(f"the maps differ in size ({ids.shape} vs {other.shape})")
    if not (other == cls).any():
        raise DataError(f"the other map has no pixels of class {cls}; pick another map or class")
    out = _without(ids, cls) if (ids == cls).any() else ids.copy()
    out[other == cls] = cls
    return out


def photo_map(rgb: np.ndarray, landmarker, size: int, alignment=None) -> np.ndarray:
    """The landmark map of the largest face of a photo, aligned as the model's training faces were; the map the
    demo data was drawn with (skin, nose, eyes, brows, mouth, lips). NoFaceError without a face."""
    from reface_tf.serve.predict import align_largest_face
    from reface_tf.synth.segmaps import landmark_segmap

    aligned, _ = align_largest_face(rgb, size, landmarker, alignment=alignment)
    return landmark_segmap(aligned.landmarks, (size, size))
