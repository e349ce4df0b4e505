"""Grid search with K-fold cross-validation over the training pairs.

Every configuration of a grid (``optim.lr_g: [1e-4, 2e-4]``, ``loss.lambda_l1: [50, 100]`` ...) is trained
once per fold for a short budget with :func:`reface_tf.tasks.train`, in its own run directory, and
scored by the validation SSIM / PSNR / L1 on the held-out fold. The folds are made from the pairs that a
later ``train.py`` run with the same data, seed and ratios uses for training and validation: its test split
is computed the same way and left out, so tuning never sees the pairs the final model is tested on. Pairs of
one group (identity) always fall into the same fold.

Resumable: a finished fold leaves ``result.json`` in its run directory and is never trained again; an
interrupted fold resumes from its checkpoint. The run directories are named by a hash of everything that
decides the result (the fold's full config, the fold assignment), so changing the base config, the budget,
the data or K starts fresh runs next to the old ones instead of mixing them.

Outputs in the tuning folder: ``tune.csv`` and ``tune.md`` (mean ± std over folds per configuration,
ranked), ``folds.csv`` (every fold), ``best.yaml`` (the base config with the best values; ``train.py
--config best.yaml`` accepts it) and ``runs/<hash>/fold-<k>/`` (the fold runs).

Example::

    axes = load_grid("grid.yaml")
    result = run_tuning(base_cfg, axes, folds=3, out_dir="runs/tune", budget=Budget(epochs=2, steps_per_epoch=100))
    result.best.overrides  # {"optim.lr_g": 0.0002, "loss.lambda_l1": 100.0}
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from reface_tf.config import SECTIONS, Config, flag_name, from_dict, validate
from reface_tf.data.pairs import Pair, scan_dataset, split_pairs, write_splits
from reface_tf.errors import ConfigError, DataError
from reface_tf.metrics import get_metric, metric_names

log = logging.getLogger(__name__)

DEFAULT_METRIC = "ssim"
# The validation metrics read from a fold's last epoch (val_<name>): the registered metrics that need only the
# output and the target, which training's validation measures. The default first: the order of the tables.
METRICS = (DEFAULT_METRIC, *(m for m in metric_names(("output", "target")) if m != DEFAULT_METRIC))
DIGITS = {"ssim": 4, "psnr": 2, "l1": 4}  # decimals in tune.md
# The budget and the bookkeeping belong to the tuner; a grid over them would be meaningless or unsafe.
RESERVED_KEYS = {("optim", "epochs"): "--fold-epochs", ("optim", "steps_per_epoch"): "--fold-steps",
                 ("runtime", "run_dir"): "--out", ("data", "root"): "--data",
                 ("data", "val_ratio"): "the folds", ("data", "test_ratio"): "the base config"}
# Fields that do not change what a fold run learns (logging, display, where it lives).
NOT_HASHED = {("runtime", "run_dir"), ("runtime", "progress"), ("runtime", "log_every"), ("runtime", "image_every"),
              ("runtime", "keep_checkpoints"), ("runtime", "checkpoint_every"), ("runtime", "intra_threads"),
              ("runtime", "inter_threads")}


# --------------------------------------------------------------------------------------------- the grid


Axis = tuple[str, list[Any]]  # ("optim.lr_g", [0.0001, 0.0002])


def _typed(key: str, value: Any, source: str) -> Any:
    """The value as the config field stores it (so 1e-4 written as a string and 0.0001 are one value)."""
    section, name = key.split(".", 1)
    cfg = from_dict({section: {name: value}}, source=source)
    typed = getattr(getattr(cfg, section), name)
    choices = {f.name: f.metadata.get("choices") for f in fields(SECTIONS[section])}[name]
    if choices and typed not in choices:
        raise ConfigError(f"{source}: '{key}' value {typed!r} is not one of {', '.join(map(str, choices))}")
    return typed


def parse_grid(data: Any, source: str = "grid") -> list[Axis]:
    """Axes of a grid mapping: ``{"optim.lr_g": [..]}`` or nested ``{"optim": {"lr_g": [..]}}``; a scalar is
    a one-value axis. Keys and values are checked against the config (one-line ConfigError)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: expected a mapping of config keys to lists of values, "
                          "e.g. 'optim.lr_g: [0.0001, 0.0002]'")
    flat: list[tuple[str, Any]] = []
    for key, values in data.items():
        key = str(key)
        if "." not in key and key in SECTIONS and isinstance(values, dict):
            flat.extend((f"{key}.{k}", v) for k, v in values.items())
        else:
            flat.append((key, values))
    axes: list[Axis] = []
    seen: set[str] = set()
    for key, values in flat:
        if "." not in key:
            raise ConfigError(f"{source}: key '{key}' must be 'section.key' (sections: {', '.join(SECTIONS)}), "
                              "e.g. 'optim.lr_g'")
        section, name = key.split(".", 1)
        if (section, name) in RESERVED_KEYS:
            raise ConfigError(f"{source}: '{key}' cannot be tuned here; it is set by {RESERVED_KEYS[(section, name)]}")
        if key in seen:
            raise ConfigError(f"{source}: '{key}' is listed twice")
        seen.add(key)
        if section == "loss" and name == "perceptual_layers":
            values = values if values and all(isinstance(v, list) for v in values) else [values]
        elif not isinstance(values, list):
            values = [values]
        if not values:
            raise ConfigError(f"{source}: '{key}' has no values")
        typed = [_typed(key, v, source) for v in values]
        if len({json.dumps(v, sort_keys=True) for v in typed}) != len(typed):
            raise ConfigError(f"{source}: '{key}' lists a value twice ({values})")
        axes.append((key, typed))
    return axes


