"""Learning-rate policies as pure functions of the epoch, so a resumed run needs no schedule state."""

from __future__ import annotations

import math

from reface_tf.config import OptimConfig


def lr_factor(optim: OptimConfig, epoch: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``.

    constant: 1. linear (junyanz pix2pix): 1 for ``epochs - epochs_decay`` epochs, then linearly to 0 at the
    end. step: ``gamma ** (epoch // lr_step_epochs)``. cosine: half-cosine from 1 to 0 over all epochs.
    """
    if optim.lr_policy == "constant":
        return 1.0
    if optim.lr_policy == "linear":
        constant = optim.epochs - optim.epochs_decay
        return 1.0 - max(0, epoch + 1 - constant) / float(optim.epochs_decay + 1)
    if optim.lr_policy == "step":
        return optim.lr_gamma ** (epoch // optim.lr_step_epochs)
    if optim.lr_policy == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / optim.epochs))
    raise ValueError(f"unknown lr policy {optim.lr_policy!r}")
