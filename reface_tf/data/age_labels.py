"""Age-group class labels for class-conditional face generation.

A dataset folder becomes ``ClassLabels``: image paths (relative to the folder, sorted) and one class index each,
from one of these sources (``read_class_labels(root, source=...)``):

- ``csv``: ``ROOT/labels.csv`` with the header ``path,age`` (an age in years, grouped by ``--age-groups``) or
  ``path,class`` (a class index or a class name). For ``path,class`` an optional ``ROOT/classes.json`` (a JSON
  list of names) gives the class names; without it the classes are the age groups. ``python prepare_ages.py``
  writes the ``path,age`` form from the offline age estimator for a folder that has no labels.
- ``utkface``: UTKFace file names ``{age}_{gender}_{race}_{datetime}.jpg`` (the aligned-and-cropped release adds
  ``.chip.jpg``); files whose name does not follow it (the release has a few with a missing field) are skipped
  with the reason.
- ``imdb-wiki``: the processed IMDB-WIKI layout of imdeepmind/processed-imdb-wiki-dataset, the preprocessing
  the face-aging StyleGAN2-ADA reference trained on. Its ``age.py`` writes ``dataset/age/{train,test}/<age>/
  <n>.jpg`` (128x128 crops, the folder name is the age in whole years, 0-101); ``ROOT`` may be ``dataset``,
  ``dataset/age`` or one split folder. Its ``mat.py`` writes ``meta.csv`` (``age,gender,path`` with paths into
  ``imdb_crop/``/``wiki_crop/``); a ``meta.csv`` with ``full_path`` and ``age``, or ``full_path`` with ``dob``
  and ``photo_taken`` (the fields of the original .mat files; ``dob`` as a MATLAB datenum or ``YYYY-MM-DD``),
  is read too, the age computed as ``mat.py`` does: whole years from the date of birth to 1 January of the year
  the photo was taken. Ages outside 0-101 are skipped, as ``age.py`` drops them.
- ``auto``: the first of these that the folder holds, in the order above.

A folder with none of these gets estimated ages from :func:`reface_tf.faces.pseudo_ages.read_or_estimate_labels`
(or ``python prepare_ages.py --data ROOT``), which writes the ``path,age`` form.

Ages are grouped by :class:`AgeGroups` (``--age-groups``); an age in years with a fraction (an estimate) is in the
group of its whole years, as a person of 10.7 is "10".

:data:`DEFAULT_AGE_GROUPS` is ``0-10,11-20,21-30,31-40,41-50,51-60,61-70,71-80,81+``: the reference's decades
(its list skips 31-40, which would leave people in their thirties without a class), but ending with 71-80 and an
open 81+ where the reference has 81-90 and 91-100. The offline age estimator (:mod:`reface_tf.faces.age_estimator`)
has age bins only up to 80 years: it can neither pseudo-label nor check groups above 80, so they are one group.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

import numpy as np

from reface_tf.data.images import IMAGE_SUFFIXES, list_folder
from reface_tf.data.pairs import read_groups_file
from reface_tf.errors import ConfigError, DataError

LABELS_CSV = "labels.csv"
CLASSES_JSON = "classes.json"
IMDB_WIKI_META = "meta.csv"
SOURCES = ("auto", "csv", "utkface", "imdb-wiki")
# imdeepmind's age.py keeps ages 0..101 and drops the rest as invalid (negative from bad dates, or implausible).
IMDB_WIKI_AGE_RANGE = (0, 101)
UTKFACE_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)
UTKFACE_PATTERN = "{age}_{gender}_{race}_{datetime}.jpg[.chip.jpg]"
_GROUP = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|(\+))\s*$")
_AGE_GROUPS_FIX = "write comma-separated whole-year ranges in order, each starting one above the last, e.g. 0-10,11-20,21-30,31+"


@dataclass(frozen=True)
class AgeGroups:
    """Consecutive age ranges in whole years, inclusive at both ends; the last may be open (``81+``).

    ``bounds`` holds ``(low, high)`` per group, ``high`` None for an open last group. Parse a spec with
    :meth:`parse`; a bad spec is a :class:`ConfigError` naming ``--age-groups``.
    """

    bounds: tuple[tuple[int, int | None], ...]

    @classmethod
    def parse(cls, spec: str) -> "AgeGroups":
        items = [item for item in str(spec).split(",")]
        if not str(spec).strip():
            raise ConfigError(f"--age-groups is empty; {_AGE_GROUPS_FIX}")
        bounds: list[tuple[int, int | None]] = []
        for k, item in enumerate(items):
            match = _GROUP.match(item)
            if not match:
                raise ConfigError(f"--age-groups: {item.strip()!r} is not a range of whole years like 21-30 or 81+; "
                                  f"{_AGE_GROUPS_FIX}")
            low = int(match.group(1))
            high = None if match.group(3) else int(match.group(2))
            if high is None and k != len(items) - 1:
                raise ConfigError(f"--age-groups: only the last group may be open-ended, {item.strip()!r} is not last; "
                                  f"{_AGE_GROUPS_FIX}")
            if high is not None and high < low:
                raise ConfigError(f"--age-groups: {item.strip()!r} ends before it starts; {_AGE_GROUPS_FIX}")
            if bounds:
                prev = bounds[-1][1]
                assert prev is not None  # an open group is last
                if low <= prev:
                    word = "is out of order" if low < bounds[-1][0] else "overlaps the group before it"
                    raise ConfigError(f"--age-groups: {item.strip()!r} {word}; {_AGE_GROUPS_FIX}")
                if low > prev + 1:
                    raise ConfigError(f"--age-groups: gap between {_name(bounds[-1])!r} and {item.strip()!r} (ages "
                                      f"{prev + 1}-{low - 1} have no group); {_AGE_GROUPS_FIX}")
            bounds.append((low, high))
        return cls(tuple(bounds))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(_name(b) for b in self.bounds)

    def __len__(self) -> int:
        return len(self.bounds)

    def __str__(self) -> str:
        return ",".join(self.names)

    def class_of(self, age: float) -> int:
        """The index of the group holding ``age`` years (its whole years); DataError for an age in no group."""
        age = float(age)
        if not math.isfinite(age) or age < 0:
            raise DataError(f"age {age} is not a number of years (0 or more)")
        years = math.floor(age)
        for index, (low, high) in enumerate(self.bounds):
            if low <= years and (high is None or years <= high):
                return index
        raise DataError(f"age {age:g} is in none of the --age-groups {self}; widen the groups (e.g. end with an "
                        "open group such as 81+)")

    def centre(self, index: int) -> float:
        """The middle of a group in years (an open last group: its start plus half the width of the one before)."""
        low, high = self.bounds[index]
        if high is None:
            width = (self.bounds[index - 1][1] - self.bounds[index - 1][0] + 1) if index > 0 else 10  # type: ignore[operator]
            return low + width / 2.0
        return (low + high + 1) / 2.0


def class_age_groups(class_names: Sequence[str]) -> AgeGroups | None:
    """The classes as age groups when every name is a range of years in order (``0-10, ..., 81+``), else None
    (the demo's ``original`` / ``simulated older``)."""
    try:
        groups = AgeGroups.parse(",".join(class_names))
    except ConfigError:
        return None
    return groups if len(groups) == len(class_names) else None


def _name(bound: tuple[int, int | None]) -> str:
    low, high = bound
    return f"{low}+" if high is None else f"{low}-{high}"


#: The default groups: the reference's decades ([0-10], [11-20] ... including 31-40, which its list leaves out),
#: ending with 71-80 and an open 81+. The offline age estimator (reface_tf.faces.age_estimator) has bins only up to
#: 80 years, so groups above 80 (the reference's 81-90 and 91-100) cannot be told apart by it or measured on
#: generated faces: they are one group here.
DEFAULT_AGE_GROUPS = AgeGroups.parse("0-10,11-20,21-30,31-40,41-50,51-60,61-70,71-80,81+")


@dataclass
class ClassLabels:
    """Labelled images of a dataset folder: ``paths[i]`` (relative to the folder) has class ``classes[i]``.

    ``ages`` holds the age in years of each image where the source gives ages (None for ``path,class`` CSVs);
    ``groups`` the identity group of each image from ``ROOT/groups.csv`` (``stem,group``; the file stem where it is
    not listed), so a split can keep one person on one side; ``skipped`` lists every entry that was not used, with
    the reason.
    """

    root: str
    paths: list[str]
    classes: np.ndarray  # int32 [N]
    class_names: tuple[str, ...]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ages: np.ndarray | None = None  # float64 [N]
    groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def files(self) -> list[Path]:
        """The images as paths (``root / path``)."""
        return [Path(self.root) / p for p in self.paths]

    def counts(self) -> dict[str, int]:
        """Images per class name (every class, zero included)."""
        found = np.bincount(self.classes, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found)}


