import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from reface_tf.config import save_yaml
from reface_tf.errors import TrainingDiverged
from reface_tf.losses.terms import LossTerm
from reface_tf.tasks.pix2pix.task import load_generator
from reface_tf.tasks import train

ROOT = Path(__file__).resolve().parents[2]


def weights_of(run_dir):
    generator, _, _ = load_generator(run_dir)
    return generator.get_weights()


@pytest.mark.slow
def test_a_few_steps_reduce_l1_on_a_learnable_pair_set(tiny_config):
    cfg = tiny_config(optim={"epochs": 3, "steps_per_epoch": 8, "lr_g": 1e-3}, loss={"lambda_adv": 0.0},
                      model={"norm": "instance"}, data={"flip": False})
    result = train(cfg)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["loss/l1"] < 0.85 * rows[0]["loss/l1"]
    assert rows[-1]["val_l1"] < rows[0]["val_l1"]
    for key in ("val_psnr", "val_ssim", "img_per_s", "lr_g", "loss/g_adv", "loss/d_total", "d_real", "d_fake"):
        assert key in rows[-1]
    run = result.run_dir
    assert (run / "samples" / "epoch_0003.png").is_file() and (run / "loss_curves.png").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert json.loads((run / "splits.json").read_text())["test"]


@pytest.mark.slow
def test_two_epochs_straight_equal_one_epoch_restart_one_epoch(tiny_config, tmp_path):
    straight = tiny_config(runtime={"run_dir": str(tmp_path / "straight"), "checkpoint_every": 1})
    train(straight)
    resumed = straight.replace(runtime={"run_dir": str(tmp_path / "resumed")}, optim={"epochs": 1})
    train(resumed)
    result = train(resumed.replace(optim={"epochs": 2}))
    assert result.epochs_done == 2 and result.steps_done == 6
    for a, b in zip(weights_of(tmp_path / "straight"), weights_of(tmp_path / "resumed")):
        np.testing.assert_allclose(a, b, atol=1e-5)

    def tail(run):
        rows = [json.loads(l) for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith(("loss/", "val_", "lr", "d_")) or k in ("epoch", "step")} for r in rows]

    a, b = tail("straight"), tail("resumed")
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == pytest.approx(y[k], rel=1e-4, abs=1e-6), k


@pytest.mark.slow
def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tiny_config, monkeypatch):
    cfg = tiny_config(optim={"epochs": 2}, runtime={"checkpoint_every": 1})
    train(cfg.replace(optim={"epochs": 1}))
    ckpt_before = sorted(p.name for p in (Path(cfg.runtime.run_dir) / "checkpoints").iterdir())
    poisoned = LossTerm("poison", 1.0, lambda ctx: tf.fill([tf.shape(ctx.fake)[0]], float("nan")))
    monkeypatch.setattr("reface_tf.tasks.pix2pix.task.build_generator_terms", lambda c: [poisoned])
    with pytest.raises(TrainingDiverged, match=r"loss \w+ is nan at epoch 2, step 4; .*ckpt-3 is kept|ckpt-3\) is kept"):
        train(cfg)
    assert sorted(p.name for p in (Path(cfg.runtime.run_dir) / "checkpoints").iterdir()) == ckpt_before


