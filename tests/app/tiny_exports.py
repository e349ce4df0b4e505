"""Tiny trained exports of every kind the app shows (32-64 px, a few steps each), written under one folder as
``export.py`` would: ``ROOT/outcome/1``, ``sketch/1``, ``spade/1``, ``dcgan/1``, ``stylegan2/1``, ``age_editor/1``."""

from __future__ import annotations

from pathlib import Path

from reface_tf import tasks
from reface_tf.config import Config
from tests.train.test_age_encoder_task import encoder_config
from tests.train.test_dcgan_task import _config as dcgan_config
from tests.train.test_dcgan_task import _face_folder
from tests.train.test_spade_task import blob_maps
from tests.train.test_spade_task import tiny as spade_config
from tests.train.test_stylegan2_task import labelled_folder
from tests.train.test_stylegan2_task import tiny_config as stylegan2_config


def pix2pix_config(data: Path, run_dir: Path, domain: str) -> Config:
    cfg = Config()
    cfg.data.root, cfg.data.image_size, cfg.data.load_size, cfg.data.input_domain = str(data), 64, 72, domain
    cfg.data.test_ratio, cfg.data.val_ratio = 0.25, 0.125
    cfg.model.generator_depth, cfg.model.generator_filters, cfg.model.disc_filters = 6, 8, 8
    cfg.optim.epochs, cfg.optim.steps_per_epoch = 1, 3
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.sample_count = str(run_dir), "none", 2
    return cfg


def build_exports(root: Path, kinds=("outcome", "sketch", "spade", "dcgan", "age")) -> Path:
    """Train and export each kind under ``root/runs`` and ``root/export``; returns the export folder."""
    from reface_tf.data.synthetic import make_synthetic_dataset

    runs, export = root / "runs", root / "export"
    configs = []
    if "outcome" in kinds or "sketch" in kinds:
        pairs = make_synthetic_dataset(root / "pairs", count=16, size=64, seed=0)
        configs += [(pix2pix_config(pairs, runs / name, domain), name) for name, domain in
                    (("outcome", "photo"), ("sketch", "sketch")) if name in kinds]
    if "spade" in kinds:
        # 16 steps at a raised rate: at fewer the map's modulation is still near its initial zero and a painted
        # stroke changes the face by a grey level or less (measured: 1 after 2 steps, 32 after 16)
        spade = spade_config(blob_maps(root / "segmaps", 8, "map"), runs / "spade", epochs=8)
        spade.optim.lr_g = 1e-3
        configs.append((spade, "spade"))
    if "dcgan" in kinds:
        (root / "blobs").mkdir()
        configs.append((dcgan_config(runs / "dcgan", _face_folder(root / "blobs"), 1), "dcgan"))
    if "age" in kinds:
        configs.append((stylegan2_config(labelled_folder(root / "faces", count=16), runs / "stylegan2", 1), "stylegan2"))
        configs.append((encoder_config(runs / "stylegan2", runs / "age_editor", 1), "age_editor"))
    for cfg, name in configs:
        tasks.train(cfg)
        tasks.get_task(cfg.task.name).export(str(runs / name), None, str(export / name))
    return export


if __name__ == "__main__":  # python -m tests.app.tiny_exports OUT: the exports the app tests use, to look at
    import sys

    print(build_exports(Path(sys.argv[1])))
