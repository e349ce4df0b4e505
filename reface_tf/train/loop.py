"""The training loop: data → train step → checkpoints, TensorBoard, samples and ``metrics.jsonl``.

``train(cfg)`` starts a run, or resumes it when ``cfg.runtime.run_dir`` already holds checkpoints:
weights, optimiser moments, epoch, step, learning rate (a pure function of the epoch) and the data order
(the epoch's seeded permutation, minus the batches already trained) all continue where they stopped.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import yaml

from reface_tf.config import Config, collapse_warning, load_yaml, resume_conflict, save_yaml
from reface_tf.data.pairs import Pair, read_splits, scan_dataset, split_dataset_root, split_pairs, write_splits
from reface_tf.data.pipeline import DecodedPairs, eval_dataset, training_batches
from reface_tf.errors import ConfigError, DataError, TrainingDiverged
from reface_tf.metrics import SIGNED_UNIT_RANGE, batch_metrics
from reface_tf.losses import build_generator_terms
from reface_tf.models import discriminator_from_config, generator_from_config, inference_training_flag
from reface_tf.train import runtime
from reface_tf.train.checkpoints import CHECKPOINT_DIR, TrainState, counter, make_manager
from reface_tf.train.floors import FloorWatch, Floors, compute_floors, load_floors, mean_target, save_floors
from reface_tf.train.monitor import MetricsLog, Progress, TensorBoard, plot_loss_curves, sample_grid, save_samples
from reface_tf.train.schedule import lr_factor
from reface_tf.train.step import make_optimizer, make_train_step

log = logging.getLogger(__name__)

# Step outputs that describe the discriminator's decisions rather than a loss (see reface_tf.train.step).
DISCRIMINATOR_LOGS = ("d_real", "d_fake", "d_accuracy")


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    steps_done: int
    last_metrics: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    replicas: int = 1
    time_limited: bool = False  # stopped by --time-limit before the last epoch


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so the run stops at a step boundary and saves."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_name is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: finishing this step and saving a checkpoint (press Ctrl-C again to abort)", self.signal_name)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _splits(cfg: Config, run_dir: Path) -> dict[str, list[Pair]]:
    """The run's split: read back on resume, otherwise made now (after validating every pair) and saved.

    A resumed run whose ``--data`` names another folder than the one the split was made from reads the same
    pairs there (a moved dataset); a folder that lacks them is refused with one line.
    """
    if (run_dir / "splits.json").is_file():
        recorded = split_dataset_root(run_dir)
        moved = cfg.data.root is not None and recorded is not None and Path(cfg.data.root).resolve() != Path(recorded)
        splits = read_splits(run_dir, cfg.data.root if moved else None)
        missing = [p for pairs in splits.values() for p in pairs for f in (p.input_path, p.target_path)
                   if not Path(f).is_file()]
        if missing:
            first = missing[0]
            where = f"--data {cfg.data.root}" if moved else f"the run's dataset {recorded or cfg.data.root}"
            raise DataError(f"{where} lacks {len(missing)} pair(s) of this run's split (first: {first.id}, "
                            f"{first.input_path}); pass --data with the folder the dataset moved to")
        if moved:
            log.info("dataset moved: reading this run's split from %s (was %s)", cfg.data.root, recorded)
        return splits
    if cfg.data.root is None:
        raise DataError("--data: no dataset given")
    scan = scan_dataset(cfg.data.root, cfg.data)
    scan.write_report(run_dir / "data_report.json")
    log.info("%s%s", scan.summary(), f"; each named in {run_dir / 'data_report.json'}" if scan.problems else "")
    splits = split_pairs(scan.pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)
    write_splits(run_dir, splits, scan.root, cfg.runtime.seed)
    log.info("split: %s", ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return splits


def _augmentation(cfg: Config):
    if not cfg.data.augment:
        return None
    from reface_tf.data.augment import AugmentConfig, build_paired_augmentation

    return build_paired_augmentation(AugmentConfig())


def _validate(generator: tf.keras.Model, dataset: tf.data.Dataset, training_flag: bool) -> tuple[dict[str, float], list]:
    rows: dict[str, list[float]] = defaultdict(list)
    first = None
    for inputs, targets in dataset:
        outputs = generator(inputs, training=training_flag).numpy()
        if first is None:
            first = (inputs.numpy(), outputs, targets.numpy())
        for key, values in batch_metrics(outputs.astype(np.float64), targets.numpy().astype(np.float64), SIGNED_UNIT_RANGE).items():
            rows[key].extend(values)
    return {f"val_{k}": float(np.mean(v)) for k, v in rows.items()}, first


def _check_resume(cfg: Config, run_dir: Path) -> None:
    """Refuse, before anything is written, a config that cannot continue the run already in ``run_dir``."""
    saved = run_dir / "config.yaml"
    if (run_dir / CHECKPOINT_DIR / "checkpoint").is_file() and saved.is_file():
        conflict = resume_conflict(load_yaml(saved), cfg)
        if conflict:
            raise ConfigError(conflict)


def _floors(run_dir: Path, store: DecodedPairs, val_ds: tf.data.Dataset, image_size: int, tb: TensorBoard) -> Floors:
    """The run's floors: read back on resume, otherwise computed once before the first epoch and logged."""
    floors = load_floors(run_dir)
    if floors is None:
        floors = compute_floors(mean_target(store, image_size), ((x.numpy(), y.numpy()) for x, y in val_ds))
        save_floors(floors, run_dir)
        tb.scalars({"floor/mean_face_psnr": floors.mean_face_psnr, "floor/mean_face_ssim": floors.mean_face_ssim,
                    "floor/identity_psnr": floors.identity_psnr, "floor/identity_ssim": floors.identity_ssim}, 0)
    log.info("validation floors: %s", floors.describe())
    return floors