def load_grid(path: str | os.PathLike) -> list[Axis]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--grid: {path} does not exist; pass a YAML file such as 'optim.lr_g: [0.0001, 0.0002]'")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise ConfigError(f"--grid: {path} is not valid YAML" + (f" (line {line + 1})" if line is not None else "")) from None
    return parse_grid(data, source=f"--grid {path}")


def expand_grid(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination, the first axis varying slowest (the order of the grid file)."""
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in axes))]


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = value
    return cfg.replace(**sections)


def describe(overrides: dict[str, Any]) -> str:
    """``lr_g=0.0001, lambda_l1=50`` (the field names are unique across sections)."""
    return ", ".join(f"{k.split('.', 1)[1]}={_fmt_value(v)}" for k, v in overrides.items()) or "(base config)"


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


# -------------------------------------------------------------------------------------------- the folds


def tuning_pairs(cfg: Config) -> tuple[list[Pair], list[Pair], str]:
    """(pairs to cross-validate on, the held-out test pairs, dataset root): the test split is the one a
    ``train.py`` run with this data, seed and ratios would hold out."""
    scan = scan_dataset(cfg.data.root, cfg.data)
    split = split_pairs(scan.pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)
    pool = sorted(split["train"] + split["val"], key=lambda p: p.id)
    return pool, split["test"], scan.root


def make_folds(pairs: list[Pair], k: int, seed: int) -> list[list[Pair]]:
    """K group-disjoint folds of about equal size: groups (shuffled with ``seed``, then largest first) each go
    to the fold holding the fewest pairs so far."""
    if k < 2:
        raise ConfigError(f"--folds {k}: needs at least 2 folds")
    by_group: dict[str, list[Pair]] = {}
    for pair in sorted(pairs, key=lambda p: p.id):
        by_group.setdefault(pair.group, []).append(pair)
    if len(by_group) < k:
        raise DataError(f"--folds {k}: the {len(pairs)} tuning pairs form only {len(by_group)} group(s) "
                        f"(identities); a fold needs at least one; lower --folds or add data")
    names = sorted(by_group)
    shuffled = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    shuffled.sort(key=lambda g: -len(by_group[g]))  # stable: equal sizes keep the shuffled order
    folds: list[list[Pair]] = [[] for _ in range(k)]
    for group in shuffled:
        smallest = min(range(k), key=lambda i: (len(folds[i]), i))
        folds[smallest].extend(by_group[group])
    return [sorted(f, key=lambda p: p.id) for f in folds]


# ------------------------------------------------------------------------------------------- the budget


@dataclass(frozen=True)
class Budget:
    epochs: int = 2
    steps_per_epoch: int | None = 100  # None: full passes over the fold's training pairs

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--fold-epochs {self.epochs}: must be at least 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"--fold-steps {self.steps_per_epoch}: must be at least 1")


def fold_config(cfg: Config, budget: Budget, run_dir: Path) -> Config:
    """The config of one fold run: ``cfg`` on the short budget, checkpointing only at its end."""
    o = cfg.optim
    decay = o.epochs_decay
    if decay:  # keep the schedule's shape on the shorter run
        decay = min(budget.epochs, max(1, round(decay * budget.epochs / o.epochs)))
    return cfg.replace(optim={"epochs": budget.epochs, "steps_per_epoch": budget.steps_per_epoch, "epochs_decay": decay},
                       runtime={"run_dir": str(run_dir), "checkpoint_every": budget.epochs, "keep_checkpoints": 1})


def fingerprint(cfg: Config, folds: list[list[Pair]]) -> str:
    """A hash of what decides a configuration's fold results (not where or how verbosely it runs)."""
    data = cfg.to_dict()
    for section, key in NOT_HASHED:
        data[section].pop(key, None)
    data["folds"] = [[p.id for p in fold] for fold in folds]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------------- tuning


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, float]  # ssim, psnr, l1 of the last epoch on the held-out fold
    run_dir: str
    reused: bool = False


