"""Find, validate and split the pairs of a paired dataset.

Three layouts are accepted (``--layout auto`` picks by what it finds):

* ``folders``: ``ROOT/A/<stem>.*`` (inputs) and ``ROOT/B/<stem>.*`` (targets), matched by file stem;
* ``side_by_side``: each image holds both halves (the pix2pix / TF tutorial format), ``--ab-order`` says which;
* ``csv``: a CSV with ``input,target`` (optional ``group``) columns; relative paths are relative to the CSV.

Every pair is decoded once before training. Every entry of the data folders (``A/`` and ``B/``, or the
side-by-side folder) that is not used is named with the reason, one log line each (train.py also lists them in
the run's ``data_report.json``): unmatched stems, unreadable, zero-byte or damaged images, size mismatches inside
a pair, files whose suffix is not an image format every command reads (``IMAGE_SUFFIXES``), hidden files and
sub-folders. They are skipped, or abort the run with ``--strict`` (hidden files and sub-folders never do).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from reface_tf.config import DataConfig
from reface_tf.data.images import IMAGE_SUFFIXES, is_data_entry, list_folder, load_rgb
from reface_tf.errors import DataError

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
SPLITS_FILE = "splits.json"
# Optional per-pair masks next to A/ and B/ (``regions/<stem>.png``, non-zero = the region the translation is
# meant to change, e.g. the face of a procedure-simulated pair); evaluation also reports metrics inside them.
REGIONS_DIR = "regions"


@dataclass(frozen=True)
class Pair:
    id: str
    input_path: str
    target_path: str
    group: str
    input_half: str | None = None   # "left" / "right" for side-by-side files
    target_half: str | None = None


def region_path(pair: Pair) -> Path | None:
    """``<root>/regions/<stem>.png`` of a pair in the A/ B/ layout, when that mask exists."""
    path = Path(pair.input_path).parent.parent / REGIONS_DIR / f"{Path(pair.input_path).stem}.png"
    return path if pair.input_half is None and path.is_file() else None


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str
    invalid: bool = True  # False for entries that are not meant as data (hidden files, sub-folders): --strict ignores them


@dataclass
class DatasetScan:
    root: str
    layout: str
    pairs: list[Pair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        reasons = Counter(p.reason.split(";")[0].split(" (")[0] for p in self.problems)
        skipped = ", ".join(f"{n} {r}" for r, n in reasons.most_common())
        return f"{len(self.pairs)} valid pairs in {self.root} ({self.layout})" + (f"; skipped {len(self.problems)}: {skipped}" if self.problems else "")

    def write_report(self, path: str | os.PathLike) -> None:
        report = {"root": self.root, "layout": self.layout, "valid_pairs": len(self.pairs),
                  "skipped": len(self.problems), "problems": [asdict(p) for p in self.problems]}
        _write_json_atomic(Path(path), report)


def _images_in(folder: Path, problems: list[Problem], read_elsewhere: tuple[str, ...] = ()) -> list[Path]:
    """The image files of ``folder`` (each is decoded later); every other entry goes to ``problems`` with the
    reason, in the words prepare.py and predict.py use, so no entry of the folder is left out without a word.
    Hidden files and sub-folders are not meant as data: ``--strict`` ignores them."""
    files, ignored = list_folder(folder, IMAGE_SUFFIXES, read_elsewhere)
    problems += [Problem(str(p), reason, invalid=is_data_entry(p)) for p, reason in ignored]
    return files


def detect_layout(root: Path) -> str:
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise DataError(f"--data: {root} is a file but not a .csv manifest; pass a dataset folder or a CSV of input,target paths")
    if (root / "A").is_dir() and (root / "B").is_dir():
        return "folders"
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir() if p.is_file()):
        return "side_by_side"
    raise DataError(f"--data: {root} has neither A/ and B/ folders nor side-by-side images; "
                    "see README 'Dataset layout'")


def _folder_pairs(root: Path) -> tuple[list[tuple[str, Path, Path]], list[Problem]]:
    def by_stem(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
        found: dict[str, Path] = {}
        problems = []
        for p in _images_in(folder, problems):
            if p.stem in found:
                problems.append(Problem(str(p), f"duplicate stem (also {found[p.stem].name}); rename one"))
            else:
                found[p.stem] = p
        return found, problems

    inputs, problems_a = by_stem(root / "A")
    targets, problems_b = by_stem(root / "B")
    problems = problems_a + problems_b
    problems += [Problem(str(inputs[s]), "unmatched: no target with this stem in B/") for s in sorted(set(inputs) - set(targets))]
    problems += [Problem(str(targets[s]), "unmatched: no input with this stem in A/") for s in sorted(set(targets) - set(inputs))]
    return [(s, inputs[s], targets[s]) for s in sorted(set(inputs) & set(targets))], problems


def _csv_rows(path: Path) -> tuple[list[tuple[str, Path, Path, str | None]], list[Problem]]:
    rows, problems = [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"input", "target"} <= set(reader.fieldnames):
            raise DataError(f"--data: {path} needs a header with 'input' and 'target' columns (optional 'group')")
        for line, row in enumerate(reader, start=2):
            if not row.get("input") or not row.get("target"):
                problems.append(Problem(f"{path}:{line}", "empty input or target cell"))
                continue
            a, b = (Path(row[k]) if Path(row[k]).is_absolute() else path.parent / row[k] for k in ("input", "target"))
            rows.append((f"{line - 1:06d}_{a.stem}", a, b, row.get("group") or None))
    return rows, problems


def read_groups_file(root: Path) -> dict[str, str]:
    """``root/groups.csv`` (``stem,group``) as {stem: group}; empty without the file."""
    path = root / "groups.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"stem", "group"} <= set(reader.fieldnames):
            raise DataError(f"{path}: needs a header with 'stem' and 'group' columns")
        return {row["stem"]: row["group"] for row in reader}


def _check_pair(pair: Pair, max_pixels: int) -> Problem | None:
    try:
        a, b = load_pair_rgb(pair, max_pixels)
    except DataError as err:
        path, _, reason = str(err).partition(": ")
        return Problem(path, reason)
    if a.shape[:2] != b.shape[:2]:
        return Problem(pair.input_path, f"size mismatch inside the pair: input {a.shape[1]}x{a.shape[0]} vs target "
                                        f"{b.shape[1]}x{b.shape[0]}; align the pair (python prepare.py)")
    return None


def scan_dataset(root: str | os.PathLike, data: DataConfig, check_images: bool = True) -> DatasetScan:
    """Discover the pairs under ``root`` and validate each (decoding it) unless ``check_images`` is False."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"--data: {root} does not exist; pass a paired dataset folder or CSV")
    layout = detect_layout(root) if data.layout == "auto" else data.layout
    scan = DatasetScan(str(root), layout)
    pattern = re.compile(data.group_pattern) if data.group_pattern else None
    groups = {} if layout == "csv" else read_groups_file(root)

    def group_of(stem: str, given: str | None = None) -> str:
        if given:
            return given
        if pattern and (match := pattern.search(stem)):
            return match.group(1)
        return groups.get(stem, stem)

    candidates: list[Pair] = []
    if layout == "folders":
        matched, scan.problems = _folder_pairs(root)
        candidates = [Pair(stem, str(a), str(b), group_of(stem)) for stem, a, b in matched]
    elif layout == "csv":
        rows, scan.problems = _csv_rows(root)
        candidates = [Pair(pid, str(a), str(b), group_of(a.stem, g)) for pid, a, b, g in rows]
    elif layout == "side_by_side":
        input_half, target_half = ("right", "left") if data.ab_order == "target_input" else ("left", "right")
        for p in _images_in(root, scan.problems, read_elsewhere=("groups.csv",)):
            candidates.append(Pair(p.stem, str(p), str(p), group_of(p.stem), input_half, target_half))
    else:
        raise DataError(f"--layout: unknown layout {layout!r}")

    if check_images and candidates:
        workers = min(8, (os.cpu_count() or 2) * 2)
        with ThreadPoolExecutor(workers) as pool:  # decoding releases the GIL; threads suffice
            results = list(pool.map(lambda pair: _check_pair(pair, data.max_pixels), candidates))
        for pair, problem in zip(candidates, results):
            (scan.problems.append(problem) if problem else scan.pairs.append(pair))
    else:
        scan.pairs = candidates

    for problem in scan.problems:
        log.warning("skipping %s: %s", problem.path, problem.reason)
    invalid = [p for p in scan.problems if p.invalid]
    if invalid and data.strict:
        first = invalid[0]
        raise DataError(f"--strict: {len(invalid)} invalid file(s) in {root}, first {first.path}: {first.reason}")
    if not scan.pairs:
        raise DataError(f"--data: no valid pairs in {root}" + (f" ({len(scan.problems)} skipped, first: "
                        f"{scan.problems[0].path}: {scan.problems[0].reason})" if scan.problems else " (it is empty)"))
    return scan


