"""Where a translation comes from: a training run's checkpoint or an exported SavedModel, as one ``ModelSource``.

Evaluation, prediction and anything else that generates from a trained model take a ``ModelSource``: a uint8 →
uint8 translation at ``cfg.data.image_size`` plus the config and the name of what it was loaded from. Importing
this module is light; TensorFlow is imported when a source is loaded.

Example::

    source = source_from_export("export/reface/1")     # or reface_tf.tasks.pix2pix.task.source_from_run("runs/reface")
    outputs = source.translate(inputs_uint8)           # [N, S, S, 3] uint8 -> [N, S, S, C] uint8
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reface_tf.config import Config

Translate = Callable[[np.ndarray], np.ndarray]  # uint8 [N, S, S, 3] -> uint8 [N, S, S, C]


@dataclass
class ModelSource:
    """A trained generator as a uint8 → uint8 translation at ``cfg.data.image_size``, and where it came from."""

    translate: Translate
    cfg: Config
    checkpoint: str   # a short name: "ckpt-4500" or "reface-1"
    description: str  # full path of the checkpoint or SavedModel
    run_dir: Path | None = None
    # The input as a picture to score as "output = input" (a label-map model: its palette picture); None: as is.
    input_picture: Translate | None = None


def source_from_generator(generator, cfg: Config, path: str, run_dir: str | os.PathLike) -> ModelSource:
    """A restored generator (``reface_tf.tasks.pix2pix.task.source_from_run`` loads one from a run)."""
    import tensorflow as tf

    from reface_tf.data.pipeline import to_uint8
    from reface_tf.models import inference_training_flag

    training = inference_training_flag(cfg)
    gray = cfg.data.input_channels == 1

    @tf.function(reduce_retracing=True)
    def run(x: tf.Tensor) -> tf.Tensor:
        x = tf.cast(x, tf.float32) / 127.5 - 1.0
        if gray:
            x = tf.image.rgb_to_grayscale(x)
        return generator(x, training=training)

    return ModelSource(lambda images: to_uint8(run(images).numpy()), cfg, Path(path).name, str(path), Path(run_dir))


def source_from_export(path: str | os.PathLike) -> ModelSource:
    from reface_tf.serve.export import load_exported

    model = load_exported(path)
    ckpt = model.meta.get("checkpoint")
    # An export remembers its checkpoint; when that run is still here, its test split is the default data.
    run_dir = Path(ckpt).parents[1] if ckpt else None
    return ModelSource(model.translate_uint8, model.config, f"{model.path.parent.name}-{model.path.name}",
                       str(model.path), run_dir if run_dir and (run_dir / "splits.json").is_file() else None)


Generate = Callable[[np.ndarray], np.ndarray]  # int64 seeds [N] -> uint8 [N, S, S, 3]


@dataclass
class SeedSource:
    """A trained generator that draws one image per seed (DCGAN, StyleGAN2), and where it came from."""

    generate: Generate
    resolution: int
    checkpoint: str   # a short name: "ckpt-300" or "dcgan-1"
    description: str  # full path of the checkpoint or SavedModel
    task: str
    run_dir: Path | None = None
    # A class-conditional generator: its class names and (seeds, class) -> uint8 images for one class.
    class_names: tuple[str, ...] = ()
    generate_class: Callable[[np.ndarray, int], np.ndarray] | None = None


# The classes of seed-drawn samples follow the training class distribution, as the reference samples labels from
# the dataset; one rng per (salt, seed), so seed k has the same class whatever else is drawn with it.
CLASS_DRAW_SALT = 7207


def classes_for_seeds(seeds, counts) -> np.ndarray:
    """int32 class per seed, drawn in proportion to ``counts`` (training images per class)."""
    counts = np.asarray(counts, np.float64)
    if counts.sum() <= 0:
        return np.zeros(len(np.asarray(seeds)), np.int32)
    cumulative = np.cumsum(counts / counts.sum())
    draws = [np.random.default_rng([CLASS_DRAW_SALT, int(s)]).random() for s in np.asarray(seeds, np.int64)]
    return np.minimum(np.searchsorted(cumulative, draws, side="right"), len(counts) - 1).astype(np.int32)


def seed_source_from_export(path: str | os.PathLike) -> SeedSource:
    """An export with a ``generate`` (or ``sample``) signature: seeds -> uint8 images."""
    from reface_tf.errors import ModelError
    from reface_tf.serve.export import read_meta, resolve_version_dir

    version = resolve_version_dir(path)
    meta, _ = read_meta(version)
    name = next((s for s in ("generate", "sample") if s in meta.get("signatures", [])), None)
    if name is None:
        raise ModelError(f"--model {version}: this export (task {meta.get('task', 'pix2pix')}) draws no images from seeds")
    import tensorflow as tf

    signature = tf.saved_model.load(str(version)).signatures[name]
    conditional = "classes" in signature.structured_input_signature[1]
    counts = meta.get("class_counts") or [1] * max(int(meta.get("num_classes") or 0), 1)

    def draw(seeds: np.ndarray, classes: np.ndarray | None, batch: int = 64) -> np.ndarray:
        parts = []
        for i in range(0, len(seeds), batch):
            inputs = {"seeds": tf.constant(seeds[i:i + batch])}
            if conditional:
                inputs |= {"classes": tf.constant(classes[i:i + batch], tf.int32), "truncation": tf.constant(1.0)}
            parts.append(signature(**inputs)["images"].numpy())
        return np.concatenate(parts) if parts else np.zeros((0, meta["resolution"], meta["resolution"], 3), np.uint8)

    def generate(seeds: np.ndarray) -> np.ndarray:
        seeds = np.asarray(seeds, np.int64)
        return draw(seeds, classes_for_seeds(seeds, counts) if conditional else None)

    def generate_class(seeds: np.ndarray, cls: int) -> np.ndarray:
        seeds = np.asarray(seeds, np.int64)
        return draw(seeds, np.full(len(seeds), cls, np.int32))

    by_class = conditional and int(meta.get("num_classes") or 0) > 0
    names = tuple(meta.get("class_names") or ()) if by_class else ()
    return SeedSource(generate, int(meta.get("resolution") or 0), f"{version.parent.name}-{version.name}", str(version),
                      str(meta.get("task")), class_names=names, generate_class=generate_class if by_class else None)
