"""Fused (one batched real+fake discriminator call) and separate discriminator passes give the same optimiser step."""

from __future__ import annotations

import numpy as np
import pytest

import reface_tf.tasks.pix2pix.task as step_module
from tests.train.test_precision import run_steps

LR = 2e-4  # Config default lr_g = lr_d


@pytest.mark.slow
def test_fused_and_separate_discriminator_passes_give_the_same_weights(tiny_config, monkeypatch):
    results = {}
    for fuse_max in (8, 0):  # 8: the batch of 2 is fused; 0: always two separate discriminator calls
        monkeypatch.setattr(step_module, "FUSE_MAX_BATCH", fuse_max)
        cfg = tiny_config(model={"norm": "instance", "dropout": 0.0}, optim={"batch_size": 2})
        assert cfg.optim.lr_g == cfg.optim.lr_d == LR
        generator, discriminator, before, logs, _ = run_steps(cfg, steps=1)
        results[fuse_max] = before, generator.get_weights(), discriminator.get_weights()
    (g0_f, d0_f), g_f, d_f = results[8]
    (g0_s, d0_s), g_s, d_s = results[0]
    # Same seed: both runs start from the same weights.
    for a, b in zip(g0_f + d0_f, g0_s + d0_s):
        np.testing.assert_array_equal(a, b)
    # Tolerance: Adam's first step moves every weight by lr * g / (|g| + eps / sqrt(1 - beta_2)), i.e. ~LR = 2e-4 for
    # any gradient above ~3e-6. Batching real and fake in one call only reorders float32 sums (measured max weight
    # difference ~4e-7), whereas mixing up the halves or the gradient paths would flip gradient signs and move
    # weights apart by up to 2 * LR. 1% of LR (2e-6) separates the two by two orders of magnitude either way.
    atol = 0.01 * LR
    for name, start, fused, separate in (("generator", g0_f, g_f, g_s), ("discriminator", d0_f, d_f, d_s)):
        assert len(fused) == len(separate) > 0
        for w0, a, b in zip(start, fused, separate):
            assert np.abs(a - w0).max() > 0.5 * LR, name  # every variable took a real step
            np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=name)
