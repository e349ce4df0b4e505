"""Turn raw before/after photo pairs into an aligned dataset: ``python -m reface_tf.faces.prepare``.

>>> main(["--src", "raw", "--dst", "aligned"])      # doctest: +SKIP

Input: ``RAW/A/<stem>.*`` and ``RAW/B/<stem>.*`` matched by file stem, or one folder whose file names follow
a naming rule (``--pair-pattern '*_pre' '*_post'``: ``017_pre.jpg`` and ``017_post.jpg`` form pair ``017``).
Output: ``OUT/A/<stem>.png``, ``OUT/B/<stem>.png`` (each photo aligned on its own landmarks to the same
template), ``OUT/manifest.jsonl`` (one line per aligned image), ``OUT/alignment.json`` (the alignment settings,
once for the dataset: training, export and predict read them) and ``OUT/report.json`` / ``OUT/report.md``.

A pair is all or nothing: if either photo cannot be decoded or shows no face, neither side is written and
the pair is reported with the reason. Every file is written to a temporary name and renamed, so an
interrupted run leaves only complete files, and a rerun continues where it stopped (``--force`` redoes all).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from reface_tf.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, list_folder, load_rgb
from reface_tf.cli import CountProgress
from reface_tf.errors import DataError, ModelError, RefaceError
from reface_tf.faces.align import BORDER_MODES, DEFAULT_MARGIN, DEFAULT_SIZE, align_face
from reface_tf.faces.alignment_settings import AlignmentSettings, read_alignment, write_alignment

log = logging.getLogger("reface_tf.faces.prepare")  # the same name when run with -m

SIDES = ("A", "B")
MANIFEST = "manifest.jsonl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
DEFAULT_MIN_FACE_SIZE = 64
# Reason kinds: the coarse key counted in the report; the full one-line reason is kept per file.
UNREADABLE, NO_FACE, UNPAIRED, DUPLICATE, FAILED = "unreadable", "no face", "unpaired", "duplicate stem", "failed"
_NAMED_IN_LOG = 20  # files left out at discovery named one per line; all of them are in the report
_FLUSH_EVERY_S = 60.0
NOT_READ = "not read"


# --------------------------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class PairTask:
    stem: str
    sources: tuple[str, str]  # (A path, B path)


@dataclass
class Discovery:
    pairs: list[PairTask] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)  # files that cannot form a pair, with the reason


def _image_files(folder: Path, side: str, problems: list[dict]) -> list[Path]:
    """The photos in ``folder``; every other entry goes to ``problems`` with the reason it is not read."""
    read, ignored = list_folder(folder, IMAGE_SUFFIXES)
    problems += [_problem(p.stem, side, p, NOT_READ, reason) for p, reason in ignored]
    return read


def _by_stem(files: Iterable[tuple[str, Path]], side: str, problems: list[dict]) -> dict[str, Path]:
    """Index files by pair stem; a stem claimed twice (``x.jpg`` and ``x.png``) is ambiguous, so both go."""
    found: dict[str, list[Path]] = {}
    for stem, path in files:
        found.setdefault(stem, []).append(path)
    unique = {}
    for stem, paths in found.items():
        if len(paths) == 1:
            unique[stem] = paths[0]
            continue
        for path in paths:
            problems.append(_problem(stem, side, path, DUPLICATE,
                                     f"{len(paths)} files share pair name {stem!r} on side {side}; rename one"))
    return unique


def _pattern_stem(name_stem: str, pattern: str) -> str | None:
    """The part of ``name_stem`` matched by the single ``*`` of ``pattern``, or None if it does not match."""
    prefix, suffix = pattern.split("*")
    if fnmatch.fnmatchcase(name_stem, pattern) and len(name_stem) > len(prefix) + len(suffix):
        return name_stem[len(prefix):len(name_stem) - len(suffix)]
    return None


def discover_pairs(src: str | os.PathLike, pair_pattern: Sequence[str] | None = None) -> Discovery:
    """Pairs in ``src`` (A/ and B/ folders, or one folder and ``pair_pattern``), plus files left unpaired."""
    if not Path(src).is_dir():
        raise DataError(f"--src {src}: folder not found; pass the folder holding the raw photo pairs")
    # Absolute, so the manifest's source paths stay meaningful from anywhere and a rerun from another working
    # folder still recognises finished pairs.
    src = Path(os.path.abspath(src))
    problems: list[dict] = []
    if pair_pattern:
        patterns = tuple(pair_pattern)
        for pattern in patterns:
            if pattern.count("*") != 1:
                raise DataError(f"--pair-pattern {pattern!r}: needs exactly one '*' standing for the pair name")
        files = _image_files(src, "", problems)
        sides: list[dict[str, Path]] = []
        for side, pattern in zip(SIDES, patterns):
            named = [(stem, p) for p in files if (stem := _pattern_stem(p.stem, pattern)) is not None]
            sides.append(_by_stem(named, side, problems))
        problems += [_problem(p.stem, "", p, NOT_READ, f"matches none of --pair-pattern {' '.join(patterns)}")
                     for p in files if all(_pattern_stem(p.stem, pattern) is None for pattern in patterns)]
        if not files:
            raise DataError(f"--src {src}: no image files found; expected names like {patterns[0].replace('*', '001')}.jpg")
    else:
        folders = [src / side for side in SIDES]
        if not all(f.is_dir() for f in folders):
            raise DataError(
                f"--src {src}: expected sub-folders A/ (before) and B/ (after) matched by file name, "
                "or pass --pair-pattern '*_pre' '*_post' for one folder"
            )
        sides = [_by_stem(((p.stem, p) for p in _image_files(f, side, problems)), side, problems)
                 for side, f in zip(SIDES, folders)]
        if not sides[0] and not sides[1] and all(p["kind"] == NOT_READ for p in problems):
            raise DataError(f"--src {src}: A/ and B/ hold no image files ({', '.join(IMAGE_SUFFIXES)})")
    a_side, b_side = sides
    for side, own, other in (("A", a_side, b_side), ("B", b_side, a_side)):
        for stem in sorted(set(own) - set(other)):
            problems.append(_problem(stem, side, own[stem], UNPAIRED, f"no matching {'B' if side == 'A' else 'A'} photo"))
    discovery = Discovery(
        pairs=[PairTask(s, (str(a_side[s]), str(b_side[s]))) for s in sorted(set(a_side) & set(b_side))],
        problems=problems,
    )
    if not discovery.pairs and not discovery.problems:
        raise DataError(f"--src {src}: no photo pairs found (pattern {list(pair_pattern or [])} matched nothing)")
    return discovery


def _problem(stem: str, side: str, path: os.PathLike | str, kind: str, reason: str) -> dict:
    return {"stem": stem, "side": side, "file": str(path), "kind": kind, "reason": reason}


# -------------------------------------------------------------------------------------------- one pair


@dataclass(frozen=True)
class Options:
    dst: str
    size: int = DEFAULT_SIZE
    margin: float = DEFAULT_MARGIN
    border_mode: str = "reflect"
    min_face_size: float = DEFAULT_MIN_FACE_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    landmarker: str | None = None


def output_path(dst: str | os.PathLike, side: str, stem: str) -> Path:
    return Path(dst) / side / f"{stem}.png"


def _align_side(landmarker, task: PairTask, side: str, opts: Options) -> tuple[dict | None, dict | None, np.ndarray | None]:
    """(manifest record, problem, aligned image) for one photo; exactly one of record/problem is set."""
    source = task.sources[SIDES.index(side)]
    try:
        rgb = load_rgb(source, opts.max_pixels)
    except DataError as err:
        return None, _problem(task.stem, side, source, UNREADABLE, str(err)), None
    faces = landmarker.detect(rgb)
    if not faces:
        return None, _problem(task.stem, side, source, NO_FACE, f"{source}: no face found"), None
    face = faces[0]
    warnings = []
    if len(faces) > 1:
        warnings.append(f"{len(faces)} faces found; used the largest ({face.size:.0f} px)")
    try:
        aligned = align_face(rgb, face.landmarks, size=opts.size, margin=opts.margin, border_mode=opts.border_mode)
    except ValueError as err:  # degenerate landmarks: better reported than fatal for the whole run
        return None, _problem(task.stem, side, source, FAILED, f"{source}: alignment failed ({err})"), None
    if aligned.face_size < opts.min_face_size:
        warnings.append(f"small face: {aligned.face_size:.0f} px < --min-face-size {opts.min_face_size:g}; "
                        "the aligned image is upscaled and blurry")
    record = {
        "side": side,
        "stem": task.stem,
        "file": f"{side}/{task.stem}.png",
        "source": source,
        "source_hw": [int(rgb.shape[0]), int(rgb.shape[1])],
        "size": opts.size,
        "margin": opts.margin,
        "border_mode": opts.border_mode,
        "faces": len(faces),
        "score": round(face.score, 4),
        "face_size": round(aligned.face_size, 2),
        "matrix": np.round(aligned.matrix, 6).tolist(),
        "landmarks": np.round(aligned.landmarks.astype(np.float64), 2).tolist(),
        "warnings": warnings,
    }
    return record, None, aligned.image


def _remove_outputs(dst: str, stem: str) -> None:
    for side in SIDES:
        with contextlib.suppress(OSError):  # a folder squatting on the name is reported by the write, not here
            output_path(dst, side, stem).unlink(missing_ok=True)


def process_pair(landmarker, task: PairTask, opts: Options) -> dict:
    """Align both photos of a pair and write them; a pair failing on either side writes nothing.

    Returns ``{"stem", "records": [...], "problems": [...]}``: records for both sides, or problems only.
    """
    results = [_align_side(landmarker, task, side, opts) for side in SIDES]
    problems = [problem for _, problem, _ in results if problem is not None]
    if problems:
        # Remove outputs of an earlier run too, so the folder never holds a pair the manifest does not list.
        _remove_outputs(opts.dst, task.stem)
        other = {p["side"] for p in problems}
        for side in SIDES:
            if side not in other:
                problems.append(_problem(task.stem, side, task.sources[SIDES.index(side)], "partner failed",
                                         f"skipped with its pair: side {'B' if side == 'A' else 'A'} failed"))
        return {"stem": task.stem, "records": [], "problems": problems}
    try:
        for side, (_, _, image) in zip(SIDES, results):
            write_png_atomic(output_path(opts.dst, side, task.stem), image)
    except OSError as err:  # disk full, permissions: drop the side already written so the pair stays whole
        _remove_outputs(opts.dst, task.stem)
        return _failed(task, f"could not write the aligned pair ({err})")
    return {"stem": task.stem, "records": [record for record, _, _ in results], "problems": []}


# ----------------------------------------------------------------------------------------------- workers


def _make_landmarker(opts: Options):
    # Imported here so that discovery, the report and --help never load MediaPipe.
    from reface_tf.faces.landmarks import FaceLandmarker

    return FaceLandmarker(opts.landmarker, max_faces=5)


def _worker_loop(worker_id: int, tasks: "mp.Queue", results: "mp.Queue", opts: Options) -> None:
    """One worker process: build the landmarker once, then align the pairs it is handed until ``None``."""
    logging.getLogger().setLevel(logging.WARNING)
    # Ctrl-C reaches the whole process group; the parent decides how to stop, and a worker finishes the pair
    # in hand (its files are written atomically) instead of dying with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    # Parallelism comes from the worker processes; OpenCV's own thread pool on top only oversubscribes the CPUs.
    cv2.setNumThreads(1)
    try:
        landmarker = _make_landmarker(opts)
    except RefaceError as err:
        results.put(("init_error", worker_id, str(err)))
        return
    results.put(("ready", worker_id, None))
    with landmarker:
        while (task := tasks.get()) is not None:
            try:
                outcome = process_pair(landmarker, task, opts)
            except Exception as err:  # a bug or an odd image must not take the whole run down
                outcome = _failed(task, f"{type(err).__name__}: {err}")
            results.put(("done", worker_id, outcome))


def _failed(task: PairTask, reason: str) -> dict:
    return {"stem": task.stem, "records": [],
            "problems": [_problem(task.stem, side, src, FAILED, reason) for side, src in zip(SIDES, task.sources)]}


def _run_inline(tasks: list[PairTask], opts: Options) -> Iterable[dict]:
    with _make_landmarker(opts) as landmarker:
        for task in tasks:
            try:
                yield process_pair(landmarker, task, opts)
            except RefaceError:
                raise
            except Exception as err:
                yield _failed(task, f"{type(err).__name__}: {err}")


def _run_pool(tasks: list[PairTask], opts: Options, workers: int) -> Iterable[dict]:
    """Feed pairs to ``workers`` processes one at a time and yield outcomes as they finish.

    Each worker has its own task queue, so the pair a worker holds is always known: if the process dies
    (e.g. a native crash inside MediaPipe) that pair is reported as failed and a fresh worker takes over.
    """
    # spawn, not fork: the parent (a test runner, a notebook) may hold TensorFlow or MediaPipe threads.
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    pending = list(reversed(tasks))
    procs: dict[int, tuple] = {}
    ready: set[int] = set()
    holding: dict[int, PairTask | None] = {}
    next_id = 0

    def start() -> None:
        nonlocal next_id
        inbox = ctx.Queue()
        proc = ctx.Process(target=_worker_loop, args=(next_id, inbox, results, opts), daemon=True)
        proc.start()
        procs[next_id], holding[next_id] = (proc, inbox), None
        next_id += 1

    def feed(worker_id: int) -> None:
        task = pending.pop() if pending else None
        holding[worker_id] = task
        procs[worker_id][1].put(task)

    for _ in range(min(workers, len(tasks))):
        start()
    remaining = len(tasks)
    try:
        while remaining:
            try:
                kind, worker_id, payload = results.get(timeout=1.0)
            except queue.Empty:
                for worker_id, (proc, _) in list(procs.items()):
                    if not proc.is_alive():
                        if worker_id not in ready:
                            # Dying before the landmarker is up would repeat for every replacement.
                            raise ModelError(f"a worker process could not start the face landmarker "
                                             f"(exit code {proc.exitcode}); try --workers 1 to see the error")
                        lost = holding.pop(worker_id)
                        del procs[worker_id]
                        if lost is not None:
                            remaining -= 1
                            yield _failed(lost, f"worker process died (exit code {proc.exitcode}) on this pair")
                        if pending:
                            start()
                continue
            if kind == "init_error":
                raise RefaceError(payload)
            if kind == "ready":
                ready.add(worker_id)
            if kind == "done":
                remaining -= 1
                holding[worker_id] = None
                yield payload
            if worker_id in procs:
                feed(worker_id)
    finally:
        for worker_id, (proc, inbox) in procs.items():
            if proc.is_alive():
                inbox.put(None)
        for proc, _ in procs.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


# --------------------------------------------------------------------------------------- manifest, report


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a unique temporary name in the same folder and rename, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_png_atomic(path: Path, rgb: np.ndarray) -> None:
    """Lossless PNG of an RGB uint8 image, written atomically.

    OpenCV's encoder at zlib level 3 with the run-length strategy: on aligned 256 px faces it takes 3.2 ms
    where level 3 with the default strategy takes 5.5 ms and PIL's default (level 6) 10 ms, for files within
    1-3% of the same size. At level 6 encoding was ~40% of the CPU time per photo, more than the landmarks.
    """
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise DataError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, encoded.tobytes())


def read_manifest(dst: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """Manifest records of ``dst`` keyed by (side, stem); an unreadable line is dropped (its pair is redone)."""
    path = Path(dst) / MANIFEST
    records: dict[tuple[str, str], dict] = {}
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            records[(record["side"], record["stem"])] = record
        except (ValueError, KeyError, TypeError):
            continue
    return records


def write_manifest(dst: Path, records: dict[tuple[str, str], dict]) -> None:
    lines = [json.dumps(records[key], separators=(",", ":")) for key in sorted(records, key=lambda k: (k[1], k[0]))]
    write_text_atomic(dst / MANIFEST, "".join(line + "\n" for line in lines))


def build_report(src: str, dst: str, opts: Options, pairs_found: int, aligned: int, existing: int,
                 problems: list[dict], flagged: list[dict], elapsed: float, interrupted: bool = False) -> dict:
    skipped_pairs = sorted({p["stem"] for p in problems if p["kind"] not in (UNPAIRED, DUPLICATE, NOT_READ)})
    return {
        "src": src,
        "dst": dst,
        "options": {"size": opts.size, "margin": opts.margin, "border_mode": opts.border_mode,
                    "min_face_size": opts.min_face_size, "max_pixels": opts.max_pixels},
        "interrupted": interrupted,
        "counts": {
            "pairs_found": pairs_found,
            "pairs_aligned": aligned,
            "pairs_already_done": existing,
            "pairs_skipped": len(skipped_pairs),
            "files_unpaired": sum(p["kind"] in (UNPAIRED, DUPLICATE) for p in problems),
            "files_not_read": sum(p["kind"] == NOT_READ for p in problems),
            "images_flagged": len(flagged),
        },
        "skipped_by_reason": dict(sorted(Counter(p["kind"] for p in problems if p["kind"] != "partner failed").items())),
        "skipped": problems,
        "flagged": flagged,
        "elapsed_s": round(elapsed, 2),
        "pairs_per_s": round(aligned / elapsed, 3) if elapsed > 0 else None,
    }


def report_markdown(report: dict) -> str:
    counts = report["counts"]
    lines = [
        "# Dataset preparation report",
        "",
        f"- source: `{report['src']}`",
        f"- output: `{report['dst']}`",
        f"- options: {', '.join(f'{k}={v}' for k, v in report['options'].items())}",
        *(["- **interrupted**: rerun the same command to finish"] if report["interrupted"] else []),
        "",
        "| | count |",
        "|---|---:|",
        *(f"| {name.replace('_', ' ')} | {value} |" for name, value in counts.items()),
        "",
    ]
    if report["skipped_by_reason"]:
        lines += ["## Skipped, by reason", "", "| reason | files |", "|---|---:|"]
        lines += [f"| {kind} | {n} |" for kind, n in report["skipped_by_reason"].items()]
        lines += ["", "| pair | side | file | reason |", "|---|---|---|---|"]
        lines += [f"| {p['stem']} | {p['side']} | `{p['file']}` | {p['reason'].replace('|', '/')} |"
                  for p in report["skipped"]]
        lines.append("")
    if report["flagged"]:
        lines += ["## Aligned with warnings", "", "| pair | side | file | warning |", "|---|---|---|---|"]
        lines += [f"| {f['stem']} | {f['side']} | `{f['file']}` | {'; '.join(f['warnings'])} |"
                  for f in report["flagged"]]
        lines.append("")
    return "\n".join(lines)


def dataset_alignment(dst: Path, size: int, margin: float, border_mode: str, model: str | None,
                      explicit: str | os.PathLike | None) -> AlignmentSettings:
    """The settings ``alignment.json`` records for this run, with the SHA-256 of the landmarker model used.

    When nothing was aligned in this run (all pairs already done) no model was loaded: the digest recorded by
    the run that aligned them is kept, else that of the pinned model every default route is checked against.
    """
    from reface_tf.faces.landmarks import MODEL_SHA256
    from reface_tf.registry import sha256_of

    if model is not None and Path(model).is_file():
        sha = sha256_of(model)
    else:
        try:
            previous = read_alignment(dst)
        except DataError:
            previous = None
        sha = previous.landmarker_sha256 if previous else (MODEL_SHA256 if explicit is None else None)
    return AlignmentSettings(size=size, margin=margin, border_mode=border_mode, landmarker_sha256=sha)


# --------------------------------------------------------------------------------------------- the run


def prepare(src: str | os.PathLike, dst: str | os.PathLike, *, pair_pattern: Sequence[str] | None = None,
            size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN, border_mode: str = "reflect",
            min_face_size: float = DEFAULT_MIN_FACE_SIZE, max_pixels: int = DEFAULT_MAX_PIXELS,
            landmarker: str | os.PathLike | None = None, workers: int | None = None, force: bool = False,
            progress: str = "auto") -> dict:
    """Align every pair of ``src`` into ``dst``; returns the report (also written to ``dst``)."""
    started = time.monotonic()
    discovery = discover_pairs(src, pair_pattern)
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    old = {} if force else read_manifest(dst)
    records: dict[tuple[str, str], dict] = {}
    todo: list[PairTask] = []
    for task in discovery.pairs:
        keys = [(side, task.stem) for side in SIDES]
        done = all(k in old and old[k].get("source") == src_path and old[k].get("size") == size
                   and old[k].get("margin") == margin
                   and old[k].get("border_mode") == border_mode and output_path(dst, k[0], k[1]).is_file()
                   for k, src_path in zip(keys, task.sources))
        if done:
            records.update((k, old[k]) for k in keys)
        else:
            todo.append(task)
    existing = len(discovery.pairs) - len(todo)
    # Resolve the model once here: a missing model fails before any work starts, and workers never race
    # each other to download it. Nothing to align (all done, or no pair at all) needs no model.
    from reface_tf.faces.landmarks import resolve_landmarker_model

    model = str(resolve_landmarker_model(landmarker)) if todo else (str(landmarker) if landmarker else None)
    opts = Options(dst=str(dst), size=size, margin=margin, border_mode=border_mode, min_face_size=min_face_size,
                   max_pixels=max_pixels, landmarker=model)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    log.info("%d pairs found, %d already aligned, %d to do on %d worker(s)%s", len(discovery.pairs), existing,
             len(todo), workers, f"; {len(discovery.problems)} file(s) left out" if discovery.problems else "")
    for problem in discovery.problems[:_NAMED_IN_LOG]:
        log.warning("left out %s: %s", problem["file"], problem["reason"])
    if len(discovery.problems) > _NAMED_IN_LOG:
        log.warning("... and %d more files left out, each named in %s", len(discovery.problems) - _NAMED_IN_LOG,
                    dst / REPORT_MD)

    problems = list(discovery.problems)
    aligned = 0
    interrupted = False
    bar = CountProgress(len(todo), progress, unit="pair", verb="aligned", logger=log)
    outcomes = iter(()) if not todo else _run_inline(todo, opts) if workers == 1 else _run_pool(todo, opts, workers)
    flushed = time.monotonic()
    try:
        for outcome in outcomes:
            for record in outcome["records"]:
                records[(record["side"], record["stem"])] = record
            for problem in outcome["problems"]:  # one line per file, its partner's included
                records.pop((problem["side"], problem["stem"]), None)
                reason = problem["reason"]
                log.warning("skipped pair %s: %s", problem["stem"],
                            reason if reason.startswith(problem["file"]) else f"{problem['file']}: {reason}")
            problems.extend(outcome["problems"])
            aligned += bool(outcome["records"])
            bar.update()
            if time.monotonic() - flushed > _FLUSH_EVERY_S:
                # A long run killed outright (no chance to clean up) then loses at most this much work.
                write_manifest(dst, records)
                flushed = time.monotonic()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if hasattr(outcomes, "close"):
            outcomes.close()  # stops the workers now, not whenever the generator is collected
        bar.close()
        # Written even when interrupted, so the next run knows which pairs are complete.
        write_manifest(dst, records)
        flagged = [{"stem": r["stem"], "side": r["side"], "file": r["source"], "warnings": r["warnings"]}
                   for r in sorted(records.values(), key=lambda r: (r["stem"], r["side"])) if r.get("warnings")]
        report = build_report(str(src), str(dst), opts, len(discovery.pairs), aligned, existing, problems, flagged,
                              time.monotonic() - started, interrupted)
        write_text_atomic(dst / REPORT_JSON, json.dumps(report, indent=2) + "\n")
        write_text_atomic(dst / REPORT_MD, report_markdown(report))
        write_alignment(dst, dataset_alignment(dst, size, margin, border_mode, model, landmarker))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reface_tf.faces.prepare",
        description="Align raw before/after photo pairs into a training dataset (A/, B/, manifest, report).",
    )
    parser.add_argument("--src", required=True, help="raw pairs: a folder with A/ and B/, or one folder with --pair-pattern")
    parser.add_argument("--dst", required=True,
                        help="output folder (created); gets A/, B/, manifest.jsonl, alignment.json, report.json/.md")
    parser.add_argument("--pair-pattern", nargs=2, metavar=("A_PATTERN", "B_PATTERN"),
                        help="one-folder naming rule on file stems, e.g. '*_pre' '*_post' ('*' is the pair name)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="aligned image side in pixels (default %(default)s)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help="border around the face as a fraction of --size, in [0, 0.5) (default %(default)s)")
    parser.add_argument("--border-mode", choices=sorted(BORDER_MODES), default="reflect",
                        help="how pixels outside the photo are filled (default %(default)s)")
    parser.add_argument("--min-face-size", type=float, default=DEFAULT_MIN_FACE_SIZE,
                        help="flag faces smaller than this many pixels in the original (default %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refuse images with more pixels than this (default %(default)s)")
    parser.add_argument("--landmarker", metavar="PATH", help="face_landmarker.task to use instead of the cached one")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--force", action="store_true", help="redo pairs already aligned in --dst")
    parser.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                        help="progress bar on a terminal, log lines otherwise (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.size < 16:
        raise DataError(f"--size {args.size}: must be at least 16")
    if not 0.0 <= args.margin < 0.5:
        raise DataError(f"--margin {args.margin}: must be in [0, 0.5)")
    if args.workers is not None and args.workers < 1:
        raise DataError(f"--workers {args.workers}: must be at least 1")
    if args.max_pixels < 1:
        raise DataError(f"--max-pixels {args.max_pixels}: must be positive")
    report = prepare(args.src, args.dst, pair_pattern=args.pair_pattern, size=args.size, margin=args.margin,
                     border_mode=args.border_mode, min_face_size=args.min_face_size, max_pixels=args.max_pixels,
                     landmarker=args.landmarker, workers=args.workers, force=args.force, progress=args.progress)
    counts = report["counts"]
    log.info("done: %d pairs aligned, %d already done, %d skipped, %d files unpaired, %d not read, %d images flagged; see %s",
             counts["pairs_aligned"], counts["pairs_already_done"], counts["pairs_skipped"], counts["files_unpaired"],
             counts["files_not_read"],
             counts["images_flagged"], Path(args.dst) / REPORT_MD)
    if not counts["pairs_aligned"] and not counts["pairs_already_done"]:  # nothing could be processed
        if counts["pairs_found"]:
            log.error("no pair could be aligned; see %s for the reasons", Path(args.dst) / REPORT_MD)
        else:
            log.error("no photo pair to align: all %d file(s) left out (unpaired or not read), each named in %s",
                      len(report["skipped"]), Path(args.dst) / REPORT_MD)
        return 1
    return 0


if __name__ == "__main__":
    from reface_tf.cli import run_cli

    sys.exit(run_cli(main))
