"""DCGAN training speed: the project's step against the keras-io DCGAN recipe, same batch, same CPU.

Each setup runs in a fresh subprocess (its maximum RSS is the peak memory of a training process) and times
``--steps`` steps after ``--warmup`` on random images (speed does not depend on the pixels):

* ``reface``: the step ``train.py --task dcgan`` runs — the task's step group through the engine's
  ``make_group_step`` plus the EMA update, with or without DiffAugment (color, translation, cutout);
* ``kerasio``: keras-io's "DCGAN to generate face images" (``examples/generative/dcgan_overriding_train_step.py``,
  CelebA 64x64) re-typed: G = Dense(8*8*128) -> Conv2DTranspose 128/256/512 (k4, s2, LeakyReLU 0.2) -> Conv2D(3,
  k5, sigmoid); D = Conv2D 64/128/128 (k4, s2, LeakyReLU 0.2) -> Flatten -> Dropout 0.2 -> Dense(1, sigmoid); its
  train_step (D on fake + real with 0.05 label noise, then G through D with fresh z; Adam 1e-4, BCE) in a
  tf.function. At 128 px one more Conv2DTranspose(512) stage, as the recipe suggests for larger images.

    python -m benchmarks.dcgan --sizes 64 128 --batch 32 --steps 20 --warmup 5 --report results.json
    python -m benchmarks.dcgan --quality 300 --seeds 0 1 --report quality.json   # DiffAugment on/off, equal time
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPS = ("reface", "reface_diffaugment", "kerasio")


def kerasio_models(size: int):
    import keras
    from keras import layers

    d = keras.Sequential([keras.Input((size, size, 3)),
                          layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
                          layers.Conv2D(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
                          layers.Conv2D(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
                          layers.Flatten(), layers.Dropout(0.2), layers.Dense(1, activation="sigmoid")], name="discriminator")
    ups = [128, 256, 512] + ([512] if size == 128 else [])
    g_layers = [keras.Input((128,)), layers.Dense(8 * 8 * 128), layers.Reshape((8, 8, 128))]
    for channels in ups:
        g_layers += [layers.Conv2DTranspose(channels, 4, strides=2, padding="same"), layers.LeakyReLU(0.2)]
    g_layers += [layers.Conv2D(3, 5, padding="same", activation="sigmoid")]
    return keras.Sequential(g_layers, name="generator"), d


def kerasio_step(size: int, batch: int):
    import keras
    import tensorflow as tf

    generator, discriminator = kerasio_models(size)
    d_opt, g_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    loss_fn = keras.losses.BinaryCrossentropy()

    @tf.function
    def step(real):
        z = tf.random.normal((batch, 128))
        fake = generator(z)
        combined = tf.concat([fake, real], axis=0)
        labels = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            d_loss = loss_fn(labels, discriminator(combined))
        grads = tape.gradient(d_loss, discriminator.trainable_weights)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_weights))
        z = tf.random.normal((batch, 128))
        with tf.GradientTape() as tape:
            g_loss = loss_fn(tf.zeros((batch, 1)), discriminator(generator(z)))
        grads = tape.gradient(g_loss, generator.trainable_weights)
        g_opt.apply_gradients(zip(grads, generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}

    return lambda batch_: step(batch_["real"]) if isinstance(batch_, dict) else step(batch_)


def reface_step(size: int, batch: int, diffaugment: bool):
    import tensorflow as tf

    from reface_tf import tasks
    from reface_tf.config import Config
    from reface_tf.train.step import make_ema_update, make_group_step, make_optimizer

    tasks.declare("dcgan")
    from reface_tf.tasks.dcgan.task import build_networks, dcgan_losses
    from reface_tf.train.task import EMA, Phase, StepGroup

    cfg = Config.for_task("dcgan")
    cfg.faces.image_size, cfg.optim.batch_size = size, batch
    cfg.dcgan.diffaugment = "color,translation,cutout" if diffaugment else ""
    strategy = tf.distribute.get_strategy()
    networks = build_networks(cfg)
    opts = {"g_optimizer": make_optimizer(2e-4, cfg), "d_optimizer": make_optimizer(2e-4, cfg)}
    group = StepGroup("gan", (Phase("d_total", "d_optimizer", ("discriminator",)), Phase("g_total", "g_optimizer", ("generator",))),
                      dcgan_losses(networks["generator"], networks["discriminator"], cfg))
    step = make_group_step(group, networks, opts, cfg, strategy, batch)
    ema = make_ema_update({"generator_ema": EMA("generator", 0.999, warmup=True)}, networks)
    count = tf.constant(0, tf.int64)

    def run(batch_):
        out = step(batch_, count)
        ema(count)
        return out

    return run


def _worker(args) -> dict:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    size, batch = args.size, args.batch
    real = tf.constant(rng.uniform(-1 if args.setup != "kerasio" else 0, 1, (batch, size, size, 3)), tf.float32)
    data = {"real": real, "z": tf.random.normal((batch, 100)), "aug_real": tf.ones((batch, 2), tf.int64),
            "aug_fake": tf.ones((batch, 2), tf.int64) * 2}
    step = kerasio_step(size, batch) if args.setup == "kerasio" else reface_step(size, batch, args.setup == "reface_diffaugment")
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        out = step(data)
        _ = {k: float(v) for k, v in out.items()}  # the losses on the host, as the training loop reads them
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"setup": args.setup, "size": size, "batch": batch, "median_step_s": median, "img_per_s": batch / median,
            "steps": args.steps, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def generator_scores(report: dict, embedders=("facenet", "sface")) -> dict:
    """The benchmark row's figures of an ``evaluate.py`` generator report: KID, FD, floor and memorisation."""
    gen, floor = report["generated"], report["floor_real_vs_real"]
    row = {"n_generated": gen["n_generated"], "n_real": gen["n_real"]}
    for emb in embedders:
        row |= {f"kid_{emb}": gen[f"kid_{emb}"], f"kid_{emb}_std": gen[f"kid_{emb}_std"], f"fd_{emb}": gen[f"fd_{emb}"],
                f"floor_kid_{emb}": floor[f"kid_{emb}"], f"nearest_train_median_{emb}": gen["memorisation"][emb]["median"]}
    return row


