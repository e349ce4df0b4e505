"""Held-out quality at equal training time, and time-to-quality, of the default, the tutorial and the fast setups.

Each configuration trains with ``python train.py`` (the real command) on real aligned faces for the same number
of seconds of training steps (``--time-limit``; validation excluded), is exported with ``python export.py``, and
its SavedModel is scored with ``python evaluate.py --model`` on the run's held-out test pairs (whole identity
groups: the demo's photo faces and video blocks never straddle splits). Next to it, the two floors on the same
test pairs: the mean training face predicted everywhere, and output = input.

Time-to-quality: the seconds of training until the validation PSNR *and* SSIM of an epoch first reach the
tutorial setting's final values on the same seed (same split), read from ``metrics.jsonl``.

Data: the demo datasets (``reface_tf.samples.ensure_demo``): ``procedure`` (photo -> simulated procedure) and the
hard ``sketch`` variant (pencil sketch -> photo). The benchmark refuses to run on anything else (no synthetic
fallback: cartoon pairs say nothing about faces).

    python -m benchmarks.quality --seconds 1200 --seeds 0 1          # the full measurement (about 4 hours)
    python -m benchmarks.quality --seconds 300 --seeds 0 1 --work bench_runs/quality
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (config file or None, extra train.py flags). "tutorial" is the TF tutorial exactly (batch norm with batch
# statistics at inference, innermost norm included); "default" is what `python train.py --data D` trains.
SETUPS: dict[str, tuple[str | None, list[str]]] = {
    "default": (None, []),
    "tutorial": (None, ["--norm", "batch", "--inference-mode", "train"]),
    "fast": ("configs/fast.yaml", []),
}
VARIANTS = ("procedure", "sketch")
# Images per epoch: a multiple of every batch size in use, small enough that validation (which sets the
# resolution of time-to-quality) runs every 20-40 s of training at 256x256 on 2 cores.
IMAGES_PER_EPOCH = 24


def _run(cmd: list[str], log_path: Path) -> None:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as log_file:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = log_path.read_text()[-1500:]
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed ({proc.returncode}), see {log_path}:\n{tail}")


def dataset_facts(root: Path, seed: int) -> dict:
    """Pair and identity-group counts of ``root`` and of the split that ``seed`` gives."""
    from reface_tf.config import Config
    from reface_tf.data.pairs import scan_dataset, split_pairs

    cfg = Config()
    pairs = scan_dataset(root, cfg.data, check_images=False).pairs
    splits = split_pairs(pairs, cfg.data.val_ratio, cfg.data.test_ratio, seed)
    return {"pairs": len(pairs), "identities": len({p.group for p in pairs}),
            **{f"{name}_pairs": len(ps) for name, ps in splits.items()},
            **{f"{name}_identities": len({p.group for p in ps}) for name, ps in splits.items()}}


def test_floors(run_dir: Path) -> dict:
    """Mean-training-face and output = input scores on the run's test pairs (PSNR dB, SSIM; float64)."""
    import numpy as np

    from reface_tf.config import load_yaml
    from reface_tf.data.pairs import read_splits
    from reface_tf.data.pipeline import DecodedPairs
    from reface_tf.tasks.pix2pix.floors import compute_floors, mean_target

    cfg = load_yaml(run_dir / "config.yaml")
    splits = read_splits(run_dir)
    size = cfg.data.image_size
    mean_face = mean_target(DecodedPairs(splits["train"], size, cfg.data.max_pixels, cache=False), size)
    test = DecodedPairs(splits["test"], size, cfg.data.max_pixels, cache=False)
    batches = []
    for i in range(len(test)):
        a, b = test.get(i)
        batches.append((a[None].astype(np.float64) / 127.5 - 1.0, b[None].astype(np.float64) / 127.5 - 1.0))
    f = compute_floors(mean_face, batches)
    return {"mean_face_psnr": f.mean_face_psnr, "mean_face_ssim": f.mean_face_ssim,
            "identity_psnr": f.identity_psnr, "identity_ssim": f.identity_ssim}