def read_class_labels(root: str | os.PathLike, source: str = "auto",
                      groups: AgeGroups = DEFAULT_AGE_GROUPS) -> ClassLabels:
    """The class labels of the images under ``root`` (see the module docstring for the sources)."""
    root = Path(root)
    if source not in SOURCES:
        raise ConfigError(f"unknown age label source {source!r}; use one of {', '.join(SOURCES)}")
    if not root.is_dir():
        raise DataError(f"--data: {root} is not a folder; pass the folder of the labelled face images")
    if source == "auto":
        source = detect_source(root)
    reader = {"csv": _read_csv, "utkface": _read_utkface, "imdb-wiki": _read_imdb_wiki}[source]
    entries, skipped, names, with_ages = reader(root, groups)
    entries.sort(key=lambda e: e[0])
    groups_of = read_groups_file(root)
    if not entries:
        first = f" (first skipped: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"--data: no labelled images in {root} as {source}{first}")
    return ClassLabels(
        root=str(root),
        paths=[e[0] for e in entries],
        classes=np.asarray([e[1] for e in entries], dtype=np.int32),
        class_names=names,
        source=source,
        skipped=skipped,
        ages=np.asarray([e[2] for e in entries], dtype=np.float64) if with_ages else None,
        groups=[groups_of.get(Path(e[0]).stem, Path(e[0]).stem) for e in entries],
    )