def _discriminator_scalars(logs: dict[str, float]) -> dict[str, float]:
    return {"D/real": logs["d_real"], "D/fake": logs["d_fake"], "D/accuracy": logs["d_accuracy"]}


def train(cfg: Config) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; returns what was done.

    A run directory that already holds checkpoints is resumed; ``cfg`` may then differ from the run's saved
    config only in the fields listed in ``reface_tf.config.RESUMABLE_CHANGES`` (ConfigError otherwise).
    """
    run_dir = Path(cfg.runtime.run_dir)
    if cfg.data.root is not None:  # absolute, so the saved config works from any directory
        cfg = cfg.replace(data={"root": str(Path(cfg.data.root).resolve())})
    _check_resume(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = runtime.setup(cfg)
    if cfg.runtime.strategy != "default" and (warning := collapse_warning(cfg, strategy.num_replicas_in_sync)):
        log.warning(warning)
    splits = _splits(cfg, run_dir)
    train_pairs, val_pairs = splits["train"], splits["val"]
    global_batch = cfg.optim.batch_size
    if len(train_pairs) < global_batch:
        raise DataError(f"--batch-size {global_batch} is larger than the {len(train_pairs)} training pairs; lower it or add data")
    if not val_pairs:
        log.warning("no validation pairs (dataset too small for --val-ratio); validating on training pairs")
        val_pairs = train_pairs[: cfg.runtime.sample_count]
    steps_per_epoch = len(train_pairs) // global_batch
    if cfg.optim.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.optim.steps_per_epoch)

    store = DecodedPairs(train_pairs, cfg.data.load_size, cfg.data.max_pixels, cache=cfg.data.cache)
    val_store = DecodedPairs(val_pairs, cfg.data.image_size, cfg.data.max_pixels, cache=True)
    val_ds = eval_dataset(val_pairs, cfg, batch_size=min(8, len(val_pairs)), store=val_store)
    fixed_ds = eval_dataset(val_pairs[: cfg.runtime.sample_count], cfg, batch_size=cfg.runtime.sample_count, store=val_store)
    fixed_inputs, fixed_targets = next(iter(fixed_ds))
    augmentation = _augmentation(cfg)
    tb = TensorBoard(run_dir / "tb")
    watch_floors = FloorWatch(_floors(run_dir, store, val_ds, cfg.data.image_size, tb))

    with strategy.scope():
        generator, discriminator = generator_from_config(cfg), discriminator_from_config(cfg)
        g_opt, d_opt = make_optimizer(cfg.optim.lr_g, cfg), make_optimizer(cfg.optim.lr_d, cfg)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
        terms = build_generator_terms(cfg)
    state = TrainState(generator, discriminator, g_opt, d_opt, counter("epoch"), counter("step"), counter("step_in_epoch"))
    manager = make_manager(state, run_dir, cfg.runtime.keep_checkpoints)
    if manager.latest_checkpoint:
        state.checkpoint().restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resuming from %s: epoch %d, step %d", manager.latest_checkpoint, int(state.epoch), int(state.step))
    save_yaml(cfg, run_dir / "config.yaml")
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    metrics.truncate_after(int(state.epoch))
    watch_floors = FloorWatch(watch_floors.floors, [bool(r.get("below_floors")) for r in metrics.read()])

    step_fn = make_train_step(generator, discriminator, g_opt, d_opt, terms, cfg, strategy, global_batch)
    training_flag = inference_training_flag(cfg)
    tb.text("config", "```\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False) + "```", step=int(state.step))
    epochs = cfg.optim.epochs
    last: dict[str, Any] = metrics.read()[-1] if metrics.read() else {}

    def fixed_grid() -> np.ndarray:
        return sample_grid(fixed_inputs.numpy(), generator(fixed_inputs, training=training_flag).numpy(), fixed_targets.numpy())

    def save(reason: str) -> None:
        path = manager.save(checkpoint_number=int(state.step))
        log.info("checkpoint %s (%s)", path, reason)

    # A resumed epoch may have trained more batches than a lowered --steps-per-epoch now allows: it is complete.
    first_skip = min(int(state.step_in_epoch), steps_per_epoch)
    batches = iter(strategy.experimental_distribute_dataset(training_batches(
        store, cfg, int(state.epoch), epochs, global_batch, steps_per_epoch, first_skip, augmentation)))
    with _StopRequest() as stop:
        for epoch in range(int(state.epoch), epochs):
            factor = lr_factor(cfg.optim, epoch)
            g_opt.learning_rate = cfg.optim.lr_g * factor
            d_opt.learning_rate = cfg.optim.lr_d * factor
            skip = first_skip if epoch == int(state.epoch) else 0
            progress = Progress(cfg.runtime.progress, steps_per_epoch, epoch + 1, epochs, cfg.runtime.log_every, initial=skip)
            sums: dict[str, float] = defaultdict(float)
            count, started, compute_time = 0, time.perf_counter(), 0.0
            try:
                for _ in range(steps_per_epoch - skip):
                    batch = next(batches)
                    t0 = time.perf_counter()
                    logs = {k: float(v) for k, v in step_fn(batch).items()}
                    compute_time += time.perf_counter() - t0
                    bad = [k for k, v in logs.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingDiverged(
                            f"loss {bad[0]} is {logs[bad[0]]} at epoch {epoch + 1}, step {int(state.step) + 1}; stopped without "
                            f"saving, the last good checkpoint ({manager.latest_checkpoint or 'none'}) is kept; "
                            "lower --lr-g/--lr-d or check the data")
                    state.step.assign_add(1)
                    state.step_in_epoch.assign_add(1)
                    count += 1
                    for k, v in logs.items():
                        sums[k] += v
                    step = int(state.step)
                    throughput = count * global_batch / max(time.perf_counter() - started, 1e-9)
                    progress.update(logs, throughput)
                    if step % cfg.runtime.log_every == 0:
                        tb.scalars({f"loss/{k}": v for k, v in logs.items() if k not in DISCRIMINATOR_LOGS}
                                   | _discriminator_scalars(logs) | {"lr/generator": cfg.optim.lr_g * factor,
                                      "lr/discriminator": cfg.optim.lr_d * factor, "throughput/images_per_s": throughput}, step)
                    if step % cfg.runtime.image_every == 0:
                        tb.image("samples/input_output_target", fixed_grid(), step)
                    if stop.signal_name:
                        break
            finally:
                progress.close()
            if stop.signal_name:
                save(f"{stop.signal_name} at epoch {epoch + 1}, step {int(state.step)}")
                tb.flush()
                return TrainResult(run_dir, int(state.epoch), int(state.step), last, True, strategy.num_replicas_in_sync)

            elapsed = time.perf_counter() - started
            state.epoch.assign(epoch + 1)
            state.step_in_epoch.assign(0)
            val, _ = _validate(generator, val_ds, training_flag)
            grid = fixed_grid()
            save_samples(run_dir / "samples", epoch + 1, grid)
            tb.image("samples/input_output_target", grid, int(state.step))
            last = {"epoch": epoch + 1, "step": int(state.step), "time": time.time(), "epoch_seconds": round(elapsed, 3),
                    "img_per_s": round(count * global_batch / max(elapsed, 1e-9), 3),
                    "seconds_per_step": round(compute_time / max(count, 1), 4),
                    "lr_g": cfg.optim.lr_g * factor, "lr_d": cfg.optim.lr_d * factor,
                    **{(k if k in DISCRIMINATOR_LOGS else f"loss/{k}"): v / max(count, 1) for k, v in sums.items()}, **val,
                    "below_floors": watch_floors.below(val["val_psnr"], val["val_ssim"])}
            metrics.append(last)
            if warning := watch_floors.update(epoch + 1, val["val_psnr"], val["val_ssim"]):
                log.warning(warning)
            tb.scalars({k: v for k, v in val.items()} | {"throughput/epoch_images_per_s": last["img_per_s"]}, int(state.step))
            tb.flush()
            log.info("epoch %d/%d: %s", epoch + 1, epochs, " ".join(
                f"{k}={v:.4g}" for k, v in last.items() if k.startswith(("loss/", "val_")) or k == "img_per_s"))
            trained_seconds = sum(r.get("epoch_seconds", 0.0) for r in metrics.read())
            out_of_time = 0 < cfg.optim.time_limit <= trained_seconds and epoch + 1 < epochs
            if (epoch + 1) % cfg.runtime.checkpoint_every == 0 or epoch + 1 == epochs or out_of_time:
                save(f"end of epoch {epoch + 1}")
            if out_of_time:
                log.info("--time-limit %gs reached after %.1fs of training (epoch %d)", cfg.optim.time_limit,
                         trained_seconds, epoch + 1)
                plot_loss_curves(metrics.read(), run_dir / "loss_curves.png")
                return TrainResult(run_dir, int(state.epoch), int(state.step), last, False,
                                   strategy.num_replicas_in_sync, time_limited=True)

    plot_loss_curves(metrics.read(), run_dir / "loss_curves.png")
    return TrainResult(run_dir, int(state.epoch), int(state.step), last, False, strategy.num_replicas_in_sync)
