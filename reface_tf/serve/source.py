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