def detect_source(root: Path) -> str:
    """Which labelled layout ``root`` holds; a one-line DataError naming what was looked for when none."""
    if (root / LABELS_CSV).is_file():
        return "csv"
    if _imdb_wiki_age_folders(root) or _is_imdb_wiki_meta(root / IMDB_WIKI_META):
        return "imdb-wiki"
    if any(UTKFACE_NAME.match(p.name) for p in root.iterdir() if p.is_file()):
        return "utkface"
    raise DataError(f"--data: {root} has no age labels: looked for {LABELS_CSV} (path,age or path,class), the "
                    f"processed IMDB-WIKI layout ({IMDB_WIKI_META}, or age/train/<age>/ folders) and UTKFace names "
                    f"({UTKFACE_PATTERN}); estimate ages with python prepare_ages.py --data {root}")


# ------------------------------------------------------------------------------------------------- sources

_Entry = tuple[str, int, float]  # relative path, class, age (nan when none)


def _check_image_path(root: Path, rel: str) -> str | None:
    """Why ``rel`` (a path from a label table) cannot be used, or None."""
    path = Path(rel)
    if not rel or path.is_absolute() or ".." in path.parts:
        return "path must be relative to the dataset folder, inside it"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (suffix {path.suffix or 'none'}; reads {', '.join(IMAGE_SUFFIXES)})"
    if not (root / path).is_file():
        return "file not found"
    return None


