"""Age pseudo-labels for a folder of faces without labels: ``python prepare_ages.py --data DIR``.

Every image directly in ``DIR`` gets the offline estimator's age (:mod:`reface_tf.faces.age_estimator`), written to
``DIR/labels.csv`` (``path,age``, the ``csv`` source of :mod:`reface_tf.data.age_labels`) in one atomic write. An
aligned dataset (``DIR/alignment.json``, written by ``prepare.py`` and the demo builders) is read as aligned faces,
the chip cut on landmarks found in each one; any other folder is read as photos, the largest face of each used.
A picture in which no face is found is skipped and listed in ``DIR/labels_skipped.csv`` (never labelled from a
guessed crop). These are ESTIMATES: the estimator's error on photos with documented ages is in
docs/age_estimator.md, and its bins stop at 80 years.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from reface_tf.data.age_labels import (CLASSES_JSON, DEFAULT_AGE_GROUPS, LABELS_CSV, AgeGroups, ClassLabels,
                                       detect_source, read_class_labels)
from reface_tf.data.images import list_folder, load_rgb
from reface_tf.errors import DataError
from reface_tf.faces.alignment_settings import ALIGNMENT_FILE, read_alignment

log = logging.getLogger(__name__)

SKIPPED_CSV = "labels_skipped.csv"


@dataclass
class PseudoAgeReport:
    root: str
    aligned: bool
    paths: list[str] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def group_counts(self, groups: AgeGroups) -> dict[str, int]:
        counts = dict.fromkeys(groups.names, 0)
        for age in self.ages:
            counts[groups.names[groups.class_of(age)]] += 1
        return counts


def estimate_folder_ages(root: str | os.PathLike, model: str | os.PathLike | None = None, overwrite: bool = False,
                         progress: str = "auto") -> PseudoAgeReport:
    """Estimate the age of every image in ``root`` and write ``root/labels.csv``; see the module docstring."""
    from reface_tf.cli import CountProgress
    from reface_tf.faces.age_estimator import AgeEstimator

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data: {root} is not a folder; pass the folder of face images to label")
    out = root / LABELS_CSV
    if out.exists() and not overwrite:
        raise DataError(f"--data: {out} exists (labels you may want to keep); pass --overwrite to replace it with "
                        "estimated ages")
    files, ignored = list_folder(root, read_elsewhere=(LABELS_CSV, SKIPPED_CSV, CLASSES_JSON, ALIGNMENT_FILE,
                                                       "groups.csv", "README.md", "README.txt", "metadata.json"))
    settings = read_alignment(root)
    report = PseudoAgeReport(str(root), aligned=settings is not None)
    # Hidden entries (cache markers, editor files) are not pictures anyone meant to label: not reported.
    report.skipped += [(p.name, reason) for p, reason in ignored if not p.name.startswith(".")]
    if not files:
        raise DataError(f"--data: no images in {root}")
    bar = CountProgress(len(files), progress, unit="face", verb="estimated", logger=log)
    with AgeEstimator.load(model) as estimator:
        for path in files:
            try:
                rgb = load_rgb(path)
            except DataError as err:
                report.skipped.append((path.name, str(err).partition(": ")[2] or str(err)))
                bar.update()
                continue
            age = _estimate(estimator, rgb, report.aligned, settings.margin if settings else None)
            if age is None:
                report.skipped.append((path.name, "no face found (cannot be detected or aligned)"))
            else:
                report.paths.append(path.name)
                report.ages.append(age)
            bar.update()
    bar.close()
    for name, reason in report.skipped:
        log.warning("skipping %s: %s", name, reason)
    if not report.paths:
        raise DataError(f"--data: no face found in any image of {root}; nothing written")
    write_age_csv(root, report.paths, report.ages)
    _write_skipped(root / SKIPPED_CSV, report.skipped)
    return report


def read_or_estimate_labels(root: str | os.PathLike, groups: AgeGroups = DEFAULT_AGE_GROUPS,
                            model: str | os.PathLike | None = None, progress: str = "auto") -> ClassLabels:
    """``read_class_labels(root)`` for a folder with labels; for one without any (no labels.csv, IMDB-WIKI layout
    or UTKFace names), the estimated ages first written to ``root/labels.csv``. ``source`` tells which."""
    try:
        detect_source(Path(root))
    except DataError:
        if not Path(root).is_dir():
            raise
        estimate_folder_ages(root, model, progress=progress)
        labels = read_class_labels(root, "csv", groups)
        labels.source = "estimate"
        return labels
    return read_class_labels(root, "auto", groups)


def write_age_csv(root: str | os.PathLike, paths: Sequence[str], ages: Sequence[float] | np.ndarray) -> Path:
    """Write ``root/labels.csv`` (``path,age``) atomically: a reader never sees half a file."""
    from reface_tf.faces.prepare import write_text_atomic

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "age"])
    writer.writerows((p, f"{float(a):.2f}") for p, a in zip(paths, ages))
    out = Path(root) / LABELS_CSV
    write_text_atomic(out, text.getvalue())
    return out


def _estimate(estimator, rgb: np.ndarray, aligned: bool, margin: float | None) -> float | None:
    if aligned and rgb.shape[0] == rgb.shape[1]:
        landmarks = estimator.detect_landmarks([rgb])
        if landmarks[0] is None:
            return None
        return float(estimator.predict(rgb[None], landmarks, margin=margin)[0])
    faces = estimator.predict_photo(rgb)
    return faces[0].age if faces else None


def _write_skipped(path: Path, skipped: list[tuple[str, str]]) -> None:
    from reface_tf.faces.prepare import write_text_atomic

    if not skipped:
        path.unlink(missing_ok=True)
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(skipped)
    write_text_atomic(path, text.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import ArgumentParser, setup_logging

    parser = ArgumentParser(prog="prepare_ages.py", description="Write DIR/labels.csv (path,age) with ages estimated "
                            "by the pinned offline age estimator, for age-conditional training.")
    parser.add_argument("--data", required=True, metavar="DIR", help="folder of face images (aligned or photos)")
    parser.add_argument("--age-groups", default=str(DEFAULT_AGE_GROUPS),
                        help="age groups for the summary (default %(default)s)")
    parser.add_argument("--age-model", default=None, help="a local age-v1.onnx (default: the pinned registry file)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing labels.csv")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="progress bar on a terminal, log lines otherwise (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    groups = AgeGroups.parse(args.age_groups)  # a bad spec fails before any work
    report = estimate_folder_ages(args.data, args.age_model, args.overwrite, args.progress)
    ages = np.asarray(report.ages, dtype=np.float64)
    print(f"{len(report.paths)} faces labelled ({'aligned' if report.aligned else 'photos'}), "
          f"{len(report.skipped)} skipped; estimated age mean {ages.mean():.1f}, range {ages.min():.1f}-{ages.max():.1f} "
          f"-> {Path(args.data) / LABELS_CSV}")
    print("per group: " + ", ".join(f"{name} {n}" for name, n in report.group_counts(groups).items()))
    if report.skipped:
        print(f"skipped (first 5; all in {Path(args.data) / SKIPPED_CSV}):")
        for name, reason in report.skipped[:5]:
            print(f"  {name}: {reason}")
    return 0