def quality(seconds: float, seeds: list[int], out_root: Path) -> list[dict]:
    """Train the default and the no-DiffAugment setting for ``seconds`` of training steps per seed on the demo
    faces (``python train.py --task dcgan --time-limit``), then score each run with ``evaluate.py``."""
    rows = []
    for seed in seeds:
        for name, extra in (("default (DiffAugment color,translation,cutout)", []), ("no DiffAugment", ["--diffaugment", ""])):
            run_dir = out_root / f"{'noaug' if extra else 'default'}-seed{seed}"
            train = [sys.executable, "train.py", "--task", "dcgan", "--run-dir", str(run_dir), "--seed", str(seed),
                     "--epochs", "100000", "--time-limit", str(seconds), "--progress", "none", "--metric-embedder", "none", *extra]
            evaluate = [sys.executable, "evaluate.py", "--run-dir", str(run_dir), "--embedders", "facenet,sface",
                        "--no-progress", "--out", str(run_dir / "eval")]
            for cmd in (train, evaluate):
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
                if proc.returncode != 0:
                    raise SystemExit(f"{' '.join(cmd[1:3])} failed: {proc.stderr.strip()[-1500:]}")
            report = json.loads((run_dir / "eval" / "report.json").read_text())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            row = {"setup": name, "seed": seed, "steps": history[-1]["step"], "train_seconds": sum(r["epoch_seconds"] for r in history),
                   **generator_scores(report)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--report", help="write the results as JSON here")
    parser.add_argument("--quality", type=float, default=0, metavar="SECONDS",
                        help="instead: train with and without DiffAugment for SECONDS per seed on the demo faces and "
                             "compare kid_facenet / kid_sface (fd when there are enough samples)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="--quality: seeds")
    parser.add_argument("--work-dir", default="/tmp/reface_dcgan_quality", help="--quality: where the runs go")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    if args.quality:
        load_before = os.getloadavg()
        rows = quality(args.quality, args.seeds, Path(args.work_dir))
        if args.report:
            Path(args.report).write_text(json.dumps({"quality_seconds": args.quality, "rows": rows, "load_before": load_before,
                                                     "load_after": os.getloadavg()}, indent=2))
        return 0
    from benchmarks.run import json_worker

    rows = []
    load_before = os.getloadavg()
    for size in args.sizes:
        for setup in args.setups:
            cmd = [sys.executable, "-m", "benchmarks.dcgan", "--worker", "--setup", setup, "--size", str(size),
                   "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            row = json_worker(cmd, f"{setup} {size}px")
            rows.append(row)
            print(f"{size:4d}px {setup:20s} {row['img_per_s']:7.1f} img/s  median step {row['median_step_s'] * 1000:7.1f} ms  "
                  f"peak RSS {row['peak_rss_gb']:.2f} GB", flush=True)
    report = {"rows": rows, "load_before": load_before, "load_after": os.getloadavg(), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