def _row_skipped(root: Path, rel: str, seen: set[str], where: str, skipped: list[tuple[str, str]]) -> bool:
    """Record why the image of a label-table row (``where`` = ``file:line``) cannot be used; False if it can."""
    problem = _check_image_path(root, rel)
    if problem is None and rel in seen:
        problem = f"listed again ({where}); the first label is used"
    if problem is not None:
        skipped.append((rel or where, problem))
    return problem is not None


def _age_entry(rel: str, age: float, groups: AgeGroups) -> tuple[_Entry | None, str | None]:
    try:
        return (rel, groups.class_of(age), float(age)), None
    except DataError as err:
        return None, str(err)


def _read_csv(root: Path, groups: AgeGroups) -> tuple[list[_Entry], list[tuple[str, str]], tuple[str, ...], bool]:
    path = root / LABELS_CSV
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if header not in (["path", "age"], ["path", "class"]):
        raise DataError(f"{path}: the first line must be the header path,age or path,class (got "
                        f"{','.join(rows[0]) if rows else 'an empty file'})")
    by_age = header[1] == "age"
    names = groups.names if by_age else _class_names(root, groups)
    index = {name: i for i, name in enumerate(names)}
    entries: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            skipped.append((f"{LABELS_CSV}:{line}", f"expected 2 fields ({','.join(header)}), got {len(row)}"))
            continue
        rel, value = row[0].strip(), row[1].strip()
        if _row_skipped(root, rel, seen, f"{LABELS_CSV}:{line}", skipped):
            continue
        if by_age:
            try:
                age = float(value)
            except ValueError:
                skipped.append((rel, f"age {value!r} is not a number"))
                continue
            entry, problem = _age_entry(rel, age, groups)
        else:
            entry, problem = _class_entry(rel, value, index, names)
        if entry is None:
            skipped.append((rel, problem or "no class"))
            continue
        seen.add(rel)
        entries.append(entry)
    return entries, skipped, names, by_age


def _class_names(root: Path, groups: AgeGroups) -> tuple[str, ...]:
    path = root / CLASSES_JSON
    if not path.is_file():
        return groups.names
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err}); write a JSON list of class names") from None
    if (not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names)
            or len(set(names)) != len(names)):
        raise DataError(f"{path}: must be a JSON list of distinct, non-empty class names, e.g. [\"young\", \"old\"]")
    return tuple(names)


def _class_entry(rel: str, value: str, index: dict[str, int], names: tuple[str, ...]) -> tuple[_Entry | None, str | None]:
    if value in index:
        return (rel, index[value], math.nan), None
    if re.fullmatch(r"\d+", value):
        k = int(value)
        if k < len(names):
            return (rel, k, math.nan), None
        return None, f"class index {k} is not below the number of classes {len(names)}"
    return None, f"class {value!r} is neither an index nor one of {', '.join(names)}"


def _read_utkface(root: Path, groups: AgeGroups) -> tuple[list[_Entry], list[tuple[str, str]], tuple[str, ...], bool]:
    files, ignored = list_folder(root, read_elsewhere=(LABELS_CSV, CLASSES_JSON, "groups.csv", "README.txt"))
    skipped = [(p.name, reason) for p, reason in ignored]
    entries: list[_Entry] = []
    for p in files:
        match = UTKFACE_NAME.match(p.name)
        if not match:
            skipped.append((p.name, f"name is not a UTKFace name {UTKFACE_PATTERN}"))
            continue
        age, gender, race = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if gender > 1 or race > 4:
            skipped.append((p.name, f"gender {gender} / race {race} out of UTKFace's ranges (0-1 / 0-4): not a UTKFace name"))
            continue
        entry, problem = _age_entry(p.name, age, groups)
        (entries.append(entry) if entry else skipped.append((p.name, problem or "no class")))
    return entries, skipped, groups.names, True


def _is_age_folder(path: Path) -> bool:
    return path.is_dir() and path.name.isdigit()


