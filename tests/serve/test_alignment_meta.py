"""An export records how its training data was aligned and where it came from; predict aligns with that record."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import reface_tf
from reface_tf.cli import run_cli
from reface_tf.data.pairs import splits_fingerprint
from reface_tf.faces.align import TEMPLATE_ID, stable_points, template_points, transform_points
from reface_tf.faces.alignment_settings import ALIGNMENT_FILE, AlignmentSettings, write_alignment
from reface_tf.registry import sha256_of
from reface_tf.serve.export import META_FILE, export_saved_model, load_exported
from tests.faces.conftest import FakeLandmarker
from tests.faces.test_align import textured

RUN_FILES = ("config.yaml", "splits.json", "checkpoints")


def _copy_run(src, dst):
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory):
    """A stand-in face_landmarker.task: only its digest matters here."""
    path = tmp_path_factory.mktemp("landmarker") / "face_landmarker.task"
    path.write_bytes(b"stand-in landmarker bundle")
    return path


@pytest.fixture(scope="module")
def settings(fake_model):
    return AlignmentSettings(size=64, margin=0.15, border_mode="constant", landmarker_sha256=sha256_of(fake_model))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_run, settings):
    """Two copies of the tiny run with alignment.json: ``same`` on its split, ``other`` on another split."""
    base = tmp_path_factory.mktemp("aligned_runs")
    same = _copy_run(trained_run, base / "same")
    write_alignment(same, settings)
    other = _copy_run(same, base / "other")
    (other / ALIGNMENT_FILE).write_text((same / ALIGNMENT_FILE).read_text())
    split = json.loads((other / "splits.json").read_text())
    split["train"].append(split["test"].pop())  # one pair moves from test to train
    (other / "splits.json").write_text(json.dumps(split, indent=1))
    return same, other


def _export(run_dir, base, **kwargs):
    from reface_tf.tasks.pix2pix.task import load_generator

    generator, cfg, ckpt = load_generator(run_dir)
    return export_saved_model(generator, cfg, base, checkpoint=ckpt, **kwargs)


EXTRA = {"task": "pix2pix", "input_domain": "photo", "simulated": True, "class_names": None,
         "signatures": ["serving_default", "image_bytes", "float_tensor"]}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, runs):
    """(two exports of ``same``, one export of ``other``) as version folders."""
    same, other = runs
    base = tmp_path_factory.mktemp("exports")
    first = _export(same, base / "same", extra_meta=EXTRA)
    second = _export(same, base / "same")
    return first, second, _export(other, base / "other")


def test_export_carries_the_runs_alignment(exports, settings):
    first, _, _ = exports
    meta = json.loads((first / META_FILE).read_text())
    assert meta["alignment"] == settings.to_dict()
    model = load_exported(first)
    assert model.alignment == settings and model.meta == meta
    assert model.translate_uint8(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 64, 64, 3)


def test_export_provenance_names_code_versions_and_split(exports, runs):
    first, second, other = exports
    meta = [json.loads((v / META_FILE).read_text())["provenance"] for v in exports]
    for record in meta:
        assert {k: record[k] for k in ("reface_tf", "tensorflow", "keras", "numpy", "python")} == {
            "reface_tf": reface_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}
        assert "git_commit" in record and "git_dirty" in record
    from reface_tf.provenance import SOURCE_ROOT

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=SOURCE_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = None  # not a checkout: the export says so with null
    assert meta[0]["git_commit"] == head and (head is None) == (meta[0]["git_dirty"] is None)
    assert meta[0]["dataset_fingerprint"] == meta[1]["dataset_fingerprint"] == splits_fingerprint(runs[0])
    assert len(meta[0]["dataset_fingerprint"]) == 64
    assert meta[2]["dataset_fingerprint"] != meta[0]["dataset_fingerprint"]


def test_fingerprint_ignores_where_the_dataset_lies(runs, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    split = json.loads((runs[0] / "splits.json").read_text())
    split["dataset"] = split["base"] = "/somewhere/else"
    split["train"].reverse()
    (moved / "splits.json").write_text(json.dumps(split))
    assert splits_fingerprint(moved) == splits_fingerprint(runs[0])
    assert splits_fingerprint(tmp_path) is None


def test_extra_meta_is_merged_and_may_not_replace_what_loading_needs(exports, runs, tmp_path):
    meta = json.loads((exports[0] / META_FILE).read_text())
    assert {k: meta[k] for k in EXTRA} == EXTRA
    assert meta["format"] == "reface-tf/generator-savedmodel/1" and meta["image_size"] == 64
    assert "task" not in json.loads((exports[1] / META_FILE).read_text())
    with pytest.raises(ValueError, match="format"):
        _export(runs[0], tmp_path / "x", extra_meta={"format": "mine"})
    with pytest.raises(TypeError):
        _export(runs[0], tmp_path / "x", extra_meta={"task": object()})
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_run_without_alignment_exports_null(exported, trained_run):
    meta = json.loads((exported[0] / META_FILE).read_text())
    assert meta["alignment"] is None and load_exported(exported[0]).alignment is None
    assert meta["provenance"]["dataset_fingerprint"] == splits_fingerprint(trained_run)


def _legacy_copy(version_dir, dst):
    """The export as it was written before alignment and provenance were recorded."""
    shutil.copytree(version_dir, dst)
    meta = json.loads((dst / META_FILE).read_text())
    for key in ("alignment", "provenance", *EXTRA):
        meta.pop(key, None)
    (dst / META_FILE).write_text(json.dumps(meta, indent=2))
    return dst


def test_an_export_written_before_these_keys_still_loads(exports, tmp_path):
    legacy = load_exported(_legacy_copy(exports[0], tmp_path / "legacy" / "1"))
    assert legacy.alignment is None and "provenance" not in legacy.meta
    assert legacy.translate_uint8(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2, 64, 64, 3)


def test_a_malformed_alignment_in_an_export_is_one_line(exports, tmp_path, capsys):
    from reface_tf.commands.predict import predict_main

    broken = tmp_path / "broken" / "1"
    shutil.copytree(exports[0], broken)
    meta = json.loads((broken / META_FILE).read_text())
    meta["alignment"]["margin"] = "wide"
    (broken / META_FILE).write_text(json.dumps(meta))
    photo = tmp_path / "p.png"
    Image.fromarray(textured(64, 64)).save(photo)
    assert run_cli(predict_main, [str(photo), "--model", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(broken / META_FILE) in err and "margin 'wide'" in err


# -------------------------------------------------------------------------------------------------- predict


@pytest.fixture
def predict_env(monkeypatch, tmp_path, fake_model):
    """A photo, a stand-in landmarker and a spy on the alignment predict performs."""
    import reface_tf.faces.landmarks as landmarks
    import reface_tf.serve.predict as predict_module

    monkeypatch.setattr(FakeLandmarker, "model_path", fake_model)
    monkeypatch.setattr(landmarks, "FaceLandmarker", FakeLandmarker)
    calls = []
    real = predict_module.align_face

    def spy(rgb, lm, **kwargs):
        calls.append(kwargs)
        return real(rgb, lm, **kwargs)

    monkeypatch.setattr(predict_module, "align_face", spy)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(textured(240, 260)).save(photos / "me.png")
    return photos, calls


def _predict(photos, *argv):
    from reface_tf.commands.predict import predict_main

    return run_cli(predict_main, [str(photos), "--out", str(photos.parent / "out"), *map(str, argv)])


def test_predict_aligns_with_the_exports_recorded_settings(exports, predict_env, capsys, caplog):
    photos, calls = predict_env
    caplog.set_level(logging.WARNING)
    assert _predict(photos, "--model", exports[0]) == 0
    assert calls == [{"size": 64, "margin": 0.15, "border_mode": "constant"}]
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("alignment: "))
    assert "margin 0.15" in line and "border constant" in line and TEMPLATE_ID in line
    assert str(exports[0] / META_FILE) in line
    assert not caplog.records  # recorded settings and the same landmarker: nothing to warn about
    assert (photos.parent / "out" / "me_after.png").is_file()


def test_margin_overrides_the_recorded_one_with_a_warning(exports, predict_env, capsys, caplog):
    photos, calls = predict_env
    caplog.set_level(logging.WARNING)
    assert _predict(photos, "--model", exports[0], "--margin", "0.25") == 0
    assert calls == [{"size": 64, "margin": 0.25, "border_mode": "constant"}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "--margin 0.25" in warnings[0] and "0.15" in warnings[0]
    assert "--margin 0.25 instead of the recorded 0.15" in capsys.readouterr().out

    caplog.clear()
    assert _predict(photos, "--model", exports[0], "--margin", "0.15") == 0  # the same margin: no warning
    assert calls[-1]["margin"] == 0.15 and not caplog.records


def test_predict_from_a_run_dir_reads_its_alignment_json(runs, predict_env, capsys):
    photos, calls = predict_env
    assert _predict(photos, "--run-dir", runs[0]) == 0
    assert calls == [{"size": 64, "margin": 0.15, "border_mode": "constant"}]
    assert str(runs[0] / ALIGNMENT_FILE) in capsys.readouterr().out


def test_without_a_record_predict_behaves_as_before(exports, predict_env, tmp_path, capsys):
    photos, calls = predict_env
    legacy = _legacy_copy(exports[0], tmp_path / "legacy" / "1")
    assert _predict(photos, "--model", legacy) == 0
    assert _predict(photos, "--model", legacy, "--margin", "0.1") == 0
    assert calls == [{"size": 64, "margin": 0.2, "border_mode": "reflect"},
                     {"size": 64, "margin": 0.1, "border_mode": "reflect"}]
    assert "no alignment recorded in" in capsys.readouterr().out


def test_a_malformed_run_alignment_is_one_line_naming_the_file(runs, predict_env, tmp_path, capsys):
    photos, calls = predict_env
    broken = _copy_run(runs[0], tmp_path / "broken")
    (broken / ALIGNMENT_FILE).write_text('{"format": "reface-tf/alignment/1", "size": 64')
    assert _predict(photos, "--run-dir", broken) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {broken / ALIGNMENT_FILE}: malformed")
    assert not calls


def test_other_landmarker_or_template_is_warned_about(settings, caplog):
    from reface_tf.serve.predict import prediction_alignment

    caplog.set_level(logging.WARNING)
    used, line = prediction_alignment(settings, "x/alignment.json", 64, landmarker_sha256="0" * 64)
    assert used == settings and "recorded in x/alignment.json" in line
    assert "landmarker" in caplog.text
    caplog.clear()
    old = AlignmentSettings(size=64, template="face-mesh-5pt-000000000000")
    used, _ = prediction_alignment(old, "x/alignment.json", 64)
    assert used.template == TEMPLATE_ID and "face-mesh-5pt-000000000000" in caplog.text


def test_a_recorded_size_other_than_the_models_is_aligned_then_resized(monkeypatch):
    """Data prepared at 128 for a 64 px model: aligned at 128 like the dataset, then resized as training does."""
    import reface_tf.serve.predict as predict_module

    seen, inputs = [], []
    real = predict_module.align_face
    monkeypatch.setattr(predict_module, "align_face", lambda rgb, lm, **kw: seen.append(kw) or real(rgb, lm, **kw))
    rgb = textured(240, 260)

    def translate(x):
        inputs.append(x.shape)
        return 255 - x

    recorded = AlignmentSettings(size=128, margin=0.2, border_mode="replicate")
    sim = predict_module.simulate_photo(rgb, translate, 64, FakeLandmarker(), alignment=recorded)
    assert seen == [{"size": 128, "margin": 0.2, "border_mode": "replicate"}] and inputs == [(1, 64, 64, 3)]
    assert sim.after.shape == rgb.shape and sim.aligned.shape == (64, 64, 3) and (sim.alpha > 0).any()
    # The resized frame is the 128 px template halved, pixel centres kept: x -> (x + 0.5) / 2 - 0.5.
    aligned = real(rgb, FakeLandmarker().landmarks, size=128, margin=0.2, border_mode="replicate")
    small = predict_module._at_model_size(aligned, 64)
    np.testing.assert_allclose(transform_points(FakeLandmarker().landmarks, small.matrix), small.landmarks, atol=1e-3)
    expected = (np.array(list(template_points(128, 0.2).values())) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(stable_points(small.landmarks), expected, atol=0.05)


def test_recorded_settings_at_the_model_size_give_todays_result():
    from reface_tf.serve.predict import simulate_photo

    rgb = textured(240, 260)
    before = simulate_photo(rgb, lambda x: 255 - x, 64, FakeLandmarker(), 0.2)
    recorded = simulate_photo(rgb, lambda x: 255 - x, 64, FakeLandmarker(), alignment=AlignmentSettings(size=64))
    np.testing.assert_array_equal(before.after, recorded.after)
