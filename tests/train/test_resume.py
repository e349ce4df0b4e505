"""Resume defects: the schedule horizon, moved or relative datasets, a lowered --steps-per-epoch, the library guard."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from reface_tf.config import load_yaml
from reface_tf.data.pairs import read_split
from reface_tf.errors import ConfigError, DataError
from reface_tf.train import loop
from reface_tf.tasks import train


class _StopAfter:
    """Stands in for the Ctrl-C handler: reports SIGINT from the ``steps``-th step on."""

    def __init__(self, steps):
        self.steps, self.checks = steps, 0

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def signal_name(self):
        self.checks += 1  # the loop looks once after every step, then once more when it breaks
        return "SIGINT" if self.checks >= self.steps else None


@pytest.mark.slow
@pytest.mark.parametrize("policy, extra", [("cosine", {}), ("linear", {"epochs_decay": 1})])
def test_changing_epochs_on_resume_is_refused_for_schedules_that_depend_on_it(tiny_config, policy, extra):
    cfg = tiny_config(optim={"epochs": 2, "lr_policy": policy, **extra}, runtime={"checkpoint_every": 1})
    train(cfg.replace(optim={"epochs": 1}) if policy == "cosine" else cfg)
    saved = (Path(cfg.runtime.run_dir) / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=rf"--epochs \(optim.epochs\): this run's {policy} learning-rate schedule"):
        train(cfg.replace(optim={"epochs": 3}))
    assert (Path(cfg.runtime.run_dir) / "config.yaml").read_text() == saved


@pytest.mark.slow
def test_a_changed_network_is_refused_by_the_library_before_the_config_is_rewritten(tiny_config):
    cfg = tiny_config(optim={"epochs": 1})
    train(cfg)
    saved = (Path(cfg.runtime.run_dir) / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=r"--generator-filters \(model.generator_filters\): this run was started with 8"):
        train(cfg.replace(model={"generator_filters": 16}, optim={"epochs": 2}))
    assert (Path(cfg.runtime.run_dir) / "config.yaml").read_text() == saved


@pytest.mark.slow
def test_lowering_steps_per_epoch_below_the_batches_trained_ends_that_epoch(tiny_config, monkeypatch):
    cfg = tiny_config(optim={"epochs": 1, "steps_per_epoch": 4})
    monkeypatch.setattr(loop, "_StopRequest", _StopAfter(3))
    interrupted = train(cfg)
    assert interrupted.interrupted and interrupted.steps_done == 3
    monkeypatch.undo()
    result = train(cfg.replace(optim={"steps_per_epoch": 2}))
    assert (result.epochs_done, result.steps_done) == (1, 3)  # nothing more to train in that epoch


@pytest.mark.slow
def test_a_run_started_with_a_relative_data_path_resumes_and_evaluates_from_elsewhere(tiny_config, tmp_path,
                                                                                      synthetic_root, monkeypatch):
    shutil.copytree(synthetic_root, tmp_path / "work" / "pairs")
    monkeypatch.chdir(tmp_path / "work")
    cfg = tiny_config(data={"root": "pairs"}, optim={"epochs": 1}, runtime={"run_dir": str(tmp_path / "run")})
    train(cfg)
    saved = load_yaml(tmp_path / "run" / "config.yaml")
    assert saved.data.root == str(tmp_path / "work" / "pairs")
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["dataset"] == str(tmp_path / "work" / "pairs")
    assert all(not os.path.isabs(p["input_path"]) for p in splits["train"])
    monkeypatch.chdir(tmp_path)
    assert all(Path(p.input_path).is_file() for p in read_split(tmp_path / "run", "test"))
    result = train(saved.replace(optim={"epochs": 2}))
    assert result.epochs_done == 2


@pytest.mark.slow
def test_a_moved_dataset_is_read_from_its_new_root_and_a_wrong_root_is_one_line(tiny_config, tmp_path, synthetic_root):
    shutil.copytree(synthetic_root, tmp_path / "old")
    cfg = tiny_config(data={"root": str(tmp_path / "old")}, optim={"epochs": 1})
    train(cfg)
    shutil.move(tmp_path / "old", tmp_path / "new")
    with pytest.raises(DataError, match=r"lacks \d+ pair\(s\) of this run's split .*pass --data"):
        train(cfg.replace(optim={"epochs": 2}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"--data .*empty lacks"):
        train(cfg.replace(data={"root": str(tmp_path / "empty")}, optim={"epochs": 2}))
    result = train(cfg.replace(data={"root": str(tmp_path / "new")}, optim={"epochs": 2}))
    assert result.epochs_done == 2
    assert yaml.safe_load((Path(cfg.runtime.run_dir) / "config.yaml").read_text())["data"]["root"] == str(tmp_path / "new")


def test_trained_time_counts_the_chosen_clock_and_falls_back_to_wall_seconds_for_old_rows():
    from reface_tf.train.loop import trained_time

    rows = [{"epoch_seconds": 10.0}, {"epoch_seconds": 5.0, "cpu_seconds": 9.0}]
    assert trained_time(rows, "wall") == 15.0 and trained_time(rows, "cpu") == 19.0


@pytest.mark.slow
def test_time_limit_stops_at_an_epoch_end_with_a_checkpoint_and_a_larger_limit_resumes(tiny_config):
    cfg = tiny_config(optim={"epochs": 50, "time_limit": 1e-6, "time_limit_clock": "cpu"})
    result = train(cfg)
    assert result.time_limited and not result.interrupted and result.epochs_done == 1
    rows = [json.loads(line) for line in (Path(cfg.runtime.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1] and rows[0]["cpu_seconds"] > 0
    resumed = train(cfg.replace(optim={"epochs": 2, "time_limit": 0.0}))
    assert not resumed.time_limited and resumed.epochs_done == 2 and resumed.steps_done == 2 * cfg.optim.steps_per_epoch
