"""Runs trained before the task registry resume and export unchanged.

tests/fixtures/legacy_run/ was written by the code of commit 0f70435 (tests/fixtures/make_legacy_run.py): a
64x64 Pix2Pix run of 2 steps, its config.yaml without a ``task`` section, its checkpoint with the variable names
of that time, and the generator's output on a fixed input (legacy_output.npy).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from reface_tf.tasks.pix2pix.task import load_generator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixed_input() -> np.ndarray:  # as make_legacy_run.fixed_input
    return np.random.default_rng(1234).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)


def legacy_copy(tmp_path: Path) -> Path:
    run = tmp_path / "legacy_run"
    shutil.copytree(FIXTURES / "legacy_run", run)
    return run


def test_a_checkpoint_from_before_the_registry_restores_and_reproduces_its_output(tmp_path):
    generator, cfg, path = load_generator(legacy_copy(tmp_path))
    assert cfg.task.name == "pix2pix" and Path(path).name == "ckpt-2"
    out = generator(fixed_input(), training=False).numpy()
    np.testing.assert_allclose(out, np.load(FIXTURES / "legacy_output.npy"), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_run_from_before_the_registry_resumes_and_exports(tmp_path):
    from reface_tf.commands.export import export_main
    from reface_tf.commands.train import main as train_main
    from reface_tf.data.synthetic import make_synthetic_dataset

    run = legacy_copy(tmp_path)
    data = make_synthetic_dataset(tmp_path / "data", count=8, size=64, seed=0)  # the dataset it was trained on, moved
    assert train_main(["--run-dir", str(run), "--data", str(data), "--epochs", "2", "--progress", "none"]) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-4.index"]
    assert "task:\n  name: pix2pix" in (run / "config.yaml").read_text()
    assert export_main(["--run-dir", str(run), "--out", str(tmp_path / "export")]) == 0
    from reface_tf.serve.export import load_exported

    exported = load_exported(tmp_path / "export" / "1")
    assert exported.meta["checkpoint"].endswith("ckpt-4") and exported.image_size == 64
