"""The StyleGAN2-ADA task: config defaults, a run that trains, resumes exactly (ADA p, EMA weights, optimiser
state) and exports a generator that matches the EMA network; mixed precision stays finite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reface_tf import tasks
from reface_tf.config import Config, validate
from reface_tf.errors import ConfigError

tasks.declare("stylegan2")


def labelled_folder(root, count=12, size=32):
    """Two classes of flat colour faces: dark ones and bright ones."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["path,class"]
    rng = np.random.default_rng(0)
    for i in range(count):
        cls = i % 2
        image = np.clip(rng.normal(60 + 120 * cls, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / f"face{i:02d}.png")
        rows.append(f"face{i:02d}.png,{'young' if cls == 0 else 'old'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "classes.json").write_text(json.dumps(["young", "old"]))
    return root


def tiny_config(data, run_dir, epochs, precision="fp32") -> Config:
    cfg = Config.for_task("stylegan2")
    cfg.faces.root = str(data)
    cfg.optim.epochs, cfg.optim.batch_size, cfg.optim.steps_per_epoch = epochs, 4, 2
    s = cfg.stylegan2
    s.channel_base, s.channel_max, s.z_dim, s.w_dim, s.grid_seeds = 128, 16, 8, 8, 2
    s.r1_every, s.ada_interval, s.ada_kimg, s.ada_p = 2, 1, 0.05, 0.5  # p moves 0.08 a step: resume must carry it
    s.metric_embedder = "none"
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.log_every, cfg.runtime.image_every = str(run_dir), "none", 1, 100
    cfg.runtime.precision = precision
    return cfg


def test_defaults_follow_the_reference_auto_config():
    cfg = Config.for_task("stylegan2")
    assert (cfg.optim.lr_g, cfg.optim.beta1, cfg.optim.beta2, cfg.stylegan2.mapping_layers, cfg.stylegan2.ada_target) == (
        0.0025, 0.0, 0.99, 2, 0.6)
    with pytest.raises(ConfigError, match=r"^--image-size \(faces.image_size\): 48"):
        validate(cfg.replace(faces={"image_size": 48}), check_paths=False)
    with pytest.raises(ConfigError, match=r"^--accumulate \(optim.accumulate\): 2: stylegan2 updates the ADA"):
        validate(cfg.replace(optim={"accumulate": 2}), check_paths=False)


@pytest.mark.slow
def test_trains_resumes_exactly_and_exports(tmp_path):
    data = labelled_folder(tmp_path / "faces", count=16)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    tasks.train(tiny_config(data, straight, 3))
    tasks.train(tiny_config(data, resumed, 2))
    result = tasks.train(tiny_config(data, resumed, 3))
    assert result.steps_done == 6
    split = json.loads((straight / "splits.json").read_text())
    train_files, held_files = {p for p, _ in split["train"]}, {p for p, _ in split["held_out"]}
    assert len(held_files) == 3 and len(train_files) == 13 and not train_files & held_files  # 20% of 16, disjoint
    assert json.loads((resumed / "splits.json").read_text())["held_out"] == split["held_out"]
    counts = json.loads((straight / "classes.json").read_text())["train_counts"]
    assert counts == [sum(c == k for _, c in split["train"]) for k in (0, 1)]
    a, b = tasks.load_run(straight), tasks.load_run(resumed)
    ada_a, ada_b = a.networks["ada"], b.networks["ada"]
    assert float(ada_a.p.numpy()) != 0.5  # the p update ran
    assert float(ada_a.p.numpy()) == float(ada_b.p.numpy()) and float(ada_a.rt.numpy()) == float(ada_b.rt.numpy())
    for name in ("generator", "generator_ema", "discriminator", "ada"):
        for x, y in zip(a.networks[name].variables, b.networks[name].variables):
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"{name} {x.path}")
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and "ada_p" in rows[-1]
    grid = np.asarray(Image.open(straight / "samples" / "epoch_0003.png"))
    assert grid.shape[0] == 2 * 32  # one row per class

    from reface_tf.tasks.stylegan2.task import generate

    version, _ = tasks.get_task("stylegan2").export(straight, None, tmp_path / "export")
    meta = json.loads((version / "reface_meta.json").read_text())
    assert meta["num_classes"] == 2 and meta["class_names"] == ["young", "old"]
    model = tf.saved_model.load(str(version))
    seeds, classes = np.array([3, 3, 5], np.int64), np.array([0, 1, 1], np.int32)
    out = model.signatures["generate"](seeds=tf.constant(seeds), classes=tf.constant(classes),
                                       truncation=tf.constant(1.0))["images"].numpy()
    expected = generate(a.networks["generator_ema"], seeds, classes)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(out[0].astype(int) - out[1].astype(int)).mean() > 0  # the class changes the face
    w = model.signatures["mapping"](seeds=tf.constant(seeds), classes=tf.constant(classes), truncation=tf.constant(0.0))["w"]
    np.testing.assert_allclose(w.numpy()[0, 0], a.networks["generator_ema"].mapping.w_avg.numpy(), atol=1e-6)  # psi 0: w_avg

    from reface_tf.serve.source import classes_for_seeds, seed_source_from_export

    source = seed_source_from_export(version)
    assert source.class_names == ("young", "old") and meta["class_counts"] == counts
    drawn = source.generate(np.arange(6))
    by_class = generate(a.networks["generator_ema"], np.arange(6), classes_for_seeds(np.arange(6), counts))
    assert np.abs(drawn.astype(int) - by_class.astype(int)).max() <= 1
    assert np.abs(source.generate_class(seeds[:1], 1).astype(int) - expected[1:2].astype(int)).max() <= 1
    held, held_cls, train, _ = tasks.get_task("stylegan2").labelled_faces(straight)
    assert held.shape == (3, 32, 32, 3) and len(train) == 13
    assert list(held_cls) == [c for _, c in split["held_out"]]

    from reface_tf.eval.cli import main as evaluate_main

    assert evaluate_main(["--run-dir", str(straight), "--samples", "8", "--embedders", "sface", "--kid-subsets", "2",
                          "--kid-subset-size", "3", "--class-samples", "4", "--no-progress"]) == 0
    report = json.loads((straight / "eval" / "ckpt-6" / "report.json").read_text())
    assert report["generated"]["n_generated"] == 8 and report["generated"]["n_real"] == 3
    ages = report["class_ages"]
    assert [r["class"] for r in ages["classes"]] == ["young", "old"] and ages["classes"][1]["generated"]["n"] == 4
    assert [r["real"]["n"] for r in ages["classes"]] == [int(np.sum(held_cls == k)) for k in (0, 1)]


def test_seeds_draw_classes_in_proportion_to_the_training_counts_and_independently_of_each_other():
    from reface_tf.serve.source import classes_for_seeds

    seeds = np.arange(4000)
    classes = classes_for_seeds(seeds, [1, 3, 0])
    assert set(np.unique(classes)) == {0, 1}  # a class with no training images is never drawn
    assert abs(np.mean(classes == 1) - 0.75) < 0.03
    np.testing.assert_array_equal(classes_for_seeds(seeds[17:19], [1, 3, 0]), classes[17:19])  # per seed, not per batch


@pytest.mark.slow
def test_mixed_precision_training_stays_finite(tmp_path):
    data = labelled_folder(tmp_path / "faces", count=8)
    result = tasks.train(tiny_config(data, tmp_path / "run", 1, precision="mixed_bfloat16"))
    assert all(np.isfinite(v) for k, v in result.last_metrics.items() if k.startswith("loss/"))
    import keras

    keras.mixed_precision.set_global_policy("float32")
