"""The train step under every precision policy and under XLA: tiny CPU runs that guard the GPU code paths.

mixed_float16 is what GPUs use (with the LossScaleOptimizer), mixed_bfloat16 is the fast CPU/TPU policy and
--jit compiles the step with XLA; all must give finite float32 losses and actually move the weights, with the
fused (instance norm) and the separate (batch norm) discriminator passes.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from reface_tf.data.pairs import scan_dataset
from reface_tf.data.pipeline import DecodedPairs, train_dataset
from reface_tf.models import discriminator_from_config, generator_from_config
from reface_tf.train import runtime
from reface_tf.tasks.pix2pix.task import make_train_step
from reface_tf.train.step import make_optimizer


@pytest.fixture(autouse=True)
def float32_policy_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def run_steps(cfg, steps: int = 2):
    strategy = runtime.setup(cfg)
    pairs = scan_dataset(cfg.data.root, cfg.data).pairs
    store = DecodedPairs(pairs, cfg.data.load_size, cfg.data.max_pixels)
    batch = cfg.optim.batch_size
    with strategy.scope():
        generator, discriminator = generator_from_config(cfg), discriminator_from_config(cfg)
        g_opt, d_opt = make_optimizer(cfg.optim.lr_g, cfg), make_optimizer(cfg.optim.lr_d, cfg)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
    step = make_train_step(generator, discriminator, g_opt, d_opt, cfg, strategy, batch)
    before = [w.copy() for w in generator.get_weights()], [w.copy() for w in discriminator.get_weights()]
    logs = []
    for data in train_dataset(store, cfg, epoch=0, global_batch=batch).take(steps):
        logs.append(step(data))
    return generator, discriminator, before, logs, (g_opt, d_opt)


def changed(before: list[np.ndarray], model: keras.Model) -> bool:
    return any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


# Every policy with both norms; XLA (a slow compile) once per policy that uses it, with one norm each.
@pytest.mark.parametrize("precision,jit,norm", [
    ("mixed_bfloat16", False, "instance"), ("mixed_bfloat16", False, "batch"),
    ("mixed_float16", False, "instance"), ("mixed_float16", False, "batch"),
    ("fp32", True, "instance"), ("mixed_bfloat16", True, "batch")])
def test_train_step_gives_finite_float32_losses_and_updates_weights(tiny_config, precision, jit, norm):
    cfg = tiny_config(runtime={"precision": precision, "jit": jit}, model={"norm": norm}, optim={"batch_size": 2})
    # Dynamic loss scaling starts at 2**15 and skips the update (halving the scale) while float16 gradients
    # overflow, which with lambda_l1 = 100 is the first few generator steps; 6 steps get past that.
    steps = 6 if precision == "mixed_float16" else 2
    generator, discriminator, (g_before, d_before), logs, (g_opt, d_opt) = run_steps(cfg, steps)
    assert len(logs) == steps
    for step_logs in logs:
        for name, value in step_logs.items():
            assert value.dtype == tf.float32, name
            assert np.isfinite(value.numpy()), (name, value)
    assert changed(g_before, generator) and changed(d_before, discriminator)
    # Weights stay float32 (master copies) under the mixed policies; only the compute is low precision.
    assert all(v.dtype == "float32" for v in generator.trainable_variables)
    if precision == "mixed_float16":
        assert isinstance(g_opt, keras.optimizers.LossScaleOptimizer)
        assert generator.get_layer("down1_conv").compute_dtype == "float16"
    if precision == "mixed_bfloat16":
        assert generator.get_layer("down1_conv").compute_dtype == "bfloat16"
    assert generator.output.dtype == "float32" and discriminator.output.dtype == "float32"


def test_bfloat16_step_tracks_float32_on_the_same_batch(tiny_config):
    """Same weights, same batch: the first-step losses under mixed_bfloat16 stay close to float32's."""
    losses = {}
    for precision in ("fp32", "mixed_bfloat16"):
        cfg = tiny_config(runtime={"precision": precision}, model={"norm": "instance", "dropout": 0.0},
                          optim={"batch_size": 2})
        *_, logs, _ = run_steps(cfg, steps=1)
        losses[precision] = {k: float(v) for k, v in logs[0].items()}
        keras.mixed_precision.set_global_policy("float32")
    for key in ("l1", "d_total", "g_adv"):
        assert losses["mixed_bfloat16"][key] == pytest.approx(losses["fp32"][key], rel=0.05, abs=0.02), key


def test_fused_and_separate_discriminator_passes_agree(tiny_config, monkeypatch):
    """Instance norm normalises each example alone, so one batched D call equals two separate ones."""
    import reface_tf.tasks.pix2pix.task as step_module

    losses = {}
    for fuse_max in (8, 0):
        monkeypatch.setattr(step_module, "FUSE_MAX_BATCH", fuse_max)
        cfg = tiny_config(model={"norm": "instance", "dropout": 0.0}, optim={"batch_size": 2})
        *_, logs, _ = run_steps(cfg, steps=1)
        losses[fuse_max] = {k: float(v) for k, v in logs[0].items()}
    for key, value in losses[8].items():
        assert losses[0][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