def _imdb_wiki_age_folders(root: Path) -> list[Path]:
    """The ``<age>/`` folders of the processed layout under ``root`` (``dataset``, ``dataset/age`` or a split)."""
    for base in (root / "age", root):
        splits = [base / s for s in ("train", "test") if (base / s).is_dir()]
        folders = [f for split in splits for f in sorted(split.iterdir()) if _is_age_folder(f)]
        if folders:
            return folders
    return [f for f in sorted(root.iterdir()) if _is_age_folder(f)]


def _is_imdb_wiki_meta(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        header = {h.strip() for h in next(csv.reader(fh), [])}
    return bool(header & {"path", "full_path"}) and ("age" in header or {"dob", "photo_taken"} <= header)


def _read_imdb_wiki(root: Path, groups: AgeGroups) -> tuple[list[_Entry], list[tuple[str, str]], tuple[str, ...], bool]:
    folders = _imdb_wiki_age_folders(root)
    if not folders:
        if not _is_imdb_wiki_meta(root / IMDB_WIKI_META):
            raise DataError(f"--data: {root} is not the processed IMDB-WIKI layout: no age/train/<age>/ folders and no "
                            f"{IMDB_WIKI_META} with path (or full_path) and age (or dob and photo_taken) columns")
        return _read_imdb_wiki_meta(root, groups)
    entries: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    low, high = IMDB_WIKI_AGE_RANGE
    for folder in folders:
        age = int(folder.name)
        files, ignored = list_folder(folder)
        skipped += [(p.relative_to(root).as_posix(), reason) for p, reason in ignored]
        for p in files:
            rel = p.relative_to(root).as_posix()
            if not low <= age <= high:
                skipped.append((rel, f"age {age} outside {low}-{high} (invalid in IMDB-WIKI)"))
                continue
            entry, problem = _age_entry(rel, age, groups)
            (entries.append(entry) if entry else skipped.append((rel, problem or "no class")))
    return entries, skipped, groups.names, True


def _matlab_datenum(value: float) -> date:
    # MATLAB counts days from year 0 (datenum 1 = 1 January of year 0, proleptic); Python's ordinal 1 is 1 January
    # of year 1, 366 days later.
    return date.fromordinal(int(value) - 366) + timedelta(days=value % 1)


def imdb_wiki_age(dob: str, photo_taken: str) -> int:
    """Age in whole years as the processed dataset's ``mat.py`` computes it: from the date of birth to
    1 January of the year the photo was taken. ``dob`` is a MATLAB datenum or ``YYYY-MM-DD``."""
    taken = date(int(float(photo_taken)), 1, 1)
    text = dob.strip()
    born = date.fromisoformat(text[:10]) if "-" in text[1:] else _matlab_datenum(float(text))
    years = taken.year - born.year - ((taken.month, taken.day) < (born.month, born.day))
    return years


def _read_imdb_wiki_meta(root: Path, groups: AgeGroups) -> tuple[list[_Entry], list[tuple[str, str]], tuple[str, ...], bool]:
    path = root / IMDB_WIKI_META
    entries: list[_Entry] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    low, high = IMDB_WIKI_AGE_RANGE
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        column = "path" if "path" in (reader.fieldnames or []) else "full_path"
        for line, row in enumerate(reader, start=2):
            rel = (row.get(column) or "").strip()
            if _row_skipped(root, rel, seen, f"{IMDB_WIKI_META}:{line}", skipped):
                continue
            try:
                if row.get("age") not in (None, ""):
                    age = float(row["age"])
                else:
                    age = imdb_wiki_age(row.get("dob") or "", row.get("photo_taken") or "")
            except (ValueError, OverflowError):
                skipped.append((rel, "age (or dob / photo_taken) is not a valid number or date"))
                continue
            if not low <= age <= high:
                skipped.append((rel, f"age {age:g} outside {low}-{high} (invalid in IMDB-WIKI)"))
                continue
            entry, problem = _age_entry(rel, age, groups)
            if entry is None:
                skipped.append((rel, problem or "no class"))
                continue
            seen.add(rel)
            entries.append(entry)
    return entries, skipped, groups.names, True

