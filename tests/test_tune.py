import csv
import json

import pytest

from reface_tf.cli import run_cli
from reface_tf.config import Config, load_yaml
from reface_tf.data.pairs import Pair
from reface_tf.errors import ConfigError, DataError
from reface_tf.tune import load_grid, main, make_folds, trials

TINY = ["--image-size", "64", "--load-size", "72", "--generator-depth", "6", "--generator-filters", "8",
        "--disc-filters", "8", "--progress", "none", "--budget-epochs", "1", "--budget-steps", "2"]


def test_grid_keys_and_values_are_checked(tmp_path):
    base = Config()
    (tmp_path / "g.yaml").write_text("optim.lr_g: [1.0e-4, 2.0e-4]\nloss:\n  lambda_l1: [50, 100]\n")
    grid = load_grid(tmp_path / "g.yaml", base)
    assert grid == {"optim.lr_g": [1e-4, 2e-4], "loss.lambda_l1": [50, 100]}
    assert len({t.id for t in trials(grid)}) == 4
    for text, needle in (("optim.nope: [1]", "unknown key"), ("optim.lr_g: [fast]", "not a valid float"),
                         ("runtime.run_dir: [a]", "cannot be tuned"), ("model.norm: [bogus]", "not one of"),
                         ("lr: [1]", "<section>.<name>")):
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_grid(tmp_path / "bad.yaml", base)
    with pytest.raises(ConfigError, match="does not exist"):
        load_grid(tmp_path / "missing.yaml", base)


def test_folds_keep_groups_together():
    pairs = [Pair(f"p{i}", "a", "b", group=f"g{i // 3}") for i in range(12)]
    folds = make_folds(pairs, 3, seed=0)
    assert sorted(p.id for f in folds for p in f) == sorted(p.id for p in pairs)
    groups = [{p.group for p in f} for f in folds]
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1:])
    assert sorted(len(f) for f in folds) == [3, 3, 6]
    with pytest.raises(DataError, match="only 4 groups"):
        make_folds(pairs, 5, seed=0)


@pytest.mark.slow
def test_search_writes_tables_best_yaml_and_resumes(tmp_path, synthetic_root, monkeypatch, capsys):
    (tmp_path / "grid.yaml").write_text("optim.lr_g: [1.0e-4, 1.0e-3]\nloss.lambda_l1: [10, 100]\n")
    out = tmp_path / "tune"
    argv = ["--grid", str(tmp_path / "grid.yaml"), "--folds", "2", "--data", str(synthetic_root), "--out", str(out), *TINY]
    assert run_cli(main, argv) == 0
    rows = list(csv.DictReader(open(out / "tune.csv")))
    assert len(rows) == 8 and {r["fold"] for r in rows} == {"0", "1"}
    md = (out / "tune.md").read_text()
    assert md.count(" ± ") >= 8 and "| 1 |" in md
    best = load_yaml(out / "best.yaml")
    assert best.optim.epochs == Config().optim.epochs  # the full budget, not the tuning one
    assert best.model.generator_depth == 6 and best.data.image_size == 64
    winner = md.split("| 1 | ")[1].split(" |")[0]  # rank 1 of the table
    params = json.loads((out / winner / "params.json").read_text())
    assert best.optim.lr_g == params["optim.lr_g"] and best.loss.lambda_l1 == params["loss.lambda_l1"]
    # each fold validated on its own groups and never on the held-out test split
    splits = [json.loads((out / rows[0]["config"] / f"fold{k}" / "splits.json").read_text()) for k in (0, 1)]
    val_ids = [{p["id"] for p in s["val"]} for s in splits]
    test_ids = {p["id"] for p in splits[0]["test"]}
    assert not (val_ids[0] & val_ids[1]) and not (test_ids & (val_ids[0] | val_ids[1]))
    assert not test_ids & {p["id"] for p in splits[0]["train"]}

    # resume: finished folds are read back; only a fold without result.json trains again
    (out / rows[-1]["config"] / "fold1" / "result.json").unlink()
    import reface_tf.train.loop as loop

    calls = []
    real_train = loop.train
    monkeypatch.setattr(loop, "train", lambda cfg: calls.append(cfg.runtime.run_dir) or real_train(cfg))
    assert run_cli(main, argv) == 0
    assert calls == [str(out / rows[-1]["config"] / "fold1")]
    assert len(list(csv.DictReader(open(out / "tune.csv")))) == 8
    assert "python train.py --config" in capsys.readouterr().out

    # another grid in the same folder is refused
    (tmp_path / "grid.yaml").write_text("optim.lr_g: [5.0e-4]\n")
    assert run_cli(main, argv) == 2
    assert "another grid" in capsys.readouterr().err
