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
        from reface_tf.samples import ensure_demo  # the curated demo set, when present

        return str(ensure_demo("procedure")), "reface_tf.samples.ensure_demo('procedure')"
    except ImportError:
        from reface_tf.data.synthetic import make_synthetic_dataset

        root = make_synthetic_dataset(work / "synthetic_quality", count=120, size=size, seed=1)
        return str(root), "synthetic cartoon pairs (120 at 256x256, seed 1); reface_tf.samples not available"


def _count_train_pairs(root: str, config: str | None) -> int:
    from reface_tf.config import Config, load_yaml
    from reface_tf.data.pairs import scan_dataset, split_pairs

    cfg = load_yaml(config) if config else Config()
    pairs = scan_dataset(root, cfg.data, check_images=False).pairs
    return len(split_pairs(pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)["train"])


def train_budget(name: str, config: str | None, extra: list[str], root: str, images: int, work: Path,
                 epochs: int = 2) -> dict:
    """Train ``config`` on ``root`` for ``images`` images over ``epochs`` epochs; returns the last metrics row."""
    from reface_tf.config import Config, load_yaml

    cfg = load_yaml(config) if config else Config()
    flags = list(extra)
    batch = cfg.optim.batch_size
    if "--batch-size" in flags:
        batch = int(flags[flags.index("--batch-size") + 1])
    steps = max(1, images // (epochs * batch))
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
            "val_l1": round(last["val_l1"], 4), "img_per_s_last_epoch": last["img_per_s"]}


def measure(images: int = 384, fast_config: str = "configs/fast.yaml", work: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="reface_quality_") as tmp:
        work = Path(work or tmp)
        root, source = dataset_root(work)
        tutorial = train_budget("tutorial", None, [], root, images, work)
        fast = train_budget("fast", fast_config, [], root, images, work)
    return {"data": source, "images_budget": images, "tutorial": tutorial, "fast": fast,
            "ssim_delta_fast_minus_tutorial": round(fast["val_ssim"] - tutorial["val_ssim"], 4),
            "within_0_01": fast["val_ssim"] >= tutorial["val_ssim"] - 0.01,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384, help="training images seen by each configuration")
    parser.add_argument("--fast-config", default="configs/fast.yaml")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.images, args.fast_config), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
