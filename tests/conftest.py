"""Fixtures shared by the whole suite: small synthetic datasets and tiny configs (64x64, depth 6)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    from reface_tf.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), count=16, size=64, seed=0)


@pytest.fixture
def tiny_config(tmp_path, synthetic_root):
    """A config that trains in about a second per epoch on the synthetic dataset."""
    from reface_tf.config import Config

    def make(**sections):
        cfg = Config()
        cfg.data.root, cfg.data.image_size, cfg.data.load_size = str(synthetic_root), 64, 72
        cfg.model.generator_depth, cfg.model.generator_filters, cfg.model.disc_filters = 6, 8, 8
        cfg.optim.epochs, cfg.optim.steps_per_epoch = 2, 3
        cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.sample_count = str(tmp_path / "run"), "none", 2
        cfg.runtime.log_every = cfg.runtime.image_every = 2
        return cfg.replace(**sections)

    return make
