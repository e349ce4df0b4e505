"""CelebAMask-HQ as downloaded → the label-map layout (``labels/`` class ids + ``B/`` photos), converted once.

The download holds ``CelebA-HQ-img/<id>.jpg`` (1024 x 1024) and one binary mask per face part,
``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png`` (512 x 512); a part absent from a face has no file.
The masks are merged as the dataset's own ``g_mask.py`` merges them: parts in :data:`PARTS` order, each
non-zero mask pixel set to the part's id (1..18, background 0), so a later part overwrites an earlier one
(hair over skin, cloth over neck). Maps are resized by nearest neighbour, photos by area averaging.

    python prepare_segmaps.py --celebamask-hq CelebAMask-HQ --out data/celebamask256 --size 256

Every file is written under a temporary name and renamed, so an interrupted conversion leaves no half-written
file, and a second run skips the faces already converted. ``report.json`` counts, per part, the faces that
lack it (normal: few faces wear a hat) and lists the faces skipped (no part mask at all, unreadable files).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from reface_tf.data.images import load_rgb, resize_uint8, save_png_atomic
from reface_tf.errors import DataError

log = logging.getLogger(__name__)

# CelebAMask-HQ's label list: class id = position + 1, background 0.
PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip", "l_lip",
         "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
CLASS_NAMES = ("background", *PARTS)
IMAGES_DIR, PARTS_DIR = "CelebA-HQ-img", "CelebAMask-HQ-mask-anno"
FACES_PER_FOLDER = 2000
PHOTO_QUALITY = 95  # the download's photos are JPEGs already; PNG would multiply the size by about 8


def part_path(root: Path, face_id: int, part: str) -> Path:
    return root / PARTS_DIR / str(face_id // FACES_PER_FOLDER) / f"{face_id:05d}_{part}.png"


def merge_parts(masks: dict[str, np.ndarray]) -> np.ndarray:
    """One ``(H, W)`` uint8 class-id map from binary part masks (part name -> ``(H, W)`` array), later parts
    of :data:`PARTS` over earlier ones."""
    shapes = {m.shape[:2] for m in masks.values()}
    if len(shapes) != 1:
        raise ValueError(f"part masks of different sizes: {sorted(shapes)}")
    labels = np.zeros(shapes.pop(), np.uint8)
    for class_id, part in enumerate(PARTS, start=1):
        if part in masks:
            mask = masks[part]
            labels[(mask[..., 0] if mask.ndim == 3 else mask) != 0] = class_id
    return labels


def _read_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read part mask ({err})") from None


def _save_jpeg_atomic(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(rgb).save(tmp, format="JPEG", quality=PHOTO_QUALITY)
    os.replace(tmp, path)


@dataclass
class ConversionReport:
    faces: int = 0            # faces in CelebA-HQ-img
    converted: int = 0        # written by this run
    already: int = 0          # found converted by an earlier run
    missing_parts: Counter = field(default_factory=Counter)  # part -> converted faces without that mask
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    def summary(self) -> str:
        lacking = ", ".join(f"{part} {n}" for part, n in self.missing_parts.most_common())
        return (f"{self.converted} faces converted, {self.already} already done, {len(self.skipped)} skipped of "
                f"{self.faces}" + (f"; faces without a part: {lacking}" if lacking else ""))

    def to_dict(self) -> dict:
        return {"faces": self.faces, "converted": self.converted, "already": self.already,
                "missing_parts": dict(self.missing_parts.most_common()),
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


def face_ids(root: Path) -> list[int]:
    folder = root / IMAGES_DIR
    if not folder.is_dir() or not (root / PARTS_DIR).is_dir():
        raise DataError(f"--celebamask-hq: {root} needs {IMAGES_DIR}/ and {PARTS_DIR}/ (the CelebAMask-HQ download, "
                        "unzipped)")
    ids = sorted(int(p.stem) for p in folder.iterdir() if p.suffix.lower() == ".jpg" and p.stem.isdigit())
    if not ids:
        raise DataError(f"--celebamask-hq: {folder} holds no <id>.jpg photos")
    return ids


def convert_face(root: Path, out: Path, face_id: int, size: int) -> tuple[list[str], str | None]:
    """Write ``labels/<id>.png`` and ``B/<id>.jpg`` of one face; (parts it lacks, why it was skipped or None)."""
    paths = {part: part_path(root, face_id, part) for part in PARTS}
    present = {part: p for part, p in paths.items() if p.is_file()}
    missing = [part for part in PARTS if part not in present]
    if not present:
        return missing, f"no part mask in {paths['skin'].parent} for face {face_id}"
    labels = merge_parts({part: _read_mask(p) for part, p in present.items()})
    photo = load_rgb(root / IMAGES_DIR / f"{face_id}.jpg")
    _save_jpeg_atomic(out / "B" / f"{face_id}.jpg", resize_uint8(photo, size))
    # The map last: its presence marks the face as converted.
    save_png_atomic(out / "labels" / f"{face_id}.png", resize_uint8(labels, size, nearest=True))
    return missing, None


def convert_celebamask(root: str | os.PathLike, out: str | os.PathLike, size: int = 256, limit: int | None = None,
                       workers: int | None = None, progress: str = "auto") -> ConversionReport:
    """Convert the faces of ``root`` (the first ``limit``) into ``out``; returns the report (also in
    ``out/report.json``). Faces whose map exists in ``out`` are left as they are."""
    from reface_tf.cli import CountProgress

    root, out = Path(root), Path(out)
    if size < 8:
        raise DataError(f"--size {size}: must be at least 8")
    ids = face_ids(root)[:limit]
    report = ConversionReport(faces=len(ids))
    todo = [i for i in ids if not (out / "labels" / f"{i}.png").is_file()]
    report.already = len(ids) - len(todo)
    bar = CountProgress(len(todo), progress, unit="face", verb="converted", logger=log)
    try:
        with ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1)) as pool:  # PIL/OpenCV release the GIL
            for face_id, (missing, skipped) in zip(todo, pool.map(lambda i: _convert_or_skip(root, out, i, size), todo)):
                if skipped:
                    report.skipped.append((str(part_path(root, face_id, "skin").parent), skipped))
                else:
                    report.converted += 1
                    report.missing_parts.update(missing)  # of the faces converted
                bar.update()
    finally:
        bar.close()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".report.json.tmp"
    tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    os.replace(tmp, out / "report.json")
    return report


def _convert_or_skip(root: Path, out: Path, face_id: int, size: int) -> tuple[list[str], str | None]:
    try:
        return convert_face(root, out, face_id, size)
    except (DataError, ValueError) as err:
        return [], str(err)


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import ArgumentParser, setup_logging

    parser = ArgumentParser(prog="prepare_segmaps.py", description="Convert CelebAMask-HQ (part masks) into class-id "
                            "label maps + photos for python train.py --task spade.")
    parser.add_argument("--celebamask-hq", required=True, metavar="ROOT",
                        help=f"the unzipped download: ROOT/{IMAGES_DIR}/ and ROOT/{PARTS_DIR}/")
    parser.add_argument("--out", required=True, help="output folder: labels/, B/, report.json")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N faces (a quick try)")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: up to 4)")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="progress bar on a terminal, log lines otherwise (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    report = convert_celebamask(args.celebamask_hq, args.out, args.size, args.limit, args.workers, args.progress)
    print(report.summary() + f"; report: {Path(args.out) / 'report.json'}")
    for path, reason in report.skipped[:5]:
        print(f"skipped: {path}: {reason}")
    return 0 if report.converted or report.already else 1
