"""``python train.py``: parse and validate options, resolve a resumed run's config, then train."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Sequence

from reface_tf.config import build_parser, config_from_args, load_yaml, merge_for_resume, requested_task, validate
from reface_tf.errors import ConfigError

log = logging.getLogger("reface_tf.train")

# What a run directory may hold before its first checkpoint (see README, "The run directory").
RUN_FILES = {"config.yaml", "splits.json", "alignment.json", "floors.json", "data_report.json", "metrics.jsonl", "checkpoints", "tb", "samples", "loss_curves.png"}

EXAMPLES = """examples:
  python train.py                                   # demo dataset, defaults of the TF tutorial
  python train.py --data data/pairs --epochs 450    # your A/ B/ pairs
  python train.py --run-dir runs/reface             # resume the run after Ctrl-C
  tensorboard --logdir runs/
  python train.py --grid grid.yaml --folds 3        # grid search with cross-validation (same as tune.py)
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--grid" or a.startswith("--grid=") for a in argv):
        from reface_tf.tune import main as tune_main  # train.py --grid is tune.py

        return tune_main(argv)
    from reface_tf.tasks import declare, task_names

    task = requested_task(argv)
    declare(task)  # its config sections, for --help and parsing
    parser = build_parser(f"Train a model: task {task} (of {', '.join(task_names())}; --task NAME --help shows "
                          "that task's options).", task=task)
    parser.epilog = EXAMPLES
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    from reface_tf.cli import setup_logging

    setup_logging(getattr(args, "verbose", False))
    cli_cfg, explicit = config_from_args(args)
    run_dir = Path(cli_cfg.runtime.run_dir)
    saved_path = run_dir / "config.yaml"
    if (run_dir / "checkpoints" / "checkpoint").is_file() and saved_path.is_file():
        cfg = merge_for_resume(load_yaml(saved_path), cli_cfg, explicit)
        log.info("%s has checkpoints: resuming that run with its saved config", run_dir)
    else:
        foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in RUN_FILES) if run_dir.is_dir() else []
        if foreign:
            raise ConfigError(f"--run-dir: {run_dir} holds files that are not a run's ({', '.join(foreign[:3])}); "
                              "choose a new or empty folder")
        # A run that stopped before its first checkpoint left only files we rewrite: start it afresh.
        for name in ("splits.json", "alignment.json", "data_report.json", "metrics.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
        cfg = cli_cfg
    validate(cfg)  # before TensorFlow is imported: bad options cost no start-up time
    from reface_tf.tasks import fill_default_data

    fill_default_data(cfg)  # a run without --data trains on its task's demo dataset
    from reface_tf.tasks import train  # imports TensorFlow

    result = train(cfg)
    if result.interrupted:
        print(f"interrupted at epoch {result.epochs_done + 1}, step {result.steps_done}; checkpoint saved. "
              f"Resume with: python train.py --run-dir {result.run_dir}")
        return 130
    m = result.last_metrics
    if result.time_limited:
        print(f"time limit reached at epoch {result.epochs_done}; checkpoint saved. Continue with: "
              f"python train.py --run-dir {result.run_dir} --time-limit <more seconds>")
    print(f"done: {result.epochs_done} epochs, {result.steps_done} steps in {result.run_dir}"
          + (f"; val PSNR {m['val_psnr']:.2f} dB, SSIM {m['val_ssim']:.4f}" if "val_psnr" in m else ""))
    return 0
