import csv

import pytest

from reface_tf.cli import run_cli
from reface_tf.config import Config, load_yaml
from reface_tf.data.pairs import Pair, read_splits
from reface_tf.errors import ConfigError, DataError
from reface_tf.commands.train import main as train_main
from reface_tf.tune import (METRICS, ConfigResult, FoldResult, TuneResult, expand_grid, load_grid, main, make_folds,
                            run_tuning)

TINY = ["--image-size", "64", "--load-size", "72", "--generator-depth", "6", "--generator-filters", "8",
        "--disc-filters", "8", "--progress", "none", "--fold-epochs", "1", "--fold-steps", "2"]


def test_grid_keys_and_values_are_checked(tmp_path):
    (tmp_path / "g.yaml").write_text("optim.lr_g: [1.0e-4, '2.0e-4']\nloss:\n  lambda_l1: [50, 100]\n")
    axes = load_grid(tmp_path / "g.yaml")
    assert axes == [("optim.lr_g", [1e-4, 2e-4]), ("loss.lambda_l1", [50.0, 100.0])]
    points = expand_grid(axes)
    assert len(points) == 4 and points[0] == {"optim.lr_g": 1e-4, "loss.lambda_l1": 50.0}
    for text, needle in (("optim.nope: [1]", "nope"), ("optim.lr_g: [fast]", "lr_g"),
                         ("runtime.run_dir: [a]", "cannot be tuned"), ("model.norm: [bogus]", "bogus"),
                         ("lr: [1]", "section.key"), ("optim.lr_g: [1.0e-4, 0.0001]", "twice"),
                         ("optim.lr_g: [", "not valid YAML")):
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_grid(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_grid(tmp_path / "missing.yaml")


def test_folds_keep_groups_together():
    pairs = [Pair(f"p{i}", "a", "b", group=f"g{i // 3}") for i in range(12)]
    folds = make_folds(pairs, 3, seed=0)
    assert sorted(p.id for f in folds for p in f) == sorted(p.id for p in pairs)
    groups = [{p.group for p in f} for f in folds]
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])
    assert sorted(len(f) for f in folds) == [3, 3, 6]
    assert make_folds(pairs, 3, seed=0) == folds  # deterministic
    with pytest.raises(DataError, match="only 4 group"):
        make_folds(pairs, 5, seed=0)
    with pytest.raises(ConfigError, match="at least 2"):
        make_folds(pairs, 1, seed=0)


def test_bad_options_stop_before_training(tmp_path, synthetic_root, capsys):
    (tmp_path / "grid.yaml").write_text("optim.lr_g: [1.0e-4]\n")
    base = ["--grid", str(tmp_path / "grid.yaml"), "--data", str(synthetic_root), "--out", str(tmp_path / "t"), *TINY]
    assert run_cli(main, [*base, "--fold-epochs", "0"]) == 2
    assert "--fold-epochs 0" in capsys.readouterr().err
    assert run_cli(main, [*base, "--image-size", "60"]) == 2
    assert "--image-size" in capsys.readouterr().err
    assert run_cli(main, [*base, "--folds", "99"]) == 2
    assert "--folds 99" in capsys.readouterr().err
    assert not (tmp_path / "t" / "tune.csv").exists()


