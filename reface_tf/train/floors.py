"""Quality floors of a run: what two trivial predictors score on the validation pairs.

A GAN's losses say little about whether its images are any good, so every run scores two predictors that
need no training, once, before the first epoch, with the same metrics as validation:

- ``mean_face``: the pixel-wise mean of the training targets, predicted for every validation pair;
- ``identity``: the input itself as the output (output = input).

A model whose validation PSNR *and* SSIM stay below the better floor of each (``FloorWatch``) is doing
worse than doing nothing: on real faces a collapsed configuration was measured at PSNR 4.9 dB / SSIM 0.19
against 11.5 dB / 0.38 for the mean face, and the user should hear of that after a few epochs, not after 450.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from reface_tf.data.pipeline import DecodedPairs, resize_uint8
from reface_tf.metrics import SIGNED_UNIT_RANGE, batch_metrics

log = logging.getLogger(__name__)

FLOORS_FILE = "floors.json"
# Epochs in a row below both floors before the run warns.
EPOCHS_BELOW_BEFORE_WARNING = 2


@dataclass(frozen=True)
class Floors:
    mean_face_psnr: float
    mean_face_ssim: float
    identity_psnr: float
    identity_ssim: float

    @property
    def psnr(self) -> float:
        return max(self.mean_face_psnr, self.identity_psnr)

    @property
    def ssim(self) -> float:
        return max(self.mean_face_ssim, self.identity_ssim)

    def describe(self) -> str:
        return (f"mean training face PSNR {self.mean_face_psnr:.2f} dB / SSIM {self.mean_face_ssim:.4f}, "
                f"output = input {self.identity_psnr:.2f} dB / {self.identity_ssim:.4f}")


def mean_target(store: DecodedPairs, size: int) -> np.ndarray:
    """Pixel-wise mean of every target of ``store`` at ``size`` x ``size``, in [-1, 1] (float64)."""
    total = np.zeros((size, size, 3), np.float64)
    for index in range(len(store)):
        total += resize_uint8(store.get(index)[1], size)
    return total / max(1, len(store)) / 127.5 - 1.0


def _as_rgb(x: np.ndarray) -> np.ndarray:
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def compute_floors(mean_face: np.ndarray, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Floors:
    """Score the mean face and output = input on ``(inputs, targets)`` batches in [-1, 1]."""
    scores: dict[str, list[float]] = {"mean_face_psnr": [], "mean_face_ssim": [], "identity_psnr": [], "identity_ssim": []}
    for inputs, targets in batches:
        targets = np.asarray(targets, np.float64)
        guesses = {"mean_face": np.broadcast_to(mean_face, targets.shape),
                   "identity": _as_rgb(np.asarray(inputs, np.float64))}
        for name, outputs in guesses.items():
            rows = batch_metrics(outputs, targets, SIGNED_UNIT_RANGE)
            scores[f"{name}_psnr"] += rows["psnr"]
            scores[f"{name}_ssim"] += rows["ssim"]
    return Floors(**{k: float(np.mean(v)) for k, v in scores.items()})


def save_floors(floors: Floors, run_dir: str | os.PathLike) -> None:
    path = Path(run_dir) / FLOORS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(floors), indent=2) + "\n")
    os.replace(tmp, path)


def load_floors(run_dir: str | os.PathLike) -> Floors | None:
    path = Path(run_dir) / FLOORS_FILE
    if not path.is_file():
        return None
    try:
        return Floors(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError):
        return None  # unreadable: the caller computes the floors again


class FloorWatch:
    """Counts epochs in a row whose validation PSNR and SSIM are both below the floors, and warns once per streak."""

    def __init__(self, floors: Floors, history: Iterable[bool] = ()):
        self.floors, self.streak = floors, 0
        for below in history:  # a resumed run continues the streak of the epochs it already logged
            self.streak = self.streak + 1 if below else 0

    def below(self, val_psnr: float, val_ssim: float) -> bool:
        return val_psnr < self.floors.psnr and val_ssim < self.floors.ssim

    def update(self, epoch: int, val_psnr: float, val_ssim: float) -> str | None:
        """Record one epoch; returns the warning line when this epoch completes a streak of the warning length."""
        self.streak = self.streak + 1 if self.below(val_psnr, val_ssim) else 0
        if self.streak != EPOCHS_BELOW_BEFORE_WARNING:
            return None
        return (f"epoch {epoch}: val PSNR {val_psnr:.2f} dB and SSIM {val_ssim:.4f} have been below both floors for "
                f"{self.streak} epochs ({self.floors.describe()}): the model does worse than a trivial prediction; "
                "if it persists, check --norm/--inference-mode (batch norm in eval mode collapses), lower --lr-g/--lr-d "
                "or check the pairs"
                + ("; here output = input is the better floor: the targets differ little from the inputs, and a "
                   "model usually starts below it and must learn to copy the input before it can beat it"
                   if self.floors.identity_ssim >= self.floors.mean_face_ssim else ""))
