"""What the paired tasks' runs share: the training and validation pairs of a split and the epoch length."""

from __future__ import annotations

import logging

from reface_tf.config import Config
from reface_tf.data.pairs import Pair
from reface_tf.errors import DataError

log = logging.getLogger(__name__)


def training_split(splits: dict[str, list[Pair]], cfg: Config) -> tuple[list[Pair], list[Pair], int]:
    """(training pairs, validation pairs, steps per epoch); a split without validation pairs validates on the first
    ``--sample-count`` training pairs, with a warning."""
    train_pairs, val_pairs = splits["train"], splits["val"]
    global_batch = cfg.optim.batch_size
    if len(train_pairs) < global_batch:
        raise DataError(f"--batch-size {global_batch} is larger than the {len(train_pairs)} training pairs; lower it or add data")
    if not val_pairs:
        log.warning("no validation pairs (dataset too small for --val-ratio); validating on training pairs")
        val_pairs = train_pairs[: cfg.runtime.sample_count]
    steps_per_epoch = len(train_pairs) // global_batch
    if cfg.optim.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.optim.steps_per_epoch)
    return train_pairs, val_pairs, steps_per_epoch
