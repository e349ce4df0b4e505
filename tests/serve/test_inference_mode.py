"""--inference-mode train (the TF tutorial's generation with batch statistics) through evaluate and export."""

import numpy as np
import pytest

from reface_tf.data.pipeline import to_uint8


@pytest.fixture(scope="module")
def batch_stats_run(tmp_path_factory, synthetic_root):
    from reface_tf.config import Config
    from reface_tf.tasks import train

    cfg = Config()
    cfg.data.root, cfg.data.image_size, cfg.data.load_size = str(synthetic_root), 64, 72
    cfg.data.test_ratio, cfg.data.val_ratio = 0.25, 0.125
    cfg.model.generator_depth, cfg.model.generator_filters, cfg.model.disc_filters = 6, 8, 8
    # No dropout, so training=True differs from training=False only by batch statistics: outputs are comparable.
    cfg.model.norm, cfg.model.inference_mode, cfg.model.dropout = "batch", "train", 0.0
    cfg.optim.epochs, cfg.optim.steps_per_epoch = 1, 3
    cfg.runtime.run_dir = str(tmp_path_factory.mktemp("batch_stats") / "run")
    cfg.runtime.progress, cfg.runtime.sample_count = "none", 2
    train(cfg)
    return cfg.runtime.run_dir


@pytest.mark.slow
def test_evaluate_and_export_generate_with_batch_statistics(batch_stats_run, tmp_path):
    from reface_tf.serve.source import source_from_export
    from reface_tf.tasks.pix2pix.task import source_from_run
    from reface_tf.tasks.pix2pix.task import load_generator
    from reface_tf.serve.export import export_saved_model

    generator, cfg, ckpt = load_generator(batch_stats_run)
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    x = images.astype(np.float32) / 127.5 - 1.0
    with_batch_stats = to_uint8(generator(x, training=True).numpy())
    with_moving_stats = to_uint8(generator(x, training=False).numpy())
    # The two modes really differ on this model, so agreeing with one of them says which one ran.
    assert np.abs(with_batch_stats.astype(int) - with_moving_stats).mean() > 2

    evaluated = source_from_run(batch_stats_run)
    assert evaluated.cfg.model.inference_mode == "train"
    assert np.abs(evaluated.translate(images).astype(int) - with_batch_stats).max() <= 1

    version = export_saved_model(generator, cfg, tmp_path / "export", checkpoint=ckpt)
    exported = source_from_export(version)
    assert exported.cfg.model.inference_mode == "train"
    assert np.abs(exported.translate(images).astype(int) - with_batch_stats).max() <= 1