@dataclass
class ConfigResult:
    index: int
    overrides: dict[str, Any]
    key: str                                   # fingerprint: the folder runs/<key>/
    folds: list[FoldResult] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [f.metrics[metric] for f in self.folds]

    def mean(self, metric: str) -> float:
        return float(np.mean(self.values(metric)))

    def std(self, metric: str) -> float:
        """Sample standard deviation over folds (0 for one fold)."""
        values = self.values(metric)
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@dataclass
class TuneResult:
    out_dir: Path
    configs: list[ConfigResult]
    metric: str
    interrupted: bool = False
    trained: int = 0   # fold runs trained in this call
    reused: int = 0    # fold runs already finished before

    @property
    def ranked(self) -> list[ConfigResult]:
        done = [c for c in self.configs if c.folds]
        order = [self.metric, *(m for m in METRICS if m != self.metric)]  # ties broken by the other metrics
        sign = {m: -1.0 if get_metric(m).higher_is_better else 1.0 for m in order}
        return sorted(done, key=lambda c: (*[sign[m] * c.mean(m) for m in order], c.index))

    @property
    def best(self) -> ConfigResult:
        return self.ranked[0]


RESULT_FILE = "result.json"


def _read_result(run_dir: Path, key: str) -> dict[str, float] | None:
    path = run_dir / RESULT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("key") != key:
            return None
        return {m: float(data["metrics"][m]) for m in METRICS}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        log.warning("%s is unreadable; training that fold again", path)
        return None


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_tuning(base: Config, axes: list[Axis], folds: int, out_dir: str | os.PathLike, budget: Budget = Budget(),
               metric: str = DEFAULT_METRIC, on_fold: Callable[[str], None] | None = None) -> TuneResult:
    """Train every grid configuration on every fold (skipping finished folds) and write the tables.

    ``base.data.root`` must be set. Returns as soon as a fold run is interrupted (``interrupted=True``); the
    tables are then not written, and the same call later continues where it stopped.
    """
    if metric not in METRICS:
        measured = "training's validation does not measure it; " if metric in metric_names() else ""
        raise ConfigError(f"--metric {metric}: {measured}use one of {', '.join(METRICS)}")
    budget.check()
    if base.data.root is None:
        raise ConfigError("--data: no dataset given")
    base = base.replace(data={"root": str(Path(base.data.root).resolve())})
    points = expand_grid(axes)
    configs = [apply_overrides(base, point) for point in points]
    for point, cfg in zip(points, configs):
        try:
            validate(fold_config(cfg, budget, Path(out_dir)))
        except ConfigError as err:
            raise ConfigError(f"grid point {describe(point)}: {err}") from None

    pool, held_out, root = tuning_pairs(base)
    fold_pairs = make_folds(pool, folds, base.runtime.seed)
    log.info("tuning on %d pairs of %s in %d folds (%s pairs), %d held-out test pairs left out; %d configurations",
             len(pool), root, folds, "/".join(str(len(f)) for f in fold_pairs), len(held_out), len(points))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = TuneResult(out_dir, [], metric)

    from reface_tf import tasks  # imports TensorFlow

    for index, (point, cfg) in enumerate(zip(points, configs)):
        key = fingerprint(fold_config(cfg, budget, Path()), fold_pairs)
        entry = ConfigResult(index, point, key)
        result.configs.append(entry)
        for k, held in enumerate(fold_pairs):
            run_dir = out_dir / "runs" / key / f"fold-{k + 1}"
            label = f"config {index + 1}/{len(points)} ({describe(point)}), fold {k + 1}/{folds}"
            done = _read_result(run_dir, key)
            if done is not None:
                entry.folds.append(FoldResult(k + 1, done, str(run_dir), reused=True))
                result.reused += 1
                if on_fold:
                    on_fold(f"{label}: finished before, SSIM {done['ssim']:.4f}, PSNR {done['psnr']:.2f} dB")
                continue
            train_pairs = [p for i, fold in enumerate(fold_pairs) if i != k for p in fold]
            run_dir.mkdir(parents=True, exist_ok=True)
            write_splits(run_dir, {"train": train_pairs, "val": held, "test": []}, root, base.runtime.seed)
            trained = tasks.train(fold_config(cfg, budget, run_dir))
            _release_memory()
            if trained.interrupted:
                result.interrupted = True
                return result
            metrics = {m: float(trained.last_metrics[f"val_{m}"]) for m in METRICS}
            if not all(math.isfinite(v) for v in metrics.values()):
                raise DataError(f"{label}: validation metrics are not finite ({metrics}); see {run_dir}/metrics.jsonl")
            _write_text_atomic(run_dir / RESULT_FILE, json.dumps(
                {"key": key, "fold": k + 1, "overrides": point, "metrics": metrics,
                 "val_ids": [p.id for p in held], "epochs": trained.epochs_done, "steps": trained.steps_done}, indent=1))
            entry.folds.append(FoldResult(k + 1, metrics, str(run_dir)))
            result.trained += 1
            if on_fold:
                on_fold(f"{label}: SSIM {metrics['ssim']:.4f}, PSNR {metrics['psnr']:.2f} dB")

    write_tables(result, axes, base, folds, budget, len(pool), len(held_out))
    return result