def train_export_score(setup: str, data: Path, seed: int, seconds: float, work: Path) -> dict:
    config, flags = SETUPS[setup]
    from reface_tf.config import load_yaml, Config

    batch = (load_yaml(ROOT / config) if config else Config()).optim.batch_size
    run_dir = work / f"{setup}-seed{seed}"
    cmd = [sys.executable, "train.py", "--data", str(data), "--epochs", "100000", "--time-limit", str(seconds),
           "--steps-per-epoch", str(IMAGES_PER_EPOCH // batch), "--seed", str(seed), "--run-dir", str(run_dir),
           "--progress", "none", "--checkpoint-every", "100000", "--image-every", "100000", *flags]
    if config:
        cmd[2:2] = ["--config", config]
    if not (run_dir / "checkpoints").is_dir():  # a finished run is reused when the benchmark is restarted
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        _run(cmd, work / f"{setup}-seed{seed}.train.log")
    export_dir = work / f"{setup}-seed{seed}.export"
    if not (export_dir / "1").is_dir():
        _run([sys.executable, "export.py", "--run-dir", str(run_dir), "--out", str(export_dir)],
             work / f"{setup}-seed{seed}.export.log")
    eval_dir = work / f"{setup}-seed{seed}.eval"
    if not (eval_dir / "metrics.json").is_file():
        _run([sys.executable, "evaluate.py", "--model", str(export_dir / "1"), "--out", str(eval_dir), "--no-identity",
              "--no-progress"], work / f"{setup}-seed{seed}.eval.log")
    scores = json.loads((eval_dir / "metrics.json").read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    elapsed, curve = 0.0, []
    for row in rows:
        elapsed += row["epoch_seconds"]
        curve.append((round(elapsed, 1), round(row["val_psnr"], 3), round(row["val_ssim"], 4)))
    return {"setup": setup, "seed": seed, "config": config, "flags": flags, "batch_size": batch,
            "steps": rows[-1]["step"], "images_seen": rows[-1]["step"] * batch, "train_seconds": round(elapsed, 1),
            "seconds_per_step": round(statistics.median(r["seconds_per_step"] for r in rows), 4),
            "test_psnr": scores["psnr"], "test_ssim": scores["ssim"], "test_pairs": scores["n"],
            "val_curve": curve, "floors": test_floors(run_dir)}


def first_reached(curve: list[tuple[float, float, float]], psnr: float, ssim: float) -> float | None:
    """Training seconds at the first epoch whose validation PSNR and SSIM both reach the targets (None: never)."""
    return next((t for t, p, s in curve if p >= psnr and s >= ssim), None)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict]) -> dict:
    """Per variant and setup: test PSNR/SSIM mean ± std over seeds, time-to-quality, and the floors.

    The quality target of a seed is the tutorial setting's final validation PSNR/SSIM on that seed's split
    (seeds split the identities differently, so one split's values say nothing about another's).
    """
    out: dict = {}
    for variant in sorted({r["variant"] for r in runs}):
        vr = [r for r in runs if r["variant"] == variant]
        targets = {r["seed"]: r["val_curve"][-1][1:] for r in vr if r["setup"] == "tutorial"}
        table = {}
        for setup in SETUPS:
            sr = [r for r in vr if r["setup"] == setup]
            if not sr:
                continue
            reached = [first_reached(r["val_curve"], *targets[r["seed"]]) if r["seed"] in targets else None for r in sr]
            table[setup] = {
                "test_psnr": _mean_std([r["test_psnr"] for r in sr]), "test_ssim": _mean_std([r["test_ssim"] for r in sr]),
                "seconds_to_tutorial_quality": reached,
                "steps": [r["steps"] for r in sr], "seconds_per_step": [r["seconds_per_step"] for r in sr]}
        floors = {k: _mean_std([r["floors"][k] for r in vr]) for k in vr[0]["floors"]}
        out[variant] = {"tutorial_final_val": {str(k): v for k, v in targets.items()}, "setups": table, "floors": floors}
    return out


