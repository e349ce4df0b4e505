"""What a run shows while it trains: TensorBoard, sample grids, ``metrics.jsonl``, progress, the loss curve."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from reface_tf.data.images import save_png_atomic
from reface_tf.data.pipeline import to_uint8

log = logging.getLogger(__name__)


def sample_grid(inputs: np.ndarray, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rows of ``input | output | target`` (uint8 RGB) from [-1, 1] batches, as the seed's save_some_examples."""
    def rgb(x: np.ndarray) -> np.ndarray:
        x = to_uint8(x)
        return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x

    rows = [np.concatenate([rgb(i), rgb(o), rgb(t)], axis=1) for i, o, t in zip(inputs, outputs, targets)]
    return np.concatenate(rows, axis=0)


class MetricsLog:
    """``metrics.jsonl``: one JSON object per finished epoch, appended and flushed at once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def truncate_after(self, epochs_done: int) -> None:
        """Drop lines of epochs a resumed run will train again (written after its last checkpoint)."""
        if not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class Progress:
    """A tqdm bar on a terminal, plain log lines every ``every`` steps otherwise (CI, redirected output)."""

    def __init__(self, mode: str, total: int, epoch: int, epochs: int, every: int, initial: int = 0,
                 keys: tuple[str, ...] = ("g_total", "l1", "d_total")):
        self.keys = keys  # the step logs shown, in this order (the task's progress_keys)
        self.use_bar = mode == "bar" or (mode == "auto" and sys.stdout.isatty())
        self.quiet = mode == "none"
        self.every, self.epoch, self.epochs, self.total = every, epoch, epochs, total
        self.count, self.start = initial, time.perf_counter()
        self.bar = None
        if self.use_bar and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=f"epoch {epoch}/{epochs}", unit="step", dynamic_ncols=True, leave=False)

    def update(self, logs: dict[str, float], images_per_second: float) -> None:
        self.count += 1
        shown = {k: logs[k] for k in self.keys if k in logs}
        if self.bar is not None:
            self.bar.set_postfix({**{k: f"{v:.3f}" for k, v in shown.items()}, "img/s": f"{images_per_second:.2f}"}, refresh=False)
            self.bar.update(1)
        elif not self.quiet and (self.count % self.every == 0 or self.count == self.total):
            text = " ".join(f"{k}={v:.4f}" for k, v in shown.items())
            log.info("epoch %d/%d step %d/%d %s %.2f img/s", self.epoch, self.epochs, self.count, self.total, text, images_per_second)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoard:
    def __init__(self, logdir: str | os.PathLike):
        self.writer = tf.summary.create_file_writer(str(logdir))

    def text(self, name: str, value: str, step: int) -> None:
        with self.writer.as_default():
            tf.summary.text(name, value, step=step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        with self.writer.as_default():
            for name, value in values.items():
                tf.summary.scalar(name, value, step=step)

    def image(self, name: str, grid: np.ndarray, step: int) -> None:
        with self.writer.as_default():
            tf.summary.image(name, grid[None], step=step)

    def flush(self) -> None:
        self.writer.flush()


def save_samples(folder: Path, epoch: int, grid: np.ndarray) -> Path:
    path = folder / f"epoch_{epoch:04d}.png"
    save_png_atomic(path, grid)
    return path


def plot_loss_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Loss terms and validation PSNR/SSIM per epoch, as one PNG (written atomically)."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted(k for k in rows[-1] if k.startswith("loss/")):
        ax_loss.plot(epochs, [r.get(key, np.nan) for r in rows], label=key[5:])
    ax_loss.set(xlabel="epoch", ylabel="epoch mean (terms unweighted, totals weighted)", yscale="log", title="training losses")
    ax_loss.legend(fontsize=8)
    for key, axis, colour in (("val_psnr", ax_val, "C0"), ("val_ssim", ax_val.twinx(), "C1")):
        values = [r.get(key, np.nan) for r in rows]
        axis.plot(epochs, values, "o-" if len(rows) < 30 else "-", color=colour)
        axis.set_ylabel("PSNR (dB)" if key == "val_psnr" else "SSIM", color=colour)
        axis.tick_params(axis="y", colors=colour)
    ax_val.set(xlabel="epoch", title="validation PSNR (left) and SSIM (right)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