def _release_memory() -> None:
    # Each fold builds fresh networks; without this, the process keeps every fold's graphs alive.
    import keras

    keras.backend.clear_session()


# ----------------------------------------------------------------------------------------------- tables


def _pm(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_tables(result: TuneResult, axes: list[Axis], base: Config, folds: int, budget: Budget, n_pool: int,
                 n_held_out: int) -> None:
    """``tune.csv``, ``folds.csv``, ``tune.md`` and ``best.yaml`` (each written to a temporary name, then renamed)."""
    keys = [k for k, _ in axes]
    ranked = result.ranked
    rank_of = {c.index: r + 1 for r, c in enumerate(ranked)}

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["rank", "config", *keys, *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")], "folds", "run_dirs"])
    for c in ranked:
        writer.writerow([rank_of[c.index], c.index + 1, *[c.overrides[k] for k in keys],
                         *[repr(v) for m in METRICS for v in (c.mean(m), c.std(m))], len(c.folds),
                         str(result.out_dir / "runs" / c.key)])
    _write_text_atomic(result.out_dir / "tune.csv", buf.getvalue())

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["config", *keys, "fold", *METRICS, "run_dir"])
    for c in result.configs:
        for f in c.folds:
            writer.writerow([c.index + 1, *[c.overrides[k] for k in keys], f.fold, *[repr(f.metrics[m]) for m in METRICS], f.run_dir])
    _write_text_atomic(result.out_dir / "folds.csv", buf.getvalue())

    best = result.best
    budget_text = f"{budget.epochs} epoch(s)" + (f" of at most {budget.steps_per_epoch} steps" if budget.steps_per_epoch else "")
    arrow = {m: get_metric(m).arrow for m in METRICS}
    lines = [
        "# Tuning results", "",
        f"- data: `{base.data.root}`: {n_pool} pairs in {folds} group-disjoint folds; the {n_held_out} test pairs "
        f"of a `train.py` run with this data, seed {base.runtime.seed} and --test-ratio {base.data.test_ratio} were left out",
        f"- budget per fold: {budget_text}, batch size {base.optim.batch_size}, image size {base.data.image_size}",
        f"- ranked by validation {result.metric.upper()} (mean over folds; ± is the sample standard deviation)",
        f"- best: **{describe(best.overrides)}** → `best.yaml` (`python train.py --config {result.out_dir / 'best.yaml'}`)",
        "",
        "| rank | " + " | ".join(f"`{k}`" for k in keys) + " | " + " | ".join(
            f"val {m.upper()} {arrow[m]}" for m in METRICS) + " | folds |",
        "| --- " * (len(keys) + len(METRICS) + 2) + "|",
    ]
    for c in ranked:
        cells = [str(rank_of[c.index]), *[_fmt_value(c.overrides[k]) for k in keys],
                 *[_pm(c.mean(m), c.std(m), DIGITS.get(m, 4)) for m in METRICS], str(len(c.folds))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Fold runs (checkpoints, metrics.jsonl, samples) are in `runs/<hash>/fold-<k>/`; `folds.csv` lists every fold."]
    _write_text_atomic(result.out_dir / "tune.md", "\n".join(lines) + "\n")

    best_cfg = apply_overrides(base, best.overrides)
    header = (f"# Best of a {len(result.configs)}-configuration grid, {folds}-fold cross-validated by tune.py "
              f"(validation {result.metric.upper()} {best.mean(result.metric):.4f} ± {best.std(result.metric):.4f}):\n"
              f"#   {describe(best.overrides)}\n"
              f"# Train with: python train.py --config {result.out_dir / 'best.yaml'}\n")
    _write_text_atomic(result.out_dir / "best.yaml", header + yaml.safe_dump(best_cfg.to_dict(), sort_keys=False))
    log.info("tuning tables written to %s; best: %s", result.out_dir, describe(best.overrides))


def grid_flags(axes: list[Axis]) -> str:
    """The command-line flags of the grid's keys (for messages)."""
    return ", ".join(flag_name(*k.split(".", 1)) for k, _ in axes)


# -------------------------------------------------------------------------------------------- the CLI


EXAMPLES = """examples:
  python tune.py --grid grid.yaml --folds 3 --data data/pairs            # 2 epochs x 100 steps per fold
  python tune.py --grid grid.yaml --folds 5 --fold-epochs 5 --fold-steps 0 --config configs/fast.yaml
  python train.py --config runs/tune/best.yaml --data data/pairs         # then train the winner in full

grid.yaml:
  optim.lr_g: [0.0001, 0.0002]
  loss:
    lambda_l1: [50, 100]
"""


def main(argv: list[str] | None = None) -> int:
    """``python tune.py``: the base config comes from ``--config`` and the usual training flags."""
    from reface_tf.cli import setup_logging
    from reface_tf.config import build_parser, config_from_args

    parser = build_parser("Grid search with group-disjoint K-fold cross-validation over the training pairs.")
    parser.epilog = EXAMPLES
    tune = parser.add_argument_group("tuning")
    tune.add_argument("--grid", required=True, help="YAML grid: config keys ('optim.lr_g') to lists of values")
    tune.add_argument("--folds", type=int, default=3, help="number of group-disjoint folds K (default: 3)")
    tune.add_argument("--out", default="runs/tune", help="tuning folder: tables, best.yaml and fold runs (default: runs/tune)")
    tune.add_argument("--fold-epochs", type=int, default=Budget.epochs, help="epochs per fold run (default: %(default)s)")
    tune.add_argument("--fold-steps", type=int, default=Budget.steps_per_epoch,
                      help="steps per epoch of a fold run; 0 = full passes over the fold's pairs (default: %(default)s)")
    tune.add_argument("--metric", default=DEFAULT_METRIC, choices=METRICS,
                      help="validation metric that ranks the grid (default: %(default)s)")
    tune.add_argument("--verbose", action="store_true", default=False, help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    axes = load_grid(args.grid)
    base, _ = config_from_args(args)
    if args.fold_steps < 0:
        raise ConfigError(f"--fold-steps {args.fold_steps}: must be 0 (full passes) or more")
    budget = Budget(epochs=args.fold_epochs, steps_per_epoch=args.fold_steps or None)
    budget.check()
    validate(fold_config(base, budget, Path(args.out)))  # before TensorFlow starts
    if base.data.root is None:
        from reface_tf.samples import default_dataset

        base = base.replace(data={"root": default_dataset()})

    result = run_tuning(base, axes, args.folds, args.out, budget, metric=args.metric, on_fold=print)
    if result.interrupted:
        print(f"interrupted; finished folds are kept. Continue with the same command (grid flags: {grid_flags(axes)})")
        return 130
    best = result.best
    print(f"{result.trained} fold run(s) trained, {result.reused} reused; best: {describe(best.overrides)} "
          f"(val {args.metric.upper()} {best.mean(args.metric):.4f} ± {best.std(args.metric):.4f}); "
          f"tables in {result.out_dir}/tune.md")
    print(f"train it with: python train.py --config {result.out_dir / 'best.yaml'}")
    return 0