@pytest.mark.slow
def test_perceptual_term_loads_vgg_weights_from_a_file(tiny_config, tmp_path):
    from reface_tf.losses.perceptual import build_vgg_features

    layers = ["block1_conv2", "block2_conv2"]
    import keras

    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg19.weights.h5"
    source.save_weights(str(path))
    loaded = build_vgg_features(layers, str(path))
    kernel = loaded.get_layer("block1_conv2").get_weights()[0]
    np.testing.assert_array_equal(kernel, source.get_layer("block1_conv2").get_weights()[0])
    cfg = tiny_config(loss={"lambda_perceptual": 1.0, "vgg_weights": str(path), "perceptual_layers": layers}, optim={"epochs": 1})
    row = json.loads((train(cfg).run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["loss/perceptual"] > 0


MIRRORED_SCRIPT = """
import json, sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from reface_tf.config import load_yaml
from reface_tf.tasks import train
result = train(load_yaml(sys.argv[1]))
refused = ""
if result.replicas > 1:
    from reface_tf.errors import ConfigError
    cfg = load_yaml(sys.argv[1]).replace(runtime={"jit": True, "run_dir": sys.argv[1] + ".jit"})
    try:
        train(cfg)
    except ConfigError as err:
        refused = str(err)
print("RESULT", json.dumps({"replicas": result.replicas, "steps": result.steps_done, "jit_refused": refused}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_matches_single_device(tiny_config, tmp_path):
    # dropout off: each replica draws its own masks, which is correct but not comparable to one device
    base = tiny_config(model={"norm": "instance", "dropout": 0.0}, optim={"batch_size": 2, "epochs": 1})
    outputs = {}
    for strategy in ("default", "mirrored"):
        cfg = base.replace(runtime={"strategy": strategy, "run_dir": str(tmp_path / strategy)})
        save_yaml(cfg, tmp_path / f"{strategy}.yaml")
        proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / f"{strategy}.yaml")], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.split("RESULT", 1)[1])
        assert result["replicas"] == (2 if strategy == "mirrored" else 1) and result["steps"] == 3
        assert result["jit_refused"].startswith("--jit with several CPU replicas is not supported") or strategy == "default"
        outputs[strategy] = weights_of(tmp_path / strategy)
    for a, b in zip(outputs["default"], outputs["mirrored"]):
        np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes(tiny_config, tmp_path):
    cfg = tiny_config(optim={"epochs": 200, "steps_per_epoch": None}, runtime={"checkpoint_every": 1000, "progress": "lines", "log_every": 1})
    argv = [sys.executable, "train.py", "--data", cfg.data.root, "--run-dir", cfg.runtime.run_dir, "--image-size", "64",
            "--load-size", "72", "--generator-depth", "6", "--generator-filters", "8", "--disc-filters", "8",
            "--epochs", "200", "--progress", "lines", "--log-every", "1", "--checkpoint-every", "1000"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "step 3/" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + out
    assert "checkpoint saved" in out and "Resume with: python train.py --run-dir" in out
    ckpts = list((Path(cfg.runtime.run_dir) / "checkpoints").glob("ckpt-*.index"))
    assert len(ckpts) == 1
    step = int(ckpts[0].name.split("-")[1].split(".")[0])
    assert step >= 3
    again = subprocess.run(argv[:2] + ["--run-dir", cfg.runtime.run_dir, "--epochs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from" in again.stderr and f"step {step}" in again.stderr
    assert json.loads((Path(cfg.runtime.run_dir) / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1


def run_train_cli(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "train.py", *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_run_that_failed_before_its_first_checkpoint_can_be_retried_with_other_options(tmp_path, synthetic_root):
    run = tmp_path / "run"
    bad = tmp_path / "empty"
    (bad / "A").mkdir(parents=True)
    (bad / "B").mkdir()
    first = run_train_cli("--data", str(bad), "--run-dir", str(run), "--image-size", "64", "--generator-depth", "6", "--load-size", "64")
    assert first.returncode == 2 and first.stderr.strip().splitlines()[-1].startswith("error: --data: no valid pairs in")
    second = run_train_cli("--data", str(synthetic_root), "--run-dir", str(run), "--image-size", "64", "--generator-depth", "6",
                           "--load-size", "64", "--generator-filters", "8", "--disc-filters", "8", "--epochs", "1",
                           "--steps-per-epoch", "1", "--progress", "none")
    assert second.returncode == 0, second.stderr[-1500:]
    assert "done: 1 epochs, 1 steps" in second.stdout
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    third = run_train_cli("--data", str(synthetic_root), "--run-dir", str(tmp_path / "other"))
    assert third.returncode == 2 and "holds files that are not a run's (notes.txt)" in third.stderr


@pytest.mark.slow
def test_a_strategy_run_warns_of_the_collapsing_configuration_with_its_replica_count(tiny_config, caplog):
    import logging

    cfg = tiny_config(model={"norm": "batch"}, optim={"epochs": 1, "steps_per_epoch": 1, "batch_size": 2},
                      runtime={"strategy": "mirrored"})
    with caplog.at_level(logging.WARNING):
        train(cfg)
    assert "at a per-replica batch of 2 was measured to collapse" in caplog.text
