"""The contract between the training engine (``reface_tf.train``) and a task (``reface_tf.tasks.<name>``).

The engine owns what every model family needs the same way: the strategy, precision policy and XLA, the
optimiser steps (one gradient tape per phase, losses averaged over the global batch, float32 losses with loss
scaling under ``mixed_float16``), EMA copies, checkpoints and exact resume, Ctrl-C/SIGTERM, the NaN stop,
``--time-limit``, ``--init-from``, TensorBoard, progress, ``metrics.jsonl`` and ``loss_curves.png``. A task owns
what differs: its data, its networks, its losses, its preview, its validation metrics and its export.

A task is an object with a ``name`` and ``start(cfg, run_dir, tb) -> TaskRun``; ``TaskRun`` (below) is what the
engine asks of one run. docs/architecture.md walks through a whole task.

Randomness a step needs (a latent z, a mixing probability) should come from the batch, drawn in the task's
``tf.data`` pipeline from stateless seeds of (seed, epoch, index): the engine replays the data order exactly on
resume, so such draws are replayed too, while ``tf.random`` op state would not be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import keras
import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Phase:
    """One optimiser update: the gradient of ``losses[loss]`` with respect to the trainable variables of
    ``networks`` (names of ``TaskRun.build_networks``), applied by the optimiser named ``optimizer``."""

    loss: str
    optimizer: str
    networks: tuple[str, ...]


@dataclass
class StepContext:
    """What a loss function may ask of the engine inside the step."""

    global_batch: int
    step: tf.Tensor  # optimiser steps completed before this one (int64), e.g. for ramp-ups

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        """Sum over this replica's examples / GLOBAL batch: summed over replicas it is the global mean."""
        return tf.nn.compute_average_loss(tf.cast(per_example, tf.float32), global_batch_size=self.global_batch)

    def share(self, value: tf.Tensor, examples: tf.Tensor) -> tf.Tensor:
        """A per-replica mean over ``examples`` items, weighted so that its SUM over replicas is the global mean."""
        return tf.cast(value, tf.float32) * tf.cast(examples, tf.float32) / self.global_batch


# (batch, ctx) -> (losses, logs). ``losses`` holds every Phase.loss of the group, float32 scalars averaged with
# ``ctx.average``; ``logs`` holds scalars to show (loss terms, decision statistics), each SUMMED over replicas by
# the engine, so they too must be ``ctx.average`` / ``ctx.share`` values.
LossFn = Callable[[dict[str, tf.Tensor], StepContext], tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]]


@dataclass
class StepGroup:
    """Phases whose losses come from ONE forward pass (e.g. Pix2Pix's G and D share the generated image).

    Groups run in their list order within an engine step, each on the same batch. ``every = N`` runs the group
    only on steps whose count of completed steps is a multiple of N (lazy regularisers: StyleGAN2's R1 every 16).
    """

    name: str
    phases: tuple[Phase, ...]
    losses: LossFn
    every: int = 1


@dataclass(frozen=True)
class EMA:
    """Keep network ``source``'s exponential moving average: ``ema = source + decay * (ema - source)`` after
    every step, over the float variables (weights and normalisation statistics).

    ``warmup``: the decay after ``t`` completed steps is ``min(decay, (1 + t) / (10 + t))``, as
    ``tf.train.ExponentialMovingAverage(num_updates=t)``: early on the average forgets the random initial
    weights fast (at decay 0.999 a fixed rate keeps 74% of them after 300 steps), later it is the fixed decay."""

    source: str
    decay: float
    warmup: bool = False
    # ``schedule(t) -> decay`` (float32 tensor) replaces ``decay`` when given: e.g. StyleGAN2's half-life in
    # images with its ramp-up (reface_tf.losses.stylegan2.ema_decay).
    schedule: Callable[[tf.Tensor], tf.Tensor] | None = None


@dataclass
class TaskData:
    """The training stream: ``batches(first_epoch, epochs, first_skip)`` is ONE dataset of dict batches over
    all remaining epochs (one iterator for the whole run), ``steps_per_epoch`` batches an epoch, the first epoch
    missing its ``first_skip`` batches already trained (exact resume)."""

    steps_per_epoch: int
    global_batch: int
    batches: Callable[[int, int, int], tf.data.Dataset]


class TaskRun(Protocol):
    """One run of a task, made by ``Task.start`` before any network exists."""

    data: TaskData
    ema: dict[str, EMA]               # EMA network name -> what it averages (the network itself is built too)
    step_scalars: dict[str, str]      # step logs that are not losses -> TensorBoard tag (others are loss/<name>)
    preview_tag: str                  # TensorBoard image tag of the preview grid
    # Optional: progress_keys, the step logs the progress bar shows (default: every phase's loss); validate_every,
    # validate only every N epochs and at the last (default 1; other epochs log no val_ fields).

    def build_optimizers(self, networks: dict[str, keras.Model]) -> dict[str, tuple[keras.optimizers.Optimizer, float]]:
        """Optimisers by checkpoint name, each with its base learning rate (the schedule scales it per epoch)."""

    def step_groups(self, networks: dict[str, keras.Model]) -> list[StepGroup]:
        """The step's groups (built inside the strategy scope, so loss terms may own variables)."""

    def preview(self, networks: dict[str, keras.Model]) -> np.ndarray:
        """A uint8 RGB grid of the fixed preview inputs, saved in samples/ and shown in TensorBoard."""

    def validate(self, networks: dict[str, keras.Model]) -> dict[str, float]:
        """Validation metrics of this epoch, keys ``val_<metric name>`` (names from reface_tf.metrics)."""

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]) -> tuple[dict, str | None]:
        """Extra ``metrics.jsonl`` fields of this epoch and an optional warning; ``history`` = earlier rows."""


class Task(Protocol):
    name: str

    def build_networks(self, cfg, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        """The networks of ``cfg`` by checkpoint name, EMA copies included (all, or only ``names``: an export
        needs the generator alone). Training builds them inside the strategy scope; evaluation and export under
        the dtype policy they ask for. Needs no data."""

    def start(self, cfg, run_dir, tb) -> TaskRun:
        """Prepare one run (split, pipelines, fixed preview batch): called before the networks are built."""
