"""The DCGAN task: networks, standing statistics, config defaults, and a run that trains, resumes exactly,
exports and samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reface_tf import tasks
from reface_tf.config import Config, build_parser, from_dict, validate
from reface_tf.errors import ConfigError
from reface_tf.models.dcgan import build_dcgan_discriminator, build_dcgan_generator

tasks.declare("dcgan")


@pytest.mark.parametrize("size, layers", [(32, 3), (64, 4), (128, 5)])
def test_networks_have_the_radford_shapes(size, layers):
    g = build_dcgan_generator(size, latent_dim=100, filters=8)
    d = build_dcgan_discriminator(size, filters=8)
    assert g.output_shape == (None, size, size, 3) and d.output_shape == (None, 1)
    assert sum(1 for layer in g.layers if "Conv2DTranspose" in type(layer).__name__) == layers
    assert sum(1 for layer in d.layers if type(layer).__name__ == "Conv2D") == layers + 1  # + the 4x4 logit
    image = g(tf.random.normal([2, 100]), training=False)
    assert float(tf.reduce_max(tf.abs(image))) <= 1.0  # tanh


def test_standing_statistics_make_inference_equal_to_the_batch_statistics_of_the_draws():
    from reface_tf.tasks.dcgan.task import STANDING_SEED, latent_of_seeds, standing_statistics

    g = build_dcgan_generator(32, latent_dim=16, filters=8)
    z = latent_of_seeds(tf.range(STANDING_SEED, STANDING_SEED + 64, dtype=tf.int64), 16)
    g(z, training=True)  # moving statistics move a little from their initial values, as in training
    before = g(z, training=False).numpy()
    standing_statistics(g, 16, samples=64)
    np.testing.assert_allclose(g(z, training=False).numpy(), g(z, training=True).numpy(), atol=2e-4)
    assert np.abs(before - g(z, training=False).numpy()).max() > 1e-2
    # One seed, one face: the latent depends on the seed alone, not on the batch around it.
    np.testing.assert_array_equal(latent_of_seeds(tf.constant([7], tf.int64), 16).numpy()[0],
                                  latent_of_seeds(tf.constant([1, 7], tf.int64), 16).numpy()[1])


def test_task_defaults_and_one_line_errors():
    cfg = Config.for_task("dcgan")
    assert (cfg.optim.batch_size, cfg.optim.lr_g, cfg.optim.beta1, cfg.runtime.run_dir) == (32, 2e-4, 0.5, "runs/dcgan")
    assert Config().optim.batch_size == 1  # Pix2Pix keeps its own
    assert from_dict({"task": {"name": "dcgan"}}).optim.batch_size == 32
    help_text = " ".join(build_parser(task="dcgan").format_help().split())
    assert "--diffaugment" in help_text and "--generator-depth" not in help_text and "global batch size (split across replicas) (default: 32)" in help_text
    for change, message in (({"faces": {"image_size": 48}}, r"^--image-size \(faces.image_size\): 48 is not one of"),
                            ({"dcgan": {"diffaugment": "color,zoom"}}, r"^--diffaugment \(dcgan.diffaugment\): unknown policy 'zoom'"),
                            ({"dcgan": {"label_smoothing": 0.7}}, r"^--label-smoothing")):
        with pytest.raises(ConfigError, match=message):
            validate(cfg.replace(**change), check_paths=False)


def _face_folder(root, count=20, size=40):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        blob = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2)[..., None]
        colour = rng.integers(60, 230, 3)
        Image.fromarray(np.where(blob, colour, 255 - colour).astype(np.uint8)).save(root / f"face{i:02d}.png")
    return root


def _config(run_dir, data, epochs):
    cfg = Config.for_task("dcgan")
    cfg.faces.root, cfg.faces.image_size = str(data), 32
    cfg.dcgan.latent_dim, cfg.dcgan.generator_filters, cfg.dcgan.discriminator_filters = 8, 8, 8
    cfg.dcgan.metric_embedder, cfg.dcgan.standing_samples, cfg.dcgan.grid_seeds = "none", 32, 4
    cfg.optim.epochs, cfg.optim.batch_size = epochs, 4
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.image_every = str(run_dir), "none", 3
    return cfg


def _weights(run_dir):
    return {name: [w.numpy() for w in net.weights] for name, net in tasks.load_run(run_dir).networks.items()}


@pytest.mark.slow
def test_dcgan_trains_resumes_exactly_exports_and_samples(tmp_path):
    from reface_tf.commands.sample import sample_main
    from reface_tf.serve.export import read_meta

    (tmp_path / "faces").mkdir()
    data = _face_folder(tmp_path / "faces")
    straight = tmp_path / "straight"
    result = tasks.train(_config(straight, data, 3))
    assert result.epochs_done == 3 and result.steps_done == 3 * 4  # 16 training images // batch 4
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss/g_total"]) and np.isfinite(r["loss/d_total"]) for r in rows)
    assert (straight / "samples" / "interpolation.png").is_file() and (straight / "loss_curves.png").is_file()
    split = json.loads((straight / "splits.json").read_text())
    assert len(split["train"]) == 16 and len(split["held_out"]) == 4

    resumed = tmp_path / "resumed"
    tasks.train(_config(resumed, data, 2))
    tasks.train(_config(resumed, data, 3))
    final, again = _weights(straight), _weights(resumed)
    for name in final:
        for a, b in zip(final[name], again[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)

    version, summary = tasks.get_task("dcgan").export(straight, None, tmp_path / "export")
    meta, _ = read_meta(version)
    assert meta["task"] == "dcgan" and meta["resolution"] == 32 and "image_size" not in meta
    assert meta["signatures"] == ["serving_default", "generate", "generate_from_latent", "latent"]
    served = tf.saved_model.load(str(version))
    one = served.signatures["generate"](seeds=tf.constant([5], tf.int64))["images"].numpy()
    many = served.signatures["generate"](seeds=tf.constant([2, 5, 9], tf.int64))["images"].numpy()
    assert one.dtype == np.uint8 and one.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(one[0], many[1])  # one seed, one face, whatever the batch
    z = served.signatures["latent"](seeds=tf.constant([5], tf.int64))["z"]
    np.testing.assert_array_equal(served.signatures["generate_from_latent"](z=z)["images"].numpy(), one)

    assert sample_main(["--model", str(tmp_path / "export"), "--seeds", "5,9", "--out", str(tmp_path / "drawn")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "drawn" / "seed0005.png")), one[0])
    assert sample_main(["--model", str(version), "--interpolate", "2", "5", "--steps", "4",
                        "--out", str(tmp_path / "strip.png")]) == 0
    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    assert strip.shape == (32, 4 * 32, 3)
    np.testing.assert_array_equal(strip[:, -32:], one[0])  # the strip ends at seed 5's face
    with pytest.raises(ConfigError, match="a dcgan run exports an fp32 SavedModel only"):
        tasks.get_task("dcgan").export(straight, None, tmp_path / "export", tflite=True)
