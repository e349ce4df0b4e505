"""Quality at a fixed budget: the tutorial and the fast configuration see the SAME number of images.

Both train with ``python train.py`` (the real command) on the same data, split and seed, for a budget of
``images`` training images (epochs x steps x batch), then the held-out validation SSIM of the last epoch
(``val_ssim`` in ``metrics.jsonl``) is compared. The fast configuration must stay within 0.01 of the
tutorial's.

Data: ``reface_tf.samples.ensure_demo("procedure")`` when that module exists, otherwise synthetic pairs.

    python -m benchmarks.quality --images 384
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dataset_root(work: Path, size: int = 256) -> tuple[str, str]:
    try:
        from reface_tf.samples import ensure_demo  # the demo set of aligned real faces, built on first use

        return str(ensure_demo("procedure")), "reface_tf.samples.ensure_demo('procedure')"
    except Exception as err:  # no module yet, or the samples cannot be fetched: synthetic pairs still compare speed/quality
        from reface_tf.data.synthetic import make_synthetic_dataset

        root = make_synthetic_dataset(work / "synthetic_quality", count=120, size=size, seed=1)
        return str(root), f"synthetic cartoon pairs (120 at 256x256, seed 1); demo set unavailable ({type(err).__name__})"


def _count_train_pairs(root: str, config: str | None) -> int:
    from reface_tf.config import Config, load_yaml
    from reface_tf.data.pairs import scan_dataset, split_pairs

    cfg = load_yaml(config) if config else Config()
    pairs = scan_dataset(root, cfg.data, check_images=False).pairs
    return len(split_pairs(pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)["train"])


def plan_budget(images: int, train_pairs: int, largest_batch: int = 8) -> tuple[int, int]:
    """(epochs, images per epoch) so both configurations see exactly ``images`` images.

    An epoch is capped by the training split, and the images of an epoch must fill whole batches of every
    configuration, so the per-epoch count is a multiple of the largest batch that fits in the split.
    """
    per_epoch_max = max(largest_batch, (train_pairs // largest_batch) * largest_batch)
    epochs = max(1, -(-images // per_epoch_max))
    per_epoch = max(largest_batch, (images // epochs) // largest_batch * largest_batch)
    return epochs, per_epoch


def train_budget(name: str, config: str | None, extra: list[str], root: str, epochs: int, per_epoch: int,
                 work: Path) -> dict:
    """Train ``config`` on ``root`` for ``epochs`` x ``per_epoch`` images; returns the last epoch's metrics."""
    from reface_tf.config import Config, load_yaml

    cfg = load_yaml(config) if config else Config()
    flags = list(extra)
    batch = cfg.optim.batch_size
    if "--batch-size" in flags:
        batch = int(flags[flags.index("--batch-size") + 1])
    steps = per_epoch // batch
    run_dir = work / f"run_{name}"
    cmd = [sys.executable, "train.py", "--data", root, "--epochs", str(epochs), "--steps-per-epoch", str(steps),
           "--run-dir", str(run_dir), "--progress", "none", "--checkpoint-every", "1000"]
    if config:
        cmd[2:2] = ["--config", config]
    cmd += flags
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: train.py failed: {proc.stderr.strip()[-2000:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    return {"config": config or "(defaults = TF tutorial)", "flags": flags, "batch_size": batch, "epochs": epochs,
            "steps": steps * epochs, "images_seen": steps * epochs * batch, "wall_s": round(time.perf_counter() - t0, 1),
            "val_ssim": round(last["val_ssim"], 4), "val_psnr": round(last["val_psnr"], 3),
            "val_l1": round(last["val_l1"], 4), "img_per_s_last_epoch": last["img_per_s"],
            "val_ssim_by_epoch": [round(r["val_ssim"], 4) for r in rows]}


def measure(images: int = 384, fast_config: str = "configs/fast.yaml", work: Path | None = None,
            fast_flags: list[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="reface_quality_") as tmp:
        work = Path(work or tmp)
        root, source = dataset_root(work)
        train_pairs = _count_train_pairs(root, None)
        epochs, per_epoch = plan_budget(images, train_pairs)
        tutorial = train_budget("tutorial", None, [], root, epochs, per_epoch, work)
        fast = train_budget("fast", fast_config, fast_flags or [], root, epochs, per_epoch, work)
    return {"data": source, "train_pairs": train_pairs, "images_budget": epochs * per_epoch, "tutorial": tutorial, "fast": fast,
            "ssim_delta_fast_minus_tutorial": round(fast["val_ssim"] - tutorial["val_ssim"], 4),
            "within_0_01": fast["val_ssim"] >= tutorial["val_ssim"] - 0.01,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384, help="training images seen by each configuration")
    parser.add_argument("--fast-config", default="configs/fast.yaml")
    parser.add_argument("--work", help="keep the runs in this folder (default: a temporary one)")
    args, fast_flags = parser.parse_known_args(argv)  # unknown flags go to the fast configuration's train.py
    print(json.dumps(measure(args.images, args.fast_config, Path(args.work) if args.work else None, fast_flags), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
