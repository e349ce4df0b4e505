"""Unpaired face images for generators trained from noise: a folder (searched recursively), CelebA as its
authors ship it, or the aligned faces ``prepare.py`` writes.

* ``folder``: every image under the root, sorted by path; a ``groups.csv`` (``stem,group``) at the root keeps
  all images of one group (one person, one video) on one side of the train / held-out split, as for pairs.
* ``celeba``: ``img_align_celeba/`` (178x218 JPEGs), each cropped by ``CELEBA_CROP`` px at the top and bottom
  (the 178x178 centre, the usual DCGAN preprocessing) before the resize; ``list_eval_partition.txt`` next to
  the folder, when present, gives the split (0 = train, 1 = validation is held out), otherwise the split is drawn
  like a folder's. ``--max-images 50000`` takes the first 50,000 training images by file name.

Every other image is centre-cropped to a square, then resized with area averaging (``INTER_AREA``) when it
shrinks. Images that cannot be decoded are skipped and reported with their reason, never silently dropped.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reface_tf.data.images import DEFAULT_MAX_PIXELS, load_rgb, skip_reason
from reface_tf.data.pairs import read_groups_file
from reface_tf.errors import DataError

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "folder", "celeba")
CELEBA_DIR = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_CROP = 20  # px cut at the top and at the bottom of each 178x218 CelebA image
GROUPS_FILE = "groups.csv"


@dataclass
class FaceImages:
    """The images of a dataset split into training and held-out, with what was not read and why."""

    root: Path
    layout: str
    train: list[Path]
    held_out: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def summary(self) -> str:
        text = f"{len(self.train)} training and {len(self.held_out)} held-out images ({self.layout}) in {self.root}"
        return text + (f"; {len(self.skipped)} skipped" if self.skipped else "")

    def write_report(self, path: str | os.PathLike) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"root": str(self.root), "layout": self.layout, "train": len(self.train),
                                   "held_out": len(self.held_out),
                                   "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}, indent=2))
        os.replace(tmp, path)


def detect_layout(root: Path) -> str:
    return "celeba" if root.name == CELEBA_DIR or (root / CELEBA_DIR).is_dir() else "folder"


def find_images(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files anywhere under ``root`` (sorted; hidden folders skipped) and the other files with why."""
    images, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (name in (GROUPS_FILE, CELEBA_PARTITION, "README.md", "LICENSES.md") and Path(dirpath) == root) \
                    or name.startswith(".complete-v"):  # read for other purposes; the marker of a built demo
                continue
            reason = skip_reason(path)
            (skipped.append((str(path), reason)) if reason else images.append(path))
    return images, skipped


def split_by_group(images: list[Path], groups: dict[str, str], held_out_ratio: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Seeded split: whole groups (an image without one is its own) are held out until ``held_out_ratio`` of
    the images is; at least one group when the ratio is non-zero and there are 2+ groups."""
    by_group: dict[str, list[Path]] = {}
    for path in images:
        by_group.setdefault(groups.get(path.stem, str(path)), []).append(path)
    names = sorted(by_group)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    held: list[Path] = []
    while held_out_ratio > 0 and len(order) > 1 and (not held or len(held) + len(by_group[order[0]]) <= held_out_ratio * len(images)):
        held.extend(by_group[order.pop(0)])
    train = sorted(p for g in order for p in by_group[g])
    return train, sorted(held)


def _celeba_partition(folder: Path) -> dict[str, int] | None:
    for path in (folder.parent / CELEBA_PARTITION, folder / CELEBA_PARTITION):
        if path.is_file():
            rows = {}
            for number, line in enumerate(path.read_text().splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not parts[1].isdigit():
                    raise DataError(f"{path} line {number}: expected '<image> <partition 0|1|2>', got {line!r}")
                rows[parts[0]] = int(parts[1])
            return rows
    return None


def scan_face_images(root: str | os.PathLike, layout: str = "auto", max_images: int | None = None,
                     held_out_ratio: float = 0.1, max_held_out: int = 2000, seed: int = 0) -> FaceImages:
    """The dataset's training and held-out images (see the module doc); DataError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder; pass a folder of face images (searched recursively)")
    layout = detect_layout(root) if layout == "auto" else layout
    folder = (root if root.name == CELEBA_DIR else root / CELEBA_DIR) if layout == "celeba" else root
    if layout == "celeba" and not folder.is_dir():
        raise DataError(f"--data {root}: no {CELEBA_DIR}/ folder for --layout celeba; pass the folder that holds it")
    images, skipped = find_images(folder)
    if not images:
        raise DataError(f"--data {root}: no images found (reads {', '.join(('.jpg', '.png', '...'))} in any sub-folder)")
    partition = _celeba_partition(folder) if layout == "celeba" else None
    if partition is not None:
        train = [p for p in images if partition.get(p.name) == 0]
        held = [p for p in images if partition.get(p.name) == 1]
    else:
        train, held = split_by_group(images, read_groups_file(root), held_out_ratio, seed)
    if max_images is not None:
        train = train[:max_images]  # the first N by file name: CelebA's "first 50,000 images"
    held = held[:max_held_out]
    if not train:
        raise DataError(f"--data {root}: no training images left after the split; add images or lower --held-out-ratio")
    return FaceImages(root, layout, train, held, skipped)


def square_face(rgb: np.ndarray, size: int, celeba_crop: bool) -> np.ndarray:
    """The centre square of ``rgb`` (after CelebA's top/bottom crop) resized to ``size`` x ``size``."""
    if celeba_crop:
        rgb = rgb[CELEBA_CROP: rgb.shape[0] - CELEBA_CROP]
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[top: top + side, left: left + side]
    if side == size:
        return np.ascontiguousarray(square)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def decode_faces(paths: list[Path], size: int, celeba_crop: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
                 workers: int = 4, progress: bool = True) -> tuple[np.ndarray, list[Path], list[tuple[str, str]]]:
    """Decode every image once into a ``[N, size, size, 3]`` uint8 array (the in-memory cache training reads),
    with the paths decoded and the ones skipped with their reason."""

    def one(path: Path):
        try:
            return square_face(load_rgb(path, max_pixels), size, celeba_crop), None
        except DataError as err:
            return None, str(err)

    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV / PIL decoding releases the GIL
        results = pool.map(one, paths)
        if progress and len(paths) > 200:
            from tqdm import tqdm

            results = tqdm(results, total=len(paths), desc="decode", unit="img", leave=False)
        results = list(results)
    kept = [(p, image) for p, (image, _) in zip(paths, results) if image is not None]
    skipped = [(str(p), reason) for p, (image, reason) in zip(paths, results) if image is None]
    for path, reason in skipped[:5]:
        log.warning("skipped %s: %s", path, reason)
    array = np.stack([image for _, image in kept]) if kept else np.zeros((0, size, size, 3), np.uint8)
    return array, [p for p, _ in kept], skipped
