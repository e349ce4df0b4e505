"""Everything a resumed run needs lives in one ``tf.train.Checkpoint``: both networks, both optimisers,
the epoch, the global step and how many batches of the current epoch were already trained.

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

from reface_tf.config import Config, load_yaml
from reface_tf.errors import ModelError

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainState:
    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    epoch: tf.Variable          # epochs completed
    step: tf.Variable           # optimiser steps completed
    step_in_epoch: tf.Variable  # batches of the current (unfinished) epoch already trained

    def checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                   g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer,
                                   epoch=self.epoch, step=self.step, step_in_epoch=self.step_in_epoch,
                                   rng=random_states(self.generator, self.discriminator))


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


def load_generator(run_dir: str | os.PathLike, checkpoint: int | None = None,
                   policy: str = "float32") -> tuple[keras.Model, Config, str]:
    """Rebuild the generator of a run from its ``config.yaml`` and restore its weights.

    ``policy`` is the Keras dtype policy the layers compute in (``"mixed_bfloat16"`` for a faster CPU export);
    the weights are float32 under every policy, so any run's checkpoint restores into either.
    """
    from reface_tf.models import generator_from_config  # models import keras layers; keep this module light

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ModelError(f"--run-dir: {run_dir}/config.yaml not found; pass the run directory written by train.py")
    cfg = load_yaml(run_dir / "config.yaml")
    path = checkpoint_path(run_dir, checkpoint)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        generator = generator_from_config(cfg)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    try:
        tf.train.Checkpoint(generator=generator).restore(path).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as err:
        raise ModelError(f"{path}: cannot restore the generator ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                         "the checkpoint is corrupt or from a different model config") from None
    log.info("restored generator from %s", path)
    return generator, cfg, path
