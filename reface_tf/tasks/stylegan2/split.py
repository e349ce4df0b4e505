"""The labelled faces of a StyleGAN2 run and their training / held-out split, recorded in the run's ``splits.json``.

The split holds out whole groups (``groups.csv``: a person, or a photo and its simulated-older copy in the demo)
until ``faces.held_out_ratio`` of the images is held out, at most ``faces.max_held_out`` of them, with the run's
seed; it is written once, atomically, and read back on every resume, export and evaluation so they see the same
files with the same classes. A run that has checkpoints but no ``splits.json`` was trained on every image: it
resumes on all of them, with no held-out faces (its metrics need ``evaluate.py --data``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reface_tf.config import Config
from reface_tf.errors import DataError

SPLIT_FILE = "splits.json"


@dataclass
class LabelledSplit:
    root: Path
    train: list[Path]
    train_classes: np.ndarray
    held_out: list[Path]
    held_out_classes: np.ndarray
    class_names: tuple[str, ...]


def read_labelled_faces(cfg: Config):
    """(paths, classes, class names, groups) of the data folder; unconditional runs still read the classes."""
    from reface_tf.data.age_labels import AgeGroups, read_class_labels

    labels = read_class_labels(cfg.faces.root, cfg.stylegan2.labels, AgeGroups.parse(cfg.stylegan2.age_groups))
    files, classes, groups = labels.files(), labels.classes, list(labels.groups)
    if cfg.faces.max_images:
        n = cfg.faces.max_images
        files, classes, groups = files[:n], classes[:n], groups[:n]
    return files, classes, tuple(labels.class_names), groups


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def labelled_split(cfg: Config, run_dir: Path | None) -> LabelledSplit:
    """The run's split: read back from ``splits.json``, else made now (and recorded when ``run_dir`` exists)."""
    from reface_tf.data.image_folder import split_by_group

    f = cfg.faces
    path = run_dir / SPLIT_FILE if run_dir is not None else None
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        root = Path(f.root) if f.root else Path(saved["root"])
        rows = {side: [(root / p, int(c)) for p, c in saved[side]] for side in ("train", "held_out")}
        missing = [p for side in rows.values() for p, _ in side if not p.is_file()]
        if missing:
            raise DataError(f"--data {root} lacks {len(missing)} image(s) of this run (first: {missing[0]}); pass "
                            "--data with the folder the images moved to")
        as_arrays = lambda side: ([p for p, _ in rows[side]], np.asarray([c for _, c in rows[side]], np.int32))
        (train, train_cls), (held, held_cls) = as_arrays("train"), as_arrays("held_out")
        return LabelledSplit(root, train, train_cls, held, held_cls, tuple(saved["class_names"]))
    if f.root is None:
        raise DataError("--data: no folder of labelled face images given")
    files, classes, names, groups = read_labelled_faces(cfg)
    class_of = {str(p): int(c) for p, c in zip(files, classes)}
    resumed_without_split = run_dir is not None and any(run_dir.glob("checkpoints/*.index"))
    if resumed_without_split:  # trained on everything before splits existed: keep it exactly so
        train, held = sorted(files), []
    else:
        train, held = split_by_group(files, {p.stem: g for p, g in zip(files, groups)}, f.held_out_ratio,
                                     cfg.runtime.seed)
        held = held[: f.max_held_out]
    if not train:
        raise DataError(f"--data {f.root}: no training images left after the split; lower --held-out-ratio")
    split = LabelledSplit(Path(f.root), train, np.asarray([class_of[str(p)] for p in train], np.int32), held,
                          np.asarray([class_of[str(p)] for p in held], np.int32), names)
    if path is not None and run_dir.is_dir():
        rel = lambda paths, cls: [[str(p.relative_to(split.root)), int(c)] for p, c in zip(paths, cls)]
        _write_atomic(path, {"root": str(split.root.resolve()), "seed": cfg.runtime.seed, "class_names": list(names),
                             "train": rel(split.train, split.train_classes),
                             "held_out": rel(split.held_out, split.held_out_classes)})
    return split
