"""alignment.json: written once per dataset by prepare and the demo builder, copied into runs, read back strictly."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.errors import DataError
from reface_tf.faces.align import TEMPLATE_ID
from reface_tf.faces.alignment_settings import (ALIGNMENT_FILE, AlignmentSettings, read_alignment,
                                                record_run_alignment, write_alignment)
from reface_tf.faces.landmarks import MODEL_SHA256
from reface_tf.registry import sha256_of
from tests.faces.conftest import FakeLandmarker
from tests.faces.test_align import textured

SETTINGS = AlignmentSettings(size=128, margin=0.15, border_mode="replicate", landmarker_sha256=MODEL_SHA256)


def test_written_settings_read_back_equal_and_leave_no_temporary_file(tmp_path):
    path = write_alignment(tmp_path, SETTINGS)
    assert path == tmp_path / ALIGNMENT_FILE
    assert read_alignment(tmp_path) == SETTINGS
    assert json.loads(path.read_text()) == {
        "format": "reface-tf/alignment/1", "template": TEMPLATE_ID, "size": 128, "margin": 0.15,
        "border_mode": "replicate", "landmarker_sha256": MODEL_SHA256}
    assert [p.name for p in tmp_path.iterdir()] == [ALIGNMENT_FILE]
    assert read_alignment(tmp_path / "elsewhere") is None  # no file: hand-made pairs


@pytest.mark.parametrize("text, phrase", [
    ("{not json", "not readable JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"format": "reface-tf/alignment/9", "template": "t", "size": 64, "margin": 0.2, "border_mode": "reflect"}',
     "format"),
    ('{"format": "reface-tf/alignment/1", "template": "t", "size": 64, "border_mode": "reflect"}', "missing margin"),
    ('{"format": "reface-tf/alignment/1", "template": "t", "size": 64, "margin": 0.7, "border_mode": "reflect"}',
     "margin 0.7"),
    ('{"format": "reface-tf/alignment/1", "template": "t", "size": "64", "margin": 0.2, "border_mode": "reflect"}',
     "size '64'"),
    ('{"format": "reface-tf/alignment/1", "template": "t", "size": 64, "margin": 0.2, "border_mode": "wrap"}',
     "border_mode 'wrap'"),
    ('{"format": "reface-tf/alignment/1", "template": "t", "size": 64, "margin": 0.2, "border_mode": "reflect", '
     '"landmarker_sha256": "abc"}', "landmarker_sha256"),
])
def test_a_malformed_file_is_one_data_error_line_naming_it(tmp_path, text, phrase):
    (tmp_path / ALIGNMENT_FILE).write_text(text)
    with pytest.raises(DataError) as info:
        read_alignment(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / ALIGNMENT_FILE)) and phrase in message


def test_record_run_alignment_copies_the_dataset_settings(tmp_path):
    dataset, run = tmp_path / "aligned", tmp_path / "run"
    write_alignment(dataset, SETTINGS)
    assert record_run_alignment(dataset, run) == SETTINGS
    assert read_alignment(run) == SETTINGS
    assert (run / ALIGNMENT_FILE).read_text() == (dataset / ALIGNMENT_FILE).read_text()

    # A CSV dataset keeps its alignment.json beside the CSV.
    (dataset / "pairs.csv").write_text("input,target\n")
    assert record_run_alignment(dataset / "pairs.csv", tmp_path / "run_csv") == SETTINGS


def test_record_run_alignment_without_settings_writes_nothing(tmp_path):
    (tmp_path / "pairs" / "A").mkdir(parents=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / ALIGNMENT_FILE).write_text("{}")  # stale: must not outlive a dataset that records nothing
    assert record_run_alignment(tmp_path / "pairs", run) is None
    assert not (run / ALIGNMENT_FILE).exists()
    assert record_run_alignment(None, run) is None


def test_record_run_alignment_refuses_a_malformed_dataset_file(tmp_path):
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / ALIGNMENT_FILE).write_text("{")
    with pytest.raises(DataError, match="alignment.json: malformed"):
        record_run_alignment(tmp_path / "pairs", tmp_path / "run")


def test_template_id_names_the_template_geometry(monkeypatch):
    from reface_tf.faces import align

    assert TEMPLATE_ID.startswith("face-mesh-5pt-") and TEMPLATE_ID == align._template_id()
    monkeypatch.setattr(align, "_UNIT_TEMPLATE", align._UNIT_TEMPLATE + 0.01)
    assert align._template_id() != TEMPLATE_ID


def test_prepare_writes_the_flags_it_aligned_with(tmp_path, monkeypatch):
    """Offline: a stand-in landmarker, and a --landmarker file whose digest is what gets recorded."""
    import reface_tf.faces.prepare as prepare_module

    monkeypatch.setattr(prepare_module, "_make_landmarker", lambda opts: FakeLandmarker())
    seen = []
    real = prepare_module.align_face
    monkeypatch.setattr(prepare_module, "align_face", lambda rgb, lm, **kw: seen.append(kw) or real(rgb, lm, **kw))
    src, out = tmp_path / "raw", tmp_path / "out"
    for side in "AB":
        (src / side).mkdir(parents=True)
        Image.fromarray(textured(300, 280, seed=ord(side))).save(src / side / "p1.png")
    model = tmp_path / "my_landmarker.task"
    model.write_bytes(b"a landmarker bundle")
    argv = ["--src", str(src), "--dst", str(out), "--size", "96", "--margin", "0.12", "--border-mode", "replicate",
            "--landmarker", str(model), "--workers", "1", "--progress", "none"]
    assert run_cli(prepare_module.main, argv) == 0
    expected = AlignmentSettings(size=96, margin=0.12, border_mode="replicate", landmarker_sha256=sha256_of(model))
    assert read_alignment(out) == expected
    assert seen == [{"size": 96, "margin": 0.12, "border_mode": "replicate"}] * 2
    assert not list(out.glob(".*"))

    # A rerun with nothing left to align loads no model and keeps the recorded digest.
    model.unlink()
    assert run_cli(prepare_module.main, argv) == 0
    assert read_alignment(out) == expected and len(seen) == 2


def test_demo_datasets_record_how_their_faces_were_aligned(tmp_path, monkeypatch):
    """The builder's own detection and alignment, on one synthetic photo with a stand-in landmarker."""
    from reface_tf import samples
    from reface_tf.faces import align, landmarks

    Image.fromarray(textured(300, 280)).save(tmp_path / "photo.png")
    monkeypatch.setattr(samples, "SOURCES", [samples.SampleSource("photo", samples.SOURCES[0].item, "photo")])
    monkeypatch.setattr(samples, "fetch_samples", lambda sources=None: {"photo": tmp_path / "photo.png"})
    monkeypatch.setattr(landmarks, "FaceLandmarker", lambda *args, **kwargs: FakeLandmarker())
    seen = []
    real = align.align_face
    monkeypatch.setattr(align, "align_face", lambda rgb, lm, **kw: seen.append(kw) or real(rgb, lm, **kw))
    samples.build_demo(tmp_path / "demo", ["sketch"], samples.DemoSettings(size=128))
    recorded = read_alignment(tmp_path / "demo" / "sketch")
    assert recorded == AlignmentSettings(size=128, margin=0.2, border_mode="reflect", landmarker_sha256=MODEL_SHA256)
    assert seen == [{"size": 128, "margin": 0.2, "border_mode": "reflect"}]
