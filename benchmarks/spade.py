"""SPADE vs Pix2Pix on the demo segmentation maps at equal wall-clock training time, and SPADE's speed.

Quality (``--quality SECONDS``): for each seed, SPADE (``configs/spade_demo.yaml``) and the project's Pix2Pix
(its default config, fed the ``A/`` palette pictures, at the SPADE demo's 64x64 so both are scored on the same
pixels: ``--image-size 64 --load-size 72 --generator-depth 6``, the depth that keeps the default's 1x1
bottleneck) each train for SECONDS of training steps (``train.py --time-limit``) on the demo ``segmap`` dataset,
split by its ``groups.csv`` (the same seed gives both models the same held-out groups). ``evaluate.py`` then
scores each run on its test split: landmark mIoU (:mod:`reface_tf.metrics.landmark_miou`), PSNR/SSIM and SFace
identity against the real photo, and the FaceNet-embedding KID against the real test photos. Alongside, per
seed: the floors (mean training face; the palette picture as the output) and the landmark mIoU of the real
test photos themselves at 64x64, the most a 64x64 face can score.

Speed (``--speed``): SPADE at its default (NVlabs) widths, batch 1, at each ``--sizes``: training images/s (the
task's step group through the engine's step, median of ``--steps`` after ``--warmup``) and serving latency of
the export's ``serving_default`` function (batch 1, median of ``--calls`` calls after 3 warm-up calls). Each
size runs in a fresh subprocess.

    python -m benchmarks.spade --quality 330 --seeds 0 1 --report benchmarks/results/<UTC>-spade-quality-330s.json
    python -m benchmarks.spade --speed --sizes 128 256 --report benchmarks/results/<UTC>-spade-speed.json

The CPU may be shared: the load averages before and after are recorded with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("spade", "pix2pix")
# Pix2Pix at the SPADE demo's resolution; everything else its defaults.
PIX2PIX_AT_64 = ["--image-size", "64", "--load-size", "72", "--generator-depth", "6"]
# The metrics of the table (evaluate.py's metrics.json keys).
METRICS = ("landmark_miou", "landmark_undetected", "psnr", "ssim", "identity_cosine", "kid_facenet")
FLOORS = ("baseline_psnr", "baseline_ssim", "floor_mean_face_psnr", "floor_mean_face_ssim")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:4])} failed: {proc.stderr.strip()[-1500:]}")


def train_command(model: str, run_dir: Path, seed: int, seconds: float, segmap: Path) -> list[str]:
    common = ["--run-dir", str(run_dir), "--seed", str(seed), "--epochs", "100000", "--time-limit", str(seconds),
              "--progress", "none"]
    if model == "spade":
        return [sys.executable, "train.py", "--config", "configs/spade_demo.yaml", *common]
    return [sys.executable, "train.py", "--data", str(segmap), *PIX2PIX_AT_64, *common]


def reference_scores(run_dir: Path) -> dict:
    """Landmark mIoU of the real test photos at the model size (the ceiling) and of the mean training face."""
    import numpy as np

    from reface_tf.data.pairs import read_split
    from reface_tf.data.pipeline import DecodedPairs, resize_uint8, to_uint8
    from reface_tf.eval.evaluate import label_map_of
    from reface_tf.metrics.landmark_miou import LandmarkMIoU, summarize
    from reface_tf.synth.segmaps import load_label_png
    from reface_tf.tasks import run_config
    from reface_tf.tasks.pix2pix.floors import mean_target

    cfg = run_config(run_dir)
    size = cfg.data.image_size
    test, train = read_split(run_dir, "test"), read_split(run_dir, "train")
    mean_face = to_uint8(mean_target(DecodedPairs(train, size, cfg.data.max_pixels, cache=False), size))
    photos = DecodedPairs(test, size, cfg.data.max_pixels, cache=False)
    real, mean = [], []
    with LandmarkMIoU() as scorer:
        for i, pair in enumerate(test):
            ids = load_label_png(label_map_of(pair))
            real.append(scorer.score(np.asarray(resize_uint8(photos.get(i)[1], size), np.uint8), ids))
            mean.append(scorer.score(mean_face, ids))
    return {"real_photo": summarize(real), "mean_face": summarize(mean), "test_ids": [p.id for p in test]}


def quality(seconds: float, seeds: list[int], out_root: Path, reuse: bool) -> list[dict]:
    from reface_tf.samples import ensure_demo

    segmap = ensure_demo("segmap")
    rows = []
    for seed in seeds:
        for model in MODELS:
            run_dir = out_root / f"{model}-seed{seed}"
            if not (reuse and (run_dir / "metrics.jsonl").is_file()):
                started = time.time()
                _run(train_command(model, run_dir, seed, seconds, segmap))
                wall = time.time() - started
            else:
                wall = None
            _run([sys.executable, "evaluate.py", "--run-dir", str(run_dir), "--no-progress", "--out", str(run_dir / "eval")])
            summary = json.loads((run_dir / "eval" / "metrics.json").read_text())
            history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            train_seconds = sum(r["epoch_seconds"] for r in history)
            cfg_batch = 4 if model == "spade" else 1
            row = {"model": model, "seed": seed, "run_dir": str(run_dir), "steps": history[-1]["step"],
                   "epochs": history[-1]["epoch"], "train_seconds": train_seconds, "process_wall_seconds": wall,
                   "train_img_per_s": history[-1]["step"] * cfg_batch / train_seconds, "n_test": summary["n"],
                   **{k: summary.get(k) for k in (*METRICS, *FLOORS, "landmark_iou", "landmark_n")},
                   "reference": reference_scores(run_dir), "load_after": os.getloadavg()}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "reference"}), flush=True)
    return rows


def _mean_std(values) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(rows: list[dict]) -> dict:
    """Mean and std over seeds of every metric, per model, and of the floors and references."""
    table = {}
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        table[model] = {k: _mean_std([r[k] for r in mine]) for k in (*METRICS, "train_img_per_s", "steps")}
        classes = sorted({c for r in mine for c in (r["landmark_iou"] or {})})
        table[model]["landmark_iou"] = {c: _mean_std([(r["landmark_iou"] or {}).get(c) for r in mine]) for c in classes}
    spade = [r for r in rows if r["model"] == "spade"] or rows
    table["floors"] = {k: _mean_std([r[k] for r in spade]) for k in FLOORS}
    table["floors"]["mean_face_landmark_miou"] = _mean_std([r["reference"]["mean_face"]["landmark_miou"] for r in spade])
    table["floors"]["real_photo_landmark_miou"] = _mean_std([r["reference"]["real_photo"]["landmark_miou"] for r in spade])
    return table


def markdown(table: dict) -> str:
    def cell(pair, digits=3):
        mean, std = pair
        return "n/a" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"

    lines = ["| model | landmark mIoU | not re-detected | PSNR dB | SSIM | SFace identity | kid_facenet | train img/s |",
             "|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
        if model in table:
            t = table[model]
            lines.append(f"| {model} | {cell(t['landmark_miou'])} | {cell(t['landmark_undetected'], 1)} | "
                         f"{cell(t['psnr'], 2)} | {cell(t['ssim'])} | {cell(t['identity_cosine'])} | "
                         f"{cell(t['kid_facenet'], 4)} | {cell(t['train_img_per_s'], 2)} |")
    f = table["floors"]
    lines.append(f"| floor: mean training face | {cell(f['mean_face_landmark_miou'])} | | {cell(f['floor_mean_face_psnr'], 2)} | "
                 f"{cell(f['floor_mean_face_ssim'])} | | | |")
    lines.append(f"| floor: palette picture as output | | | {cell(f['baseline_psnr'], 2)} | {cell(f['baseline_ssim'])} | | | |")
    lines.append(f"| ceiling: the real photo at 64x64 | {cell(f['real_photo_landmark_miou'])} | | | | | | |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- speed


def _speed_worker(size: int, steps: int, warmup: int, calls: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from reface_tf import tasks
    from reface_tf.config import Config, validate

    tasks.declare("spade")
    from reface_tf.tasks.spade.export import SpadeExport
    from reface_tf.tasks.spade.task import SpadeTask, gan_group
    from reface_tf.train.step import make_group_step, make_optimizer

    cfg = Config.for_task("spade")
    cfg.data.image_size = cfg.data.load_size = size
    cfg.optim.batch_size = 1
    validate(cfg, check_paths=False)
    networks = SpadeTask().build_networks(cfg)
    opts = {"g_optimizer": make_optimizer(cfg.optim.lr_g, cfg), "d_optimizer": make_optimizer(cfg.optim.lr_d, cfg)}
    step = make_group_step(gan_group(networks, cfg), networks, opts, cfg, tf.distribute.get_strategy(), 1)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.spade.num_classes, (1, size, size)).astype(np.uint8)
    batch = {"labels": tf.one_hot(ids.astype(np.int32), cfg.spade.num_classes), "z": tf.random.normal((1, cfg.spade.z_dim)),
             "target": tf.constant(rng.uniform(-1, 1, (1, size, size, 3)), tf.float32)}
    count = tf.constant(0, tf.int64)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        _ = {k: float(v) for k, v in step(batch, count).items()}  # the losses on the host, as the loop reads them
        if i >= warmup:
            times.append(time.perf_counter() - start)
    serve = SpadeExport(networks["generator"], cfg).serve_labels
    labels = tf.constant(ids)
    latencies = []
    for i in range(3 + calls):
        start = time.perf_counter()
        serve(labels)["images"].numpy()
        if i >= 3:
            latencies.append(time.perf_counter() - start)
    return {"size": size, "batch": 1, "train_median_step_s": statistics.median(times),
            "train_img_per_s": 1 / statistics.median(times), "train_steps": steps,
            "serve_median_ms": 1000 * statistics.median(latencies), "serve_calls": calls,
            "widths": {"gen_filters": cfg.spade.gen_filters, "num_upsampling": cfg.spade.num_upsampling,
                       "disc_filters": cfg.spade.disc_filters, "perceptual": cfg.spade.perceptual}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=float, default=0, metavar="SECONDS", help="train each model SECONDS per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--work-dir", default="/tmp/reface_spade_quality", help="--quality: where the runs go")
    parser.add_argument("--reuse", action="store_true", help="--quality: evaluate runs already in --work-dir again")
    parser.add_argument("--speed", action="store_true", help="SPADE training images/s and serving latency")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--report", help="write the results as JSON here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_speed_worker(args.worker, args.steps, args.warmup, args.calls)))
        return 0
    if not (args.quality or args.speed):
        parser.error("pass --quality SECONDS and/or --speed")
    report = {"command": [sys.executable, "-m", "benchmarks.spade", *(argv if argv is not None else sys.argv[1:])],
              "load_before": os.getloadavg(), "cpu_count": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    started = time.time()
    if args.quality:
        rows = quality(args.quality, args.seeds, Path(args.work_dir), args.reuse)
        report |= {"quality_seconds": args.quality, "rows": rows, "table": aggregate(rows)}
        print(markdown(report["table"]), flush=True)
    if args.speed:
        from benchmarks.run import json_worker

        speed = []
        for size in args.sizes:
            cmd = [sys.executable, "-m", "benchmarks.spade", "--worker", str(size), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--calls", str(args.calls)]
            row = json_worker(cmd, f"speed {size}px")
            speed.append(row)
            print(f"{size}px: training {row['train_img_per_s']:.3f} img/s (median step {row['train_median_step_s']:.2f} s), "
                  f"serving batch 1 median {row['serve_median_ms']:.0f} ms", flush=True)
        report["speed"] = speed
    report |= {"load_after": os.getloadavg(), "wall_seconds": time.time() - started}
    if args.report:
        from benchmarks.run import write_atomic

        write_atomic(Path(args.report), json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
