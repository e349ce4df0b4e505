"""The training loop of every task: data → step groups → checkpoints, TensorBoard, samples, ``metrics.jsonl``.

``train(cfg, task)`` starts a run, or resumes it when ``cfg.runtime.run_dir`` already holds checkpoints:
weights, optimiser moments, EMA copies, epoch, step, learning rate (a pure function of the epoch) and the data
order (the task's seeded order, minus the batches already trained) all continue where they stopped. What is
trained is the task's (``reface_tf.train.task``); ``reface_tf.tasks.train(cfg)`` picks the task from the config.
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

import tensorflow as tf
import yaml

from reface_tf.config import Config, load_yaml, resume_conflict, save_yaml
from reface_tf.errors import ConfigError, TrainingDiverged
from reface_tf.train import runtime
from reface_tf.train.checkpoints import (CHECKPOINT_DIR, TrainState, copy_matching_weights, counter, make_manager,
                                         resolve_checkpoint, restore)
from reface_tf.train.monitor import MetricsLog, Progress, TensorBoard, plot_loss_curves, save_samples
from reface_tf.train.schedule import lr_factor
from reface_tf.train.step import copy_weights, make_ema_update, make_group_step
from reface_tf.train.task import Task

log = logging.getLogger(__name__)

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


def _check_resume(cfg: Config, run_dir: Path) -> None:
    """Refuse, before anything is written, a config that cannot continue the run already in ``run_dir``."""
    saved = run_dir / "config.yaml"
    if (run_dir / CHECKPOINT_DIR / "checkpoint").is_file() and saved.is_file():
        conflict = resume_conflict(load_yaml(saved), cfg)
        if conflict:
            raise ConfigError(conflict)


def _init_from(task: Task, cfg: Config, networks: dict) -> None:
    """--init-from: copy another run's (or checkpoint's) weights into the new networks, layer by layer."""
    origin = cfg.runtime.init_from
    path = resolve_checkpoint(origin)
    source_run = Path(path).parents[1]
    source_cfg = load_yaml(source_run / "config.yaml") if (source_run / "config.yaml").is_file() else cfg
    if source_cfg.task.name != cfg.task.name:
        raise ConfigError(f"--init-from {origin}: that run trained task {source_cfg.task.name!r}, this one {cfg.task.name!r}")
    sources = task.build_networks(source_cfg)
    restore(sources, path, f"the networks of --init-from {origin}")
    copied = copy_matching_weights(networks, sources, origin)
    log.info("initialised %s from %s", ", ".join(copied), path)


def trained_time(history: list[dict], clock: str = "wall") -> float:
    """Seconds of training so far by ``clock``: "wall" (epoch seconds) or "cpu" (this process's CPU seconds over the
    epochs, every core counted; epochs logged before CPU time was recorded count their wall seconds)."""
    key = "cpu_seconds" if clock == "cpu" else "epoch_seconds"
    return sum(r.get(key, r.get("epoch_seconds", 0.0)) for r in history)


def train(cfg: Config, task: Task) -> TrainResult:
    """Train (or resume) the run described by ``cfg`` with ``task``; returns what was done.

    A run directory that already holds checkpoints is resumed; ``cfg`` may then differ from the run's saved
    config only in the fields listed in ``reface_tf.config.RESUMABLE_CHANGES`` (ConfigError otherwise).
    """
    run_dir = Path(cfg.runtime.run_dir)
    if getattr(cfg, "data", None) is not None and cfg.data.root is not None:  # absolute: the config works from anywhere
        cfg = cfg.replace(data={"root": str(Path(cfg.data.root).resolve())})
    _check_resume(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = runtime.setup(cfg)
    tb = TensorBoard(run_dir / "tb")
    run = task.start(cfg, run_dir, tb)
    data = run.data
    steps_per_epoch, global_batch = data.steps_per_epoch, data.global_batch

    with strategy.scope():
        networks = task.build_networks(cfg)
        with_lrs = run.build_optimizers(networks)
        optimizers = {name: opt for name, (opt, _) in with_lrs.items()}
        base_lrs = {name: lr for name, (_, lr) in with_lrs.items()}
        groups = run.step_groups(networks)
        for group in groups:
            for phase in group.phases:
                optimizers[phase.optimizer].build([v for n in phase.networks for v in networks[n].trainable_variables])
    state = TrainState(networks, optimizers, counter("epoch"), counter("step"), counter("step_in_epoch"))
    manager = make_manager(state, run_dir, cfg.runtime.keep_checkpoints)
    if manager.latest_checkpoint:
        state.checkpoint().restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log.info("resuming from %s: epoch %d, step %d", manager.latest_checkpoint, int(state.epoch), int(state.step))
    else:
        if cfg.runtime.init_from:
            _init_from(task, cfg, networks)
        for name, spec in run.ema.items():
            copy_weights(networks[name], networks[spec.source])
    save_yaml(cfg, run_dir / "config.yaml")
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    metrics.truncate_after(int(state.epoch))

    group_steps = [(group, make_group_step(group, networks, optimizers, cfg, strategy, global_batch)) for group in groups]
    ema_update = make_ema_update(run.ema, networks)
    progress_keys = tuple(getattr(run, "progress_keys", None) or [p.loss for g in groups for p in g.phases])
    tb.text("config", "```\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False) + "```", step=int(state.step))
    epochs = cfg.optim.epochs
    last: dict[str, Any] = metrics.read()[-1] if metrics.read() else {}

    def save(reason: str) -> None:
        path = manager.save(checkpoint_number=int(state.step))
        log.info("checkpoint %s (%s)", path, reason)

    def train_step(batch) -> dict[str, float]:
        done = int(state.step)
        count = tf.constant(done, tf.int64)
        logs: dict[str, Any] = {}
        for group, step_fn in group_steps:
            if done % group.every == 0:
                logs.update(step_fn(batch, count))
        if ema_update is not None:
            ema_update(count)
        return {k: float(v) for k, v in logs.items()}

    # A resumed epoch may have trained more batches than a lowered --steps-per-epoch now allows: it is complete.
    first_skip = min(int(state.step_in_epoch), steps_per_epoch)
    batches = iter(strategy.experimental_distribute_dataset(data.batches(int(state.epoch), epochs, first_skip)))
    with _StopRequest() as stop:
        for epoch in range(int(state.epoch), epochs):
            factor = lr_factor(cfg.optim, epoch)
            for name, opt in optimizers.items():
                opt.learning_rate = base_lrs[name] * factor
            skip = first_skip if epoch == int(state.epoch) else 0
            progress = Progress(cfg.runtime.progress, steps_per_epoch, epoch + 1, epochs, cfg.runtime.log_every, initial=skip,
                                keys=progress_keys)
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            count, started, compute_time, cpu_started = 0, time.perf_counter(), 0.0, time.process_time()
            try:
                for _ in range(steps_per_epoch - skip):
                    batch = next(batches)
                    t0 = time.perf_counter()
                    logs = train_step(batch)
                    compute_time += time.perf_counter() - t0
                    bad = [k for k, v in logs.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingDiverged(
                            f"loss {bad[0]} is {logs[bad[0]]} at epoch {epoch + 1}, step {int(state.step) + 1}; stopped without "
                            f"saving, the last good checkpoint ({manager.latest_checkpoint or 'none'}) is kept; "
                            "lower the learning rates (--lr-g/--lr-d) or check the data")
                    state.step.assign_add(1)
                    state.step_in_epoch.assign_add(1)
                    count += 1
                    for k, v in logs.items():
                        sums[k] += v
                        counts[k] += 1
                    step = int(state.step)
                    throughput = count * global_batch / max(time.perf_counter() - started, 1e-9)
                    progress.update(logs, throughput)
                    if step % cfg.runtime.log_every == 0:
                        tb.scalars({(run.step_scalars.get(k) or f"loss/{k}"): v for k, v in logs.items()}
                                   | {f"lr/{name.removesuffix('_optimizer')}": base_lrs[name] * factor for name in optimizers}
                                   | {"throughput/images_per_s": throughput}, step)
                    if step % cfg.runtime.image_every == 0:
                        tb.image(run.preview_tag, run.preview(networks), step)
                    if stop.signal_name:
                        break
            finally:
                progress.close()
            if stop.signal_name:
                save(f"{stop.signal_name} at epoch {epoch + 1}, step {int(state.step)}")
                tb.flush()
                return TrainResult(run_dir, int(state.epoch), int(state.step), last, True, strategy.num_replicas_in_sync)

            elapsed, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            state.epoch.assign(epoch + 1)
            state.step_in_epoch.assign(0)
            validate_every = getattr(run, "validate_every", 1)
            val = run.validate(networks) if (epoch + 1) % validate_every == 0 or epoch + 1 == epochs else {}
            grid = run.preview(networks)
            save_samples(run_dir / "samples", epoch + 1, grid)
            tb.image(run.preview_tag, grid, int(state.step))
            history = metrics.read()
            last = {"epoch": epoch + 1, "step": int(state.step), "time": time.time(), "epoch_seconds": round(elapsed, 3),
                    "cpu_seconds": round(cpu_seconds, 3),
                    "img_per_s": round(count * global_batch / max(elapsed, 1e-9), 3),
                    "seconds_per_step": round(compute_time / max(count, 1), 4),
                    **{f"lr_{name.removesuffix('_optimizer')}": base_lrs[name] * factor for name in optimizers},
                    **{(k if k in run.step_scalars else f"loss/{k}"): v / max(counts[k], 1) for k, v in sums.items()},
                    **val}
            extra, warning = run.end_epoch(epoch + 1, val, history)
            last.update(extra)
            metrics.append(last)
            if warning:
                log.warning(warning)
            tb.scalars(dict(val) | {"throughput/epoch_images_per_s": last["img_per_s"]}, int(state.step))
            tb.flush()
            log.info("epoch %d/%d: %s", epoch + 1, epochs, " ".join(
                f"{k}={v:.4g}" for k, v in last.items() if k.startswith(("loss/", "val_")) or k == "img_per_s"))
            trained_seconds = trained_time(metrics.read(), cfg.optim.time_limit_clock)
            out_of_time = 0 < cfg.optim.time_limit <= trained_seconds and epoch + 1 < epochs
            if (epoch + 1) % cfg.runtime.checkpoint_every == 0 or epoch + 1 == epochs or out_of_time:
                save(f"end of epoch {epoch + 1}")
            if out_of_time:
                log.info("--time-limit %gs reached after %.1fs of training (%s clock, epoch %d)", cfg.optim.time_limit,
                         trained_seconds, cfg.optim.time_limit_clock, epoch + 1)
                plot_loss_curves(metrics.read(), run_dir / "loss_curves.png")
                return TrainResult(run_dir, int(state.epoch), int(state.step), last, False,
                                   strategy.num_replicas_in_sync, time_limited=True)

    plot_loss_curves(metrics.read(), run_dir / "loss_curves.png")
    return TrainResult(run_dir, int(state.epoch), int(state.step), last, False, strategy.num_replicas_in_sync)
