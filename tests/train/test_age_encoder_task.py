"""The age encoder task on a tiny StyleGAN2 run: its encoder's shapes, one run that trains, resumes exactly and
exports an editor whose tensor and bytes signatures edit as the run does; evaluate.py reports the age edits."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reface_tf import tasks
from reface_tf.config import Config, validate
from reface_tf.errors import ConfigError
from reface_tf.models.inception_resnet import build_inception_resnet_encoder
from tests.train.test_stylegan2_task import labelled_folder, tiny_config

tasks.declare("age_encoder")


@pytest.mark.parametrize("size, blocks", [(32, 1), (64, 2)])
def test_encoder_maps_faces_to_one_latent_each(size, blocks):
    encoder = build_inception_resnet_encoder(size, 24, width=8, blocks=blocks, max_width=32)
    out = encoder(tf.random.uniform([3, size, size, 3], -1, 1), training=False)
    assert out.shape == (3, 24) and out.dtype == tf.float32
    assert np.isfinite(out.numpy()).all() and np.std(out.numpy(), axis=0).mean() > 0  # depends on the face
    assert encoder.output_shape == (None, 24)


def encoder_config(generator_run, run_dir, epochs) -> Config:
    cfg = Config.for_task("age_encoder")
    a = cfg.age_encoder
    a.generator_run, a.encoder_width, a.encoder_max_width = str(generator_run), 8, 16
    a.pairs_per_epoch, a.val_pairs, a.val_real, a.preview_faces = 8, 4, 3, 2
    cfg.optim.epochs, cfg.optim.batch_size = epochs, 4
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.log_every, cfg.runtime.image_every = str(run_dir), "none", 1, 100
    return cfg


def test_a_missing_generator_run_names_the_command_that_trains_one(tmp_path):
    with pytest.raises(ConfigError, match=r"^--generator-run .*config.yaml not found; pass the run directory"):
        validate(encoder_config(tmp_path / "nope", tmp_path / "enc", 1), check_paths=True)
    with pytest.raises(ConfigError, match=r"lambda"):
        cfg = encoder_config(tmp_path, tmp_path / "enc", 1)
        cfg.age_encoder.lambda_latent = cfg.age_encoder.lambda_pixel = 0.0
        validate(cfg, check_paths=False)


@pytest.mark.slow
def test_trains_resumes_exactly_exports_and_evaluates(tmp_path):
    data = labelled_folder(tmp_path / "faces", count=16)
    generator_run = tmp_path / "stylegan2"
    tasks.train(tiny_config(data, generator_run, 1))
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    tasks.train(encoder_config(generator_run, straight, 2))
    tasks.train(encoder_config(generator_run, resumed, 1))
    result = tasks.train(encoder_config(generator_run, resumed, 2))
    assert result.steps_done == 4
    assert json.loads((straight / "generator.json").read_text()) == {"run": str(generator_run), "checkpoint": 2}
    a, b = tasks.load_run(straight), tasks.load_run(resumed)
    for x, y in zip(a.networks["encoder"].variables, b.networks["encoder"].variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert {"val_latent_mse", "val_psnr", "val_real_psnr", "loss/latent_mse", "loss/pixel_l1"} <= set(rows[-1]), rows[-1]
    grid = np.asarray(Image.open(straight / "samples" / "epoch_0002.png"))
    assert grid.shape[:2] == (2 * 32, 4 * 32)  # rows: 2 held-out faces; columns: input, own class, 2 classes
    with pytest.raises(ConfigError, match=r"^--generator-checkpoint .*use a new --run-dir"):
        cfg = encoder_config(generator_run, straight, 3)
        cfg.age_encoder.generator_checkpoint = 1
        tasks.train(cfg)

    editor = tasks.get_task("age_encoder").editor(straight)
    assert editor.class_names == ("young", "old") and editor.resolution == 32
    faces = tasks.get_task("stylegan2").labelled_faces(generator_run)[0]
    expected = editor.edit(faces, np.array([0, 1, 1]))
    assert expected.shape == faces.shape and expected.dtype == np.uint8
    assert np.abs(expected[1].astype(int) - editor.edit(faces[1:2], 0)[0]).mean() > 0  # the class changes the face

    from reface_tf.serve.age_editor import age_editor_from_export

    version, _ = tasks.get_task("age_encoder").export(straight, None, tmp_path / "export")
    meta = json.loads((version / "reface_meta.json").read_text())
    assert meta["task"] == "age_encoder" and meta["class_names"] == ["young", "old"] and meta["generator"]["checkpoint"] == 2
    exported = age_editor_from_export(version)
    assert np.abs(exported.edit(faces, np.array([0, 1, 1])).astype(int) - expected).max() <= 1
    np.testing.assert_allclose(exported.encode(faces), editor.encode(faces), atol=1e-4)
    model = tf.saved_model.load(str(version))

    def edit_bytes(image: Image.Image, target: int) -> np.ndarray:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = model.signatures["edit"](image_bytes=tf.constant(buffer.getvalue()), target_class=tf.constant(target))["png"]
        return np.asarray(Image.open(io.BytesIO(png.numpy())))

    same = edit_bytes(Image.fromarray(faces[2]), 1)
    assert same.shape == (32, 32, 3) and np.abs(same.astype(int) - expected[2]).max() <= 1
    assert edit_bytes(Image.fromarray(faces[2]).resize((64, 64)), 1).shape == (32, 32, 3)  # any size: resized

    from reface_tf.serve.refine import refine_latents, render_latents

    for which in (editor, exported):  # gradients flow through the run's generator and the export's render_from_z
        refined = refine_latents(which, faces, [0, 1, 0], steps=15, lr=0.1)
        assert refined.final_l1.mean() < refined.start_l1.mean() and refined.seconds_per_image > 0
        assert render_latents(which, refined.z, 1).shape == faces.shape

    from reface_tf.eval.cli import main as evaluate_main

    assert evaluate_main(["--model", str(version), "--no-identity", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert [r["class"] for r in report["classes"]] == ["young", "old"] and report["n_faces"] == 3
    assert report["reconstruction"]["own_class"] == "recorded label of the input"
    assert (tmp_path / "eval" / "age_edits.png").is_file() and "## Age edits" in (tmp_path / "eval" / "report.md").read_text()
