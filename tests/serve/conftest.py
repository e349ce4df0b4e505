"""A tiny trained run and its export, shared by the serving tests (64x64, depth 6, a few steps)."""

from __future__ import annotations

import pytest


def tiny_run(base, synthetic_root):
    """Train (once per session folder) a 64x64 depth-6 generator with a 4-pair test split."""
    from reface_tf.config import Config
    from reface_tf.tasks import train

    run_dir = base / "tiny_run"
    if (run_dir / "checkpoints" / "checkpoint").is_file():
        return run_dir
    cfg = Config()
    cfg.data.root, cfg.data.image_size, cfg.data.load_size = str(synthetic_root), 64, 72
    cfg.data.test_ratio, cfg.data.val_ratio = 0.25, 0.125
    cfg.model.generator_depth, cfg.model.generator_filters, cfg.model.disc_filters = 6, 8, 8
    cfg.optim.epochs, cfg.optim.steps_per_epoch = 1, 3
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.sample_count = str(run_dir), "none", 2
    train(cfg)
    return run_dir


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_root):
    return tiny_run(tmp_path_factory.getbasetemp(), synthetic_root)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, trained_run):
    """(version folder, in-memory generator, config) of one export of ``trained_run``."""
    from reface_tf.serve.export import export_saved_model
    from reface_tf.tasks.pix2pix.task import load_generator

    generator, cfg, ckpt = load_generator(trained_run)
    version_dir = export_saved_model(generator, cfg, tmp_path_factory.mktemp("export") / "reface", checkpoint=ckpt)
    return version_dir, generator, cfg
