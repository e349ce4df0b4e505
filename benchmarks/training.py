"""Training throughput of one configuration, measured in a fresh process.

Each configuration runs in its own subprocess because the precision policy, the thread pools and
``TF_ENABLE_ONEDNN_OPTS`` are process-wide and fixed at TensorFlow's first op; the child's maximum RSS is
then the peak memory of a training process.

The worker builds exactly what ``reface_tf.tasks.train`` builds (``runtime.setup``, ``DecodedPairs``,
``train_dataset``, the models, the optimisers, ``make_train_step``) and times every step in two parts:
waiting for the next batch from the tf.data iterator (input stall) and running the step until its losses
are on the host (compute), as the loop does with ``float(v)``.

    python -m benchmarks.training --config configs/fast.yaml --steps 20 --warmup 5 --data /tmp/synthetic256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_worker(config_path: str | None, overrides: list[str], data_root: str, steps: int, warmup: int,
               env: dict[str, str] | None = None, timeout: float = 1800) -> dict:
    """Time ``steps`` train steps (after ``warmup``) of a config in a subprocess; returns its JSON + max RSS."""
    cmd = [sys.executable, "-m", "benchmarks.training", "--data", data_root, "--steps", str(steps), "--warmup", str(warmup)]
    if config_path:
        cmd += ["--config", config_path]
    cmd += ["--", *overrides]
    child_env = dict(os.environ)
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env.update(env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"training worker failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def _worker(args: argparse.Namespace, overrides: list[str]) -> dict:
    from reface_tf.config import build_parser, config_from_args, load_yaml, validate

    parser = build_parser()
    cfg, _ = config_from_args(parser.parse_args(overrides), base=load_yaml(args.config) if args.config else None)
    cfg.data.root = args.data
    cfg.data.val_ratio = cfg.data.test_ratio = 0.0
    validate(cfg)

    import numpy as np
    import tensorflow as tf

    from reface_tf.data.pairs import scan_dataset
    from reface_tf.data.pipeline import DecodedPairs, training_batches
    from reface_tf.models import discriminator_from_config, generator_from_config
    from reface_tf.train import runtime
    from reface_tf.tasks.pix2pix.task import make_train_step
    from reface_tf.train.step import make_optimizer

    strategy = runtime.setup(cfg)
    pairs = scan_dataset(cfg.data.root, cfg.data).pairs
    global_batch = cfg.optim.batch_size
    store = DecodedPairs(pairs, cfg.data.load_size, cfg.data.max_pixels, cache=cfg.data.cache)
    with strategy.scope():
        generator, discriminator = generator_from_config(cfg), discriminator_from_config(cfg)
        g_opt, d_opt = make_optimizer(cfg.optim.lr_g, cfg), make_optimizer(cfg.optim.lr_d, cfg)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
    step_fn = make_train_step(generator, discriminator, g_opt, d_opt, cfg, strategy, global_batch)

    steps_per_epoch = len(store) // global_batch
    epochs_needed = -(-(args.warmup + args.steps) // steps_per_epoch) + 1

    def batches():
        """(first batch of an epoch?, batch): epochs back to back from one iterator, as the loop does."""
        ds = training_batches(store, cfg, 0, epochs_needed, global_batch, steps_per_epoch)
        for i, batch in enumerate(strategy.experimental_distribute_dataset(ds)):
            yield i % steps_per_epoch == 0, batch

    steps, warmup = args.steps, args.warmup
    it = batches()
    waits, computes, cpu, epoch_starts = [], [], [], []
    compile_start = time.perf_counter()
    for i in range(warmup + steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        epoch_start, batch = next(it)
        t1 = time.perf_counter()
        logs = {k: float(v) for k, v in step_fn(batch).items()}
        t2 = time.perf_counter()
        if i == 0:
            first_step = t2 - compile_start
        if i >= warmup:
            waits.append(t1 - t0)
            computes.append(t2 - t1)
            cpu.append(time.process_time() - c0)
            epoch_starts.append(epoch_start)
        if not all(np.isfinite(list(logs.values()))):
            raise RuntimeError(f"non-finite loss: {logs}")
    totals = [w + c for w, c in zip(waits, computes)]
    step_s = statistics.median(totals)
    return {
        "batch_size": global_batch,
        "precision": cfg.runtime.precision,
        "jit": cfg.runtime.jit,
        "norm": cfg.model.norm,
        "steps": steps,
        "warmup": warmup,
        "first_step_s": round(first_step, 3),
        "median_step_s": round(step_s, 4),
        "mean_step_s": round(statistics.fmean(totals), 4),
        # The fastest step is the least disturbed by other processes on a shared machine.
        "min_step_s": round(min(totals), 4),
        "img_per_s_best": round(global_batch / min(totals), 3),
        "img_per_s": round(global_batch / step_s, 3),
        # CPU seconds of this process per step: with other processes on the cores this inflates far less than
        # wall time, so it tells configurations apart on a busy machine.
        "median_cpu_s_per_step": round(statistics.median(cpu), 3),
        "cpu_s_per_image": round(statistics.median(cpu) / global_batch, 3),
        "median_wait_s": round(statistics.median(waits), 5),
        "median_compute_s": round(statistics.median(computes), 4),
        "stall_fraction": round(sum(waits) / sum(totals), 4),
        "max_wait_s": round(max(waits), 4),
        # The wait for an epoch's first batch includes releasing the previous epoch's tf.data iterator, which
        # now and then blocks for seconds once (seen after the first epoch only); within an epoch:
        "stall_fraction_within_epochs": round(
            sum(w for w, e in zip(waits, epoch_starts) if not e)
            / max(sum(t for t, e in zip(totals, epoch_starts) if not e), 1e-9), 4),
        "epoch_start_waits_s": [round(w, 4) for w, e in zip(waits, epoch_starts) if e],
        # Every step's wait, in order: shows whether stalls come at epoch starts (a new iterator) or anywhere.
        "wait_s_per_step": [round(w, 4) for w in waits],
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(default)"),
        "intra_threads": cfg.runtime.intra_threads,
        "inter_threads": cfg.runtime.inter_threads,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "final_losses": {k: round(v, 4) for k, v in logs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, overrides = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(_worker(args, overrides)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