def test_metrics_and_their_directions_come_from_the_registry(tmp_path, synthetic_root, capsys):
    assert METRICS == ("ssim", "psnr", "l1")  # what training's validation logs as val_<name>; the default first

    def config(index, ssim, psnr, l1):
        return ConfigResult(index, {}, f"k{index}", [FoldResult(1, {"ssim": ssim, "psnr": psnr, "l1": l1}, "")])

    configs = [config(0, 0.5, 20.0, 0.30), config(1, 0.7, 18.0, 0.20), config(2, 0.7, 19.0, 0.25)]
    assert [c.index for c in TuneResult(tmp_path, configs, "ssim").ranked] == [2, 1, 0]  # ties: higher PSNR first
    assert [c.index for c in TuneResult(tmp_path, configs, "l1").ranked] == [1, 2, 0]    # lower is better
    for metric, needle in (("face_psnr", "--metric face_psnr: training's validation does not measure it; use one of "
                            "ssim, psnr, l1"), ("fid", "--metric fid: use one of ssim, psnr, l1")):
        with pytest.raises(ConfigError) as err:
            run_tuning(Config(), [], 2, tmp_path / "t", metric=metric)
        assert str(err.value) == needle
    (tmp_path / "grid.yaml").write_text("optim.lr_g: [1.0e-4]\n")
    argv = ["--grid", str(tmp_path / "grid.yaml"), "--data", str(synthetic_root), "--out", str(tmp_path / "t"), *TINY]
    assert run_cli(main, [*argv, "--metric", "face_psnr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--metric" in err and "face_psnr" in err
    assert not (tmp_path / "t").exists()


def test_train_py_with_grid_is_tune_py(tmp_path, synthetic_root, capsys):
    (tmp_path / "grid.yaml").write_text("optim.nope: [1]\n")
    argv = ["--grid", str(tmp_path / "grid.yaml"), "--data", str(synthetic_root), "--out", str(tmp_path / "t"), *TINY]
    assert run_cli(train_main, argv) == 2  # --out and --fold-steps are tune.py's options; train.py alone refuses them
    assert "optim.nope" in capsys.readouterr().err


@pytest.mark.slow
def test_search_writes_tables_best_yaml_and_resumes(tmp_path, synthetic_root, monkeypatch, capsys):
    # two points x two folds: every table, the ranking and the resume are exercised at half the cost of a 2x2 grid
    (tmp_path / "grid.yaml").write_text("optim.lr_g: [1.0e-4, 1.0e-3]\nloss.lambda_l1: [10]\n")
    out = tmp_path / "tune"
    argv = ["--grid", str(tmp_path / "grid.yaml"), "--folds", "2", "--data", str(synthetic_root), "--out", str(out), *TINY]
    assert run_cli(main, argv) == 0
    rows = list(csv.DictReader(open(out / "tune.csv")))
    assert len(rows) == 2 and sorted(int(r["rank"]) for r in rows) == [1, 2]
    assert all(r["folds"] == "2" for r in rows)
    ssim = [float(r["ssim_mean"]) for r in rows]
    assert ssim == sorted(ssim, reverse=True) and all(0.0 < v <= 1.0 for v in ssim)
    folds = list(csv.DictReader(open(out / "folds.csv")))
    assert len(folds) == 4
    md = (out / "tune.md").read_text()
    assert md.count(" ± ") >= 6 and "| 1 |" in md

    best = load_yaml(out / "best.yaml")
    assert best.optim.epochs == Config().optim.epochs  # the full budget, not the tuning one
    assert best.model.generator_depth == 6 and best.data.image_size == 64
    assert best.optim.lr_g == float(rows[0]["optim.lr_g"]) and best.loss.lambda_l1 == float(rows[0]["loss.lambda_l1"])

    # each fold validated on its own pairs, never on the test split a train.py run holds out
    run_dirs = sorted((out / "runs").glob("*/fold-*"))
    assert len(run_dirs) == 4
    first = [read_splits(d) for d in sorted((out / "runs" / run_dirs[0].parent.name).glob("fold-*"))]
    val_ids = [{p.id for p in s["val"]} for s in first]
    assert not (val_ids[0] & val_ids[1])
    train_ids = {p.id for p in first[0]["train"]}
    assert not (train_ids & val_ids[0]) and val_ids[1] <= train_ids

    # resume: finished folds are read back; only a fold without result.json trains again
    (run_dirs[-1] / "result.json").unlink()
    import reface_tf.tasks as loop

    calls = []
    real_train = loop.train
    monkeypatch.setattr(loop, "train", lambda cfg: calls.append(cfg.runtime.run_dir) or real_train(cfg))
    capsys.readouterr()
    assert run_cli(main, argv) == 0
    assert calls == [str(run_dirs[-1])]
    assert "1 fold run(s) trained, 3 reused" in capsys.readouterr().out
    assert len(list(csv.DictReader(open(out / "tune.csv")))) == 2