def _half(rgb: np.ndarray, half: str | None, path: str) -> np.ndarray:
    if half is None:
        return rgb
    width = rgb.shape[1]
    if width < 2 or width % 2:
        raise DataError(f"{path}: side-by-side image has odd width {width}; both halves must be equal")
    return rgb[:, : width // 2] if half == "left" else rgb[:, width // 2:]


def load_pair_rgb(pair: Pair, max_pixels: int = 50_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Decode both images of a pair to RGB uint8 (cutting side-by-side files into their halves)."""
    if pair.input_path == pair.target_path:
        whole = load_rgb(pair.input_path, max_pixels)
        return _half(whole, pair.input_half, pair.input_path), _half(whole, pair.target_half, pair.target_path)
    a = _half(load_rgb(pair.input_path, max_pixels), pair.input_half, pair.input_path)
    b = _half(load_rgb(pair.target_path, max_pixels), pair.target_half, pair.target_path)
    return a, b


def split_pairs(pairs: list[Pair], val_ratio: float, test_ratio: float, seed: int) -> dict[str, list[Pair]]:
    """Deterministic, group-aware split: every group lands in exactly one of train / val / test.

    Groups are shuffled with ``seed`` and assigned in that order to test, then val, until each holds its
    share of pairs; the rest is train. A non-zero ratio always gets at least one group when there are 3+.
    """
    by_group: dict[str, list[Pair]] = {}
    for pair in sorted(pairs, key=lambda p: p.id):
        by_group.setdefault(pair.group, []).append(pair)
    names = sorted(by_group)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    total = len(pairs)
    split: dict[str, list[Pair]] = {name: [] for name in SPLIT_NAMES}
    remaining = list(order)
    for name, ratio in (("test", test_ratio), ("val", val_ratio)):
        while ratio > 0 and len(remaining) > 1:
            first_of_split = not split[name] and len(names) >= 3
            if not (first_of_split or len(split[name]) + len(by_group[remaining[0]]) <= ratio * total):
                break
            split[name].extend(by_group[remaining.pop(0)])
    for group in remaining:
        split["train"].extend(by_group[group])
    return split


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _dataset_base(root: str | os.PathLike) -> Path:
    """The folder a dataset's paths are relative to: the dataset folder, or the folder of a CSV manifest."""
    root = Path(os.path.abspath(root))
    return root.parent if root.suffix.lower() == ".csv" else root


def _relative(path: str, base: Path) -> str:
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, base)
    return absolute if relative.startswith("..") else relative  # a CSV may point outside its folder


def write_splits(run_dir: str | os.PathLike, splits: dict[str, list[Pair]], root: str, seed: int) -> None:
    """Save the split with paths relative to the dataset (its absolute root recorded), so a run can be resumed
    or evaluated from any working directory, and from a dataset that was moved (``read_splits(root=...)``)."""
    base = _dataset_base(root)
    rows = {name: [asdict(replace(p, input_path=_relative(p.input_path, base), target_path=_relative(p.target_path, base)))
                   for p in splits[name]] for name in SPLIT_NAMES}
    data = {"dataset": os.path.abspath(root), "base": str(base), "paths": "relative to base", "seed": seed, **rows}
    _write_json_atomic(Path(run_dir) / SPLITS_FILE, data)


def split_dataset_root(run_dir: str | os.PathLike) -> str | None:
    """The absolute dataset root a run's split was made from (None for a split file without one)."""
    try:
        return json.loads((Path(run_dir) / SPLITS_FILE).read_text()).get("dataset")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None


def read_splits(run_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, list[Pair]]:
    """The split of a run with absolute paths; ``root`` re-bases it onto a dataset that was moved there."""
    path = Path(run_dir) / SPLITS_FILE
    if not path.is_file():
        raise DataError(f"{path} not found; is {run_dir} a training run directory?")
    try:
        data = json.loads(path.read_text())
        pairs = {name: [Pair(**p) for p in data[name]] for name in SPLIT_NAMES}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: unreadable split file ({err}); restore it or start a new run") from None
    if "base" not in data:  # written before paths were stored relative: paths as they were given
        return pairs
    base = _dataset_base(root) if root is not None else Path(data["base"])

    def absolute(p: Pair) -> Pair:
        return replace(p, input_path=str(base / p.input_path), target_path=str(base / p.target_path))

    return {name: [absolute(p) for p in pairs[name]] for name in SPLIT_NAMES}


def splits_fingerprint(run_dir: str | os.PathLike) -> str | None:
    """SHA-256 of which pairs a run's split holds: per split, each pair's id and its paths relative to the
    dataset (and the halves of side-by-side files), in id order.

    Two runs on the same split give the same digest wherever the dataset lies (its absolute root and the seed
    are left out); another split, or a renamed file, gives another. It names the split, not the pixels.
    None when the run has no ``splits.json``; DataError when it is unreadable.
    """
    path = Path(run_dir) / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        content = {name: sorted(([p["id"], p["input_path"], p["target_path"], p.get("input_half"), p.get("target_half")]
                                 for p in data[name]), key=json.dumps) for name in SPLIT_NAMES}
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: unreadable split file ({err}); restore it or start a new run") from None
    canonical = json.dumps(content, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


def read_split(run_dir: str | os.PathLike, name: str) -> list[Pair]:
    if name not in SPLIT_NAMES:
        raise DataError(f"unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}")
    return read_splits(run_dir)[name]
