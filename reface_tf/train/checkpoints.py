"""Everything a resumed run needs lives in one ``tf.train.Checkpoint``: the task's networks (EMA copies
included) and optimisers, the epoch, the global step and how many batches of the current epoch were already
trained, and the dropout RNG states.

Checkpoints are numbered by global step (``checkpoints/ckpt-<step>``). ``tf.train.CheckpointManager`` only
points ``checkpoints/checkpoint`` at a new file once it is completely written, so an interrupted save
leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from reface_tf.errors import ModelError

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainState:
    """The networks and optimisers by their checkpoint names (a task's ``build_networks`` / ``build_optimizers``
    keys: Pix2Pix's are generator, discriminator, g_optimizer, d_optimizer, the names of every earlier run)."""

    networks: dict[str, keras.Model]
    optimizers: dict[str, keras.optimizers.Optimizer]
    epoch: tf.Variable          # epochs completed
    step: tf.Variable           # optimiser steps completed
    step_in_epoch: tf.Variable  # batches of the current (unfinished) epoch already trained

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(**self.networks, **self.optimizers, epoch=self.epoch, step=self.step,
                                   step_in_epoch=self.step_in_epoch, rng=random_states(*self.networks.values()))


def random_states(*models: keras.Model) -> dict[str, tf.Variable]:
    """Keras 3 keeps the dropout RNG state in SeedGenerator variables that tf.train.Checkpoint does not track
    through the model; saving them explicitly makes a resumed run draw the same dropout masks."""
    return {f"{m.name}.{layer.name}": layer.seed_generator.state
            for m in models for layer in m.layers if getattr(layer, "seed_generator", None) is not None}


def counter(name: str) -> tf.Variable:
    """A progress counter; create it outside the strategy scope (it is only assigned from Python, between steps)."""
    return tf.Variable(0, dtype=tf.int64, trainable=False, name=name)


def make_manager(state: TrainState, run_dir: str | os.PathLike, keep: int) -> tf.train.CheckpointManager:
    return tf.train.CheckpointManager(state.checkpoint(), str(Path(run_dir) / CHECKPOINT_DIR), max_to_keep=keep,
                                      checkpoint_name="ckpt")


def checkpoint_path(run_dir: str | os.PathLike, number: int | None = None) -> str:
    """The latest checkpoint of a run, or ``ckpt-<number>``; ModelError when there is none."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if number is None:
        latest = tf.train.latest_checkpoint(str(folder))
        if latest is None:
            raise ModelError(f"{folder}: no checkpoint found; train first (python train.py --run-dir {run_dir})")
        return latest
    path = folder / f"ckpt-{number}"
    if not Path(f"{path}.index").is_file():
        found = sorted(p.name[: -len(".index")] for p in folder.glob("ckpt-*.index")) if folder.is_dir() else []
        raise ModelError(f"--checkpoint {number}: {path} not found; available: {', '.join(found) or 'none'}")
    return str(path)


def restore(objects: dict[str, object], path: str, what: str) -> None:
    """Restore the named objects (networks, optimisers) from checkpoint ``path``; every variable they own must
    be found there, else one ModelError line."""
    try:
        tf.train.Checkpoint(**objects).restore(path).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as err:
        raise ModelError(f"{path}: cannot restore {what} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                         "the checkpoint is corrupt or from a different model config") from None


def copy_matching_weights(targets: dict[str, keras.Model], sources: dict[str, keras.Model], origin: str) -> list[str]:
    """Copy every layer's weights from ``sources`` into the same-named network and layer of ``targets``
    (fine-tuning); returns the networks copied. ModelError naming the first layer whose shapes differ."""
    copied = []
    for name, target in targets.items():
        source = sources.get(name)
        if source is None:
            continue
        by_name = {layer.name: layer for layer in source.layers}
        for layer in target.layers:
            if not layer.weights:
                continue
            other = by_name.get(layer.name)
            if other is None or len(other.weights) != len(layer.weights):
                raise ModelError(f"--init-from {origin}: network {name} has no layer {layer.name!r} like this "
                                 "run's; start from a run of the same architecture")
            for mine, theirs in zip(layer.weights, other.weights):
                if tuple(mine.shape) != tuple(theirs.shape):
                    raise ModelError(f"--init-from {origin}: {name} layer {layer.name!r} weight {theirs.name!r} has shape "
                                     f"{tuple(theirs.shape)} there and {tuple(mine.shape)} here; use the same network "
                                     "options as that run (filters, depth, channels, image size)")
            for mine, theirs in zip(layer.weights, other.weights):
                mine.assign(theirs)
        copied.append(name)
    return copied


def resolve_checkpoint(source: str | os.PathLike) -> str:
    """A run directory (its latest checkpoint) or a checkpoint prefix ``RUN/checkpoints/ckpt-N``."""
    source = Path(source)
    if Path(f"{source}.index").is_file():
        return str(source)
    if (source / CHECKPOINT_DIR).is_dir() or (source / "config.yaml").is_file():
        return checkpoint_path(source)
    raise ModelError(f"--init-from: {source} is neither a run directory nor a checkpoint (RUN/checkpoints/ckpt-N)")