def markdown(summary: dict, seconds: float, seeds: list[int], facts: dict) -> str:
    fmt = lambda ms, d: f"{ms[0]:.{d}f} ± {ms[1]:.{d}f}"  # noqa: E731
    lines = [f"Each setup trained {seconds:g} s of training steps per seed (seeds {', '.join(map(str, seeds))}); "
             "test = exported SavedModel on held-out identity groups; time-to-quality = training seconds until "
             "validation PSNR and SSIM first reach the tutorial setting's final values on the same seed and split "
             "(— = not within the budget).", "",
             "| data | setup | test PSNR (dB) | test SSIM | s to tutorial quality (per seed) | steps | s/step |",
             "|---|---|---|---|---|---|---|"]
    for variant, v in summary.items():
        for setup, row in v["setups"].items():
            reached = ", ".join("—" if t is None else f"{t:.0f}" for t in row["seconds_to_tutorial_quality"])
            lines.append(f"| {variant} | {setup} | {fmt(row['test_psnr'], 2)} | {fmt(row['test_ssim'], 4)} | {reached} | "
                         f"{', '.join(map(str, row['steps']))} | {statistics.fmean(row['seconds_per_step']):.3f} |")
        f = v["floors"]
        lines.append(f"| {variant} | floor: mean training face | {fmt(f['mean_face_psnr'], 2)} | {fmt(f['mean_face_ssim'], 4)} | | | |")
        lines.append(f"| {variant} | floor: output = input | {fmt(f['identity_psnr'], 2)} | {fmt(f['identity_ssim'], 4)} | | | |")
    lines.append("")
    for variant, fv in facts.items():
        lines.append(f"{variant}: {fv['pairs']} pairs of {fv['identities']} identities; per seed, test "
                     + ", ".join(f"{s['test_pairs']} pairs / {s['test_identities']} identities (seed {seed})"
                                 for seed, s in fv["splits"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1200, help="training seconds per run (default 1200)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="at least 2 for a std")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--work", default="bench_runs/quality", help="runs, exports and logs (finished runs are reused)")
    parser.add_argument("--out", help="also write the summary JSON here")
    parser.add_argument("--report", metavar="JSON", help="print the table of a saved --out file instead of training")
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(markdown(summarise(saved["runs"]), saved["seconds"], saved["seeds"],
                       {k: {**v, "splits": {int(s): f for s, f in v["splits"].items()}} for k, v in saved["facts"].items()}))
        return 0

    from reface_tf.errors import RefaceError
    from reface_tf.samples import ensure_demo

    work = Path(args.work).resolve()
    runs, facts = [], {}
    started = time.time()
    for variant in args.variants:
        try:
            data = ensure_demo(variant)
        except RefaceError as err:
            print(f"error: the {variant} demo dataset is unavailable ({err}); this benchmark runs on real faces only",
                  file=sys.stderr)
            return 2
        facts[variant] = dataset_facts(data, args.seeds[0])
        facts[variant]["splits"] = {s: dataset_facts(data, s) for s in args.seeds}
        print(f"{variant}: {data}: {facts[variant]['pairs']} pairs, {facts[variant]['identities']} identities", flush=True)
        for seed in args.seeds:
            for setup in args.setups:
                t0 = time.time()
                run = train_export_score(setup, data, seed, args.seconds, work / variant)
                run["variant"] = variant
                runs.append(run)
                print(f"  {setup} seed {seed}: {run['steps']} steps, test PSNR {run['test_psnr']:.2f} dB, "
                      f"SSIM {run['test_ssim']:.4f} ({time.time() - t0:.0f} s, load {os.getloadavg()[0]:.2f})", flush=True)
    summary = summarise(runs)
    result = {"seconds": args.seconds, "seeds": args.seeds, "facts": facts, "summary": summary, "runs": runs,
              "wall_s": round(time.time() - started), "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(summary, args.seconds, args.seeds, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
