"""The prepare CLI end to end on a raw folder holding real faces and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.data.images import load_rgb
from reface_tf.faces.prepare import discover_pairs, main

# Nearly every test here runs the landmarker, whose model comes from the package registry on a cold cache.
pytestmark = pytest.mark.network

MAX_PIXELS = 3_000_000  # the mountain photo (2.1 MP) passes, the 3.2 MP "huge" photo does not


def _save(path: Path, rgb: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kwargs)
    return path


def _resized(rgb: np.ndarray, width: int) -> np.ndarray:
    img = Image.fromarray(rgb)
    return np.asarray(img.resize((width, round(img.height * width / img.width)), Image.LANCZOS))


@pytest.fixture(scope="module")
def raw(tmp_path_factory, single_face_path, multi_face_path, no_face_path, astronaut, grace_hopper):
    """RAW/A and RAW/B: 8 good pairs (several decoder paths), 6 bad pairs (one per failure) and an orphan."""
    root = tmp_path_factory.mktemp("raw")
    a, b = root / "A", root / "B"
    single = load_rgb(single_face_path)
    hopper_jpg = lambda side, stem: _save(side / f"{stem}.jpg", grace_hopper, quality=92)  # noqa: E731

    # Good pairs.
    _save(a / "hopper.jpg", grace_hopper, quality=92)
    _save(b / "hopper.png", astronaut)
    _save(a / "gray.jpg", np.asarray(Image.fromarray(single).convert("L")), quality=92)  # grayscale input
    hopper_jpg(b, "gray")
    Image.fromarray(single).convert("CMYK").save(a / "cmyk.jpg", quality=92)  # CMYK JPEG
    hopper_jpg(b, "cmyk")
    gray16 = (np.asarray(Image.fromarray(grace_hopper).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(a / "deep.png")  # 16-bit grayscale PNG
    rgba = Image.fromarray(astronaut).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(512)[None, :] < 16, 0, 255).astype(np.uint8).repeat(512, 0)))
    rgba.convert("P", palette=Image.ADAPTIVE).save(b / "deep.png", transparency=0)  # palette PNG with alpha
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": store the pixels turned the other way
    Image.fromarray(np.rot90(single, 1).copy()).save(a / "exif.jpg", quality=92, exif=exif)
    hopper_jpg(b, "exif")
    _save(a / "multi.jpg", load_rgb(multi_face_path), quality=92)  # several faces: largest + warning
    hopper_jpg(b, "multi")
    _save(a / "tiny.png", _resized(grace_hopper, 110))  # face well under --min-face-size: flagged
    hopper_jpg(b, "tiny")
    _save(a / "flat.jpg", single, quality=92)
    _save(b / "flat.jpg", single[:, ::-1].copy(), quality=92)

    # Bad pairs: the bad file on one side, a good photo on the other.
    _save(a / "noface.jpg", load_rgb(no_face_path), quality=90)
    hopper_jpg(b, "noface")
    hopper_jpg(a, "zero")
    (b / "zero.jpg").write_bytes(b"")
    hopper_jpg(a, "text")
    (b / "text.jpg").write_text("this is a note, not a photo\n")
    full = (a / "hopper.jpg").read_bytes()
    (a / "truncated.jpg").write_bytes(full[: len(full) // 3])
    hopper_jpg(b, "truncated")
    frames = [Image.fromarray(np.full((64, 64, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(a / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    hopper_jpg(b, "animated")
    _save(a / "huge.png", np.zeros((1600, 2000, 3), np.uint8))  # 3.2 MP > MAX_PIXELS
    hopper_jpg(b, "huge")

    hopper_jpg(a, "orphan")  # no B partner
    return root


GOOD = {"hopper", "gray", "cmyk", "deep", "exif", "multi", "tiny", "flat"}
BAD = {  # pair → (reason kind, phrase of the reason)
    "noface": ("no face", "no face found"),
    "zero": ("unreadable", "zero-byte"),
    "text": ("unreadable", "not an image"),
    "truncated": ("unreadable", "corrupt or truncated"),
    "animated": ("unreadable", "animated"),
    "huge": ("unreadable", "MP limit"),
}


def _run(*argv) -> int:
    return run_cli(main, [*map(str, argv), "--progress", "none"])


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("aligned")
    code = _run("--src", raw, "--dst", out, "--workers", 2, "--max-pixels", MAX_PIXELS, "--size", 128)
    return out, code


def test_good_pairs_aligned_on_both_sides(prepared):
    out, code = prepared
    assert code == 0
    for side in "AB":
        names = {p.stem for p in (out / side).glob("*.png")}
        assert names == GOOD, side
        for path in (out / side).glob("*.png"):
            with Image.open(path) as img:
                assert img.size == (128, 128) and img.mode == "RGB"


def test_report_names_each_bad_file_with_its_reason(prepared, raw):
    out, _ = prepared
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_found"] == len(GOOD) + len(BAD)
    assert report["counts"]["pairs_aligned"] == len(GOOD)
    assert report["counts"]["pairs_skipped"] == len(BAD)
    assert report["counts"]["files_unpaired"] == 1
    by_stem = {}
    for problem in report["skipped"]:
        if problem["kind"] != "partner failed":
            by_stem[problem["stem"]] = problem
    assert set(by_stem) == set(BAD) | {"orphan"}
    for stem, (kind, phrase) in BAD.items():
        assert by_stem[stem]["kind"] == kind, stem
        assert phrase in by_stem[stem]["reason"], (stem, by_stem[stem]["reason"])
        assert Path(by_stem[stem]["file"]).stem == stem
    assert by_stem["orphan"]["kind"] == "unpaired"
    assert report["skipped_by_reason"] == {"no face": 1, "unpaired": 1, "unreadable": 5}
    markdown = (out / "report.md").read_text()
    for stem in BAD:
        assert f"| {stem} |" in markdown


def test_bad_pairs_leave_no_file_and_no_temp_file(prepared):
    out, _ = prepared
    for stem in BAD:
        assert not (out / "A" / f"{stem}.png").exists() and not (out / "B" / f"{stem}.png").exists()
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_manifest_lists_every_aligned_image_with_its_transform(prepared, raw):
    out, _ = prepared
    lines = (out / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {(r["side"], r["stem"]) for r in records} == {(s, g) for s in "AB" for g in GOOD}
    for r in records:
        assert Path(r["source"]).parent == raw / r["side"]
        assert np.asarray(r["landmarks"]).shape == (478, 2)
        matrix = np.asarray(r["matrix"])
        assert matrix.shape == (2, 3)
        # A similarity: the 2x2 block is scale x rotation (equal diagonals, opposite off-diagonals).
        assert matrix[0, 0] == pytest.approx(matrix[1, 1], abs=1e-5)
        assert matrix[0, 1] == pytest.approx(-matrix[1, 0], abs=1e-5)
        assert r["face_size"] > 0 and isinstance(r["warnings"], list)
    by_key = {(r["side"], r["stem"]): r for r in records}
    assert any("faces found; used the largest" in w for w in by_key[("A", "multi")]["warnings"])
    assert any("small face" in w for w in by_key[("A", "tiny")]["warnings"])
    assert by_key[("A", "hopper")]["warnings"] == []
    report = json.loads((out / "report.json").read_text())
    assert {(f["side"], f["stem"]) for f in report["flagged"]} >= {("A", "multi"), ("A", "tiny")}


def test_exif_rotated_photo_is_aligned_upright(prepared):
    out, _ = prepared
    record = next(json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()
                  if '"stem":"exif"' in l and '"side":"A"' in l)
    flat = next(json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()
                if '"stem":"flat"' in l and '"side":"A"' in l)
    # The same photo stored turned and tagged: after EXIF the transform is that of the plain photo.
    np.testing.assert_allclose(record["matrix"], flat["matrix"], atol=0.5)  # JPEG re-encoding moves points slightly
    assert record["source_hw"] == flat["source_hw"]


def test_alignment_settings_are_recorded_once_for_the_dataset(prepared):
    from reface_tf.faces.alignment_settings import AlignmentSettings, read_alignment
    from reface_tf.faces.landmarks import MODEL_SHA256

    out, _ = prepared
    assert read_alignment(out) == AlignmentSettings(size=128, margin=0.2, border_mode="reflect",
                                                    landmarker_sha256=MODEL_SHA256)


def test_rerun_is_incremental_and_force_redoes(prepared, raw):
    out, _ = prepared
    before = {p: p.stat().st_mtime_ns for p in (out / "A").glob("*.png")}
    assert _run("--src", raw, "--dst", out, "--workers", 1, "--max-pixels", MAX_PIXELS, "--size", 128) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_already_done"] == len(GOOD)
    assert report["counts"]["pairs_aligned"] == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "A").glob("*.png")} == before
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2 * len(GOOD)

    # A deleted output is redone on its own.
    (out / "B" / "flat.png").unlink()
    assert _run("--src", raw, "--dst", out, "--workers", 1, "--max-pixels", MAX_PIXELS, "--size", 128) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_aligned"] == 1 and (out / "B" / "flat.png").is_file()

    # Other alignment settings do not count as done; --force redoes everything.
    assert _run("--src", raw, "--dst", out, "--workers", 1, "--max-pixels", MAX_PIXELS, "--size", 128,
                "--border-mode", "constant") == 0
    assert json.loads((out / "report.json").read_text())["counts"]["pairs_aligned"] == len(GOOD)
    assert json.loads((out / "alignment.json").read_text())["border_mode"] == "constant"
    assert _run("--src", raw, "--dst", out, "--workers", 1, "--max-pixels", MAX_PIXELS, "--size", 128,
                "--border-mode", "constant", "--force") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_aligned"] == len(GOOD) and report["counts"]["pairs_already_done"] == 0


def test_pair_pattern_in_one_folder(tmp_path, grace_hopper, astronaut):
    src = tmp_path / "raw"
    _save(src / "p1_pre.jpg", grace_hopper)
    _save(src / "p1_post.png", astronaut)
    _save(src / "p2_pre.jpg", grace_hopper)
    (src / "notes.txt").write_text("not an image suffix: named in the report")
    _save(src / "portrait.tif", astronaut)  # a photo format prepare reads, but matching neither pattern
    (src / ".DS_Store").write_bytes(b"\0")
    found = discover_pairs(src, ["*_pre", "*_post"])
    assert [(p.stem, Path(p.sources[0]).name, Path(p.sources[1]).name) for p in found.pairs] == [
        ("p1", "p1_pre.jpg", "p1_post.png")]
    assert [(Path(p["file"]).name, p["kind"]) for p in found.problems] == [
        (".DS_Store", "not read"), ("notes.txt", "not read"), ("portrait.tif", "not read"), ("p2_pre.jpg", "unpaired")]
    reasons = {Path(p["file"]).name: p["reason"] for p in found.problems}
    assert reasons[".DS_Store"].startswith("hidden file") and "suffix .txt" in reasons["notes.txt"]
    assert "matches none of --pair-pattern *_pre *_post" in reasons["portrait.tif"]
    out = tmp_path / "out"
    assert _run("--src", src, "--dst", out, "--pair-pattern", "*_pre", "*_post", "--workers", 1) == 0
    assert (out / "A" / "p1.png").is_file() and (out / "B" / "p1.png").is_file()
    with Image.open(out / "A" / "p1.png") as img:
        assert img.size == (256, 256)


@pytest.mark.parametrize("layout", ["missing", "empty", "no_sides"])
def test_missing_or_empty_src_is_one_line_and_nonzero(tmp_path, capsys, layout):
    src = tmp_path / "raw"
    if layout == "empty":
        (src / "A").mkdir(parents=True)
        (src / "B").mkdir()
    elif layout == "no_sides":
        src.mkdir()
    code = _run("--src", src, "--dst", tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: --src") and str(src) in err


def test_pair_pattern_needs_one_star(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    assert _run("--src", tmp_path / "raw", "--dst", tmp_path / "out", "--pair-pattern", "pre", "*_post") == 2
    assert "exactly one '*'" in capsys.readouterr().err


def test_missing_landmarker_file_is_a_clear_error(tmp_path, capsys, grace_hopper):
    _save(tmp_path / "raw" / "A" / "x.jpg", grace_hopper)
    _save(tmp_path / "raw" / "B" / "x.jpg", grace_hopper)
    code = _run("--src", tmp_path / "raw", "--dst", tmp_path / "out", "--landmarker", tmp_path / "nope.task")
    err = capsys.readouterr().err
    assert code == 2 and "--landmarker" in err and "nope.task" in err


def test_pair_that_turns_bad_loses_its_old_outputs(tmp_path, grace_hopper, astronaut):
    src, out = tmp_path / "raw", tmp_path / "out"
    for stem in ("keep", "spoil"):
        _save(src / "A" / f"{stem}.jpg", grace_hopper)
        _save(src / "B" / f"{stem}.png", astronaut)
    assert _run("--src", src, "--dst", out, "--workers", 1) == 0
    (src / "B" / "spoil.png").write_bytes(b"")
    assert _run("--src", src, "--dst", out, "--workers", 1, "--force") == 0
    assert sorted(p.name for p in (out / "A").iterdir()) == ["keep.png"]
    assert sorted(p.name for p in (out / "B").iterdir()) == ["keep.png"]
    stems = {json.loads(line)["stem"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    assert stems == {"keep"}


def test_an_unexpected_error_skips_only_that_pair(tmp_path, monkeypatch, grace_hopper, astronaut):
    import reface_tf.faces.prepare as prepare_module

    src, out = tmp_path / "raw", tmp_path / "out"
    for stem in ("fine", "odd"):
        _save(src / "A" / f"{stem}.jpg", grace_hopper)
        _save(src / "B" / f"{stem}.png", astronaut)
    real = prepare_module.align_face

    def flaky(rgb, landmarks, **kwargs):
        if rgb.shape == astronaut.shape and flaky.calls == 1:
            raise RuntimeError("simulated fault")
        flaky.calls += rgb.shape == astronaut.shape
        return real(rgb, landmarks, **kwargs)

    flaky.calls = 0
    monkeypatch.setattr(prepare_module, "align_face", flaky)
    assert _run("--src", src, "--dst", out, "--workers", 1) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_aligned"] == 1 and report["counts"]["pairs_skipped"] == 1
    failed = [p for p in report["skipped"] if p["kind"] == "failed"]
    assert {p["stem"] for p in failed} == {"odd"} and "simulated fault" in failed[0]["reason"]
    assert not (out / "A" / "odd.png").exists() and (out / "A" / "fine.png").is_file()


def test_no_pair_aligned_exits_one(tmp_path, no_face_path):
    src = tmp_path / "raw"
    for side in "AB":
        _save(src / side / "x.jpg", load_rgb(no_face_path))
    assert _run("--src", src, "--dst", tmp_path / "out", "--workers", 1) == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["skipped_by_reason"] == {"no face": 2}


def test_written_png_is_the_aligned_image(prepared, raw, landmarker):
    from reface_tf.faces.align import align_face

    out, _ = prepared
    rgb = load_rgb(raw / "A" / "hopper.jpg")
    expected = align_face(rgb, landmarker.detect(rgb)[0].landmarks, size=128).image
    written = np.asarray(Image.open(out / "A" / "hopper.png"))
    assert written.shape == expected.shape
    # Lossless and in RGB order (a channel swap would be off by tens of levels).
    assert np.abs(written.astype(int) - expected).mean() < 0.5


def test_unusable_model_in_workers_stops_the_run_with_one_line(tmp_path, capsys, grace_hopper):
    for side in "AB":
        for stem in ("x", "y"):
            _save(tmp_path / "raw" / side / f"{stem}.jpg", grace_hopper)
    bogus = tmp_path / "face_landmarker.task"
    bogus.write_bytes(b"not a model bundle")
    code = _run("--src", tmp_path / "raw", "--dst", tmp_path / "out", "--landmarker", bogus, "--workers", 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert [line for line in err if line.startswith("error:")] == [err[-1]]
    assert "not a usable MediaPipe face landmarker bundle" in err[-1] and "--landmarker" in err[-1]
    assert not list((tmp_path / "out").glob("*/*.png"))


def test_a_failed_write_leaves_neither_side(tmp_path, grace_hopper, astronaut):
    src, out = tmp_path / "raw", tmp_path / "out"
    _save(src / "A" / "p.jpg", grace_hopper)
    _save(src / "B" / "p.png", astronaut)
    (out / "B" / "p.png").mkdir(parents=True)  # the B output cannot be written
    assert _run("--src", src, "--dst", out, "--workers", 1) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["skipped_by_reason"] == {"failed": 2}
    assert "could not write the aligned pair" in report["skipped"][0]["reason"]
    assert not (out / "A" / "p.png").exists()
    assert [p.name for p in out.rglob(".*")] == []


def test_nothing_to_pair_names_every_file_and_exits_one(tmp_path, caplog, grace_hopper):
    """No file found a partner: nothing could be processed, so the exit code is 1 (it was 0), every file is
    named in the log and the report, and the landmarker is not even needed."""
    import logging

    src = tmp_path / "raw"
    _save(src / "A" / "x.jpg", grace_hopper)
    _save(src / "B" / "y.tif", grace_hopper)
    (src / "A" / "notes.txt").write_text("x")
    caplog.set_level(logging.INFO, logger="reface_tf.faces.prepare")
    out = tmp_path / "out"
    assert _run("--src", src, "--dst", out, "--landmarker", tmp_path / "never_loaded.task") == 1
    report = json.loads((out / "report.json").read_text())
    assert {(p["side"], Path(p["file"]).name, p["kind"]) for p in report["skipped"]} == {
        ("A", "x.jpg", "unpaired"), ("B", "y.tif", "unpaired"), ("A", "notes.txt", "not read")}
    for name in ("x.jpg", "y.tif", "notes.txt"):
        assert any(name in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records), name
    assert "no photo pair to align" in caplog.text


def test_a_failed_pair_names_both_of_its_files(tmp_path, caplog, no_face_path, grace_hopper):
    """The good partner of a photo without a face is not processed either: its own log line says so."""
    import logging

    src = tmp_path / "raw"
    _save(src / "A" / "x.jpg", load_rgb(no_face_path))
    _save(src / "B" / "x.jpg", grace_hopper)
    caplog.set_level(logging.INFO, logger="reface_tf.faces.prepare")
    assert _run("--src", src, "--dst", tmp_path / "out", "--workers", 1) == 1
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped pair x: ")]
    assert any(str(src / "A" / "x.jpg") in m and "no face found" in m for m in skipped), skipped
    assert any(str(src / "B" / "x.jpg") in m and "skipped with its pair" in m for m in skipped), skipped
