"""The alignment a dataset was prepared with, written once per dataset and carried to its runs and exports.

``prepare.py`` and the demo dataset builder write ``ROOT/alignment.json``; training copies it into the run
directory (:func:`record_run_alignment`), ``export.py`` copies it into ``reface_meta.json`` and ``predict.py``
aligns a new photo with exactly these settings, so nobody has to repeat ``--margin`` and friends::

    {"format": "reface-tf/alignment/1", "template": "face-mesh-5pt-ac72d6685cbe", "size": 256,
     "margin": 0.2, "border_mode": "reflect", "landmarker_sha256": "64184e22...c9ff"}

>>> write_alignment("data/aligned", AlignmentSettings(size=256, margin=0.2))   # doctest: +SKIP
>>> read_alignment("data/aligned").margin                                      # doctest: +SKIP
0.2
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reface_tf.errors import DataError
from reface_tf.faces.align import BORDER_MODES, DEFAULT_MARGIN, TEMPLATE_ID

ALIGNMENT_FILE = "alignment.json"
ALIGNMENT_FORMAT = "reface-tf/alignment/1"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AlignmentSettings:
    """How faces were aligned: output side, margin, border fill, template and the landmarker model used."""

    size: int
    margin: float = DEFAULT_MARGIN
    border_mode: str = "reflect"
    template: str = TEMPLATE_ID
    landmarker_sha256: str | None = None  # SHA-256 of the face_landmarker.task that found the landmarks

    def to_dict(self) -> dict[str, Any]:
        return {"format": ALIGNMENT_FORMAT, "template": self.template, "size": self.size, "margin": self.margin,
                "border_mode": self.border_mode, "landmarker_sha256": self.landmarker_sha256}

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike) -> "AlignmentSettings":
        """Settings from their JSON form; DataError naming ``source`` and the bad entry when it is malformed."""

        def bad(what: str) -> DataError:
            return DataError(f"{source}: malformed alignment settings ({what}); rerun prepare.py to rewrite them")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != ALIGNMENT_FORMAT:
            raise bad(f"format {data.get('format')!r}, expected {ALIGNMENT_FORMAT!r}")
        missing = [k for k in ("template", "size", "margin", "border_mode") if k not in data]
        if missing:
            raise bad(f"missing {', '.join(missing)}")
        size, margin, border, template = data["size"], data["margin"], data["border_mode"], data["template"]
        sha = data.get("landmarker_sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 16:
            raise bad(f"size {size!r} is not an integer >= 16")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin < 0.5:
            raise bad(f"margin {margin!r} is not a number in [0, 0.5)")
        if border not in BORDER_MODES:
            raise bad(f"border_mode {border!r} is not one of {', '.join(sorted(BORDER_MODES))}")
        if not isinstance(template, str) or not template:
            raise bad(f"template {template!r} is not a name")
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
            raise bad(f"landmarker_sha256 {sha!r} is not a SHA-256 hex digest")
        return cls(size=size, margin=float(margin), border_mode=border, template=template, landmarker_sha256=sha)

    def describe(self) -> str:
        return f"size {self.size}, margin {self.margin:g}, border {self.border_mode}, template {self.template}"


def alignment_path(root: str | os.PathLike) -> Path:
    """``ROOT/alignment.json`` of a dataset folder or run directory (beside the CSV for a CSV dataset)."""
    root = Path(root)
    return (root.parent if root.is_file() else root) / ALIGNMENT_FILE


def write_alignment(root: str | os.PathLike, settings: AlignmentSettings) -> Path:
    """Write ``ROOT/alignment.json`` atomically (temporary name, then rename) and return its path."""
    from reface_tf.faces.prepare import write_text_atomic  # prepare imports this module

    path = alignment_path(root)
    write_text_atomic(path, json.dumps(settings.to_dict(), indent=2) + "\n")
    return path


def read_alignment(root: str | os.PathLike) -> AlignmentSettings | None:
    """The settings recorded in ``ROOT/alignment.json``; None when there is no such file (hand-made pairs).

    A file that is not JSON or lacks a valid entry raises DataError with one line naming it.
    """
    path = alignment_path(root)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"{path}: malformed alignment settings (not readable JSON: {first}); "
                        "rerun prepare.py to rewrite them") from None
    return AlignmentSettings.from_dict(data, path)


def record_run_alignment(dataset_root: str | os.PathLike | None,
                         run_dir: str | os.PathLike) -> AlignmentSettings | None:
    """Copy the dataset's alignment settings into ``RUN/alignment.json``; call it where the run's split is made.

    Returns the settings, or None when the dataset records none (hand-made pairs, synthetic data): then the
    run gets no ``alignment.json`` (a stale one is removed), and predict falls back to its defaults.
    """
    settings = read_alignment(dataset_root) if dataset_root is not None else None
    if settings is None:
        alignment_path(run_dir).unlink(missing_ok=True)
        return None
    write_alignment(run_dir, settings)
    return settings
