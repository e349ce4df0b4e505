"""A SPADE run or export as a :class:`reface_tf.serve.source.ModelSource`, for ``evaluate.py``.

Evaluation reads each pair's input the way every translation does (a uint8 ``[S, S, 3]`` picture resized by
nearest neighbour): for a SPADE pair that picture is the class-id map in all three channels, or, on a dataset
whose inputs are palette pictures, the palette colours. :func:`ids_of_pictures` accepts both, so the same pairs
score SPADE and a Pix2Pix model trained on the palette pictures. Every map is drawn with the latent of seed 0
(the export's ``serving_default``), so a face does not depend on its batch. The baseline "output = input" is the
map's palette picture (``input_picture``), the floor of a model that only recolours the map.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reface_tf.errors import DataError
from reface_tf.serve.source import ModelSource


def ids_of_pictures(pictures: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``[N, S, S, 3]`` uint8 class-id pictures (all channels equal) or palette pictures → ``[N, S, S]`` ids.

    The two cannot be confused: the only palette colour with three equal channels is background black (id 0)."""
    pictures = np.asarray(pictures)
    grey = (pictures[..., :1] == pictures).all(axis=-1)
    if grey.all() and pictures[..., 0].max(initial=0) < len(palette):
        return pictures[..., 0].astype(np.uint8)
    distance = ((pictures[..., None, :3].astype(np.int32) - palette.astype(np.int32)) ** 2).sum(axis=-1)
    return distance.argmin(axis=-1).astype(np.uint8)


def _source(generate_ids, cfg, checkpoint: str, description: str, run_dir: Path | None) -> ModelSource:
    from reface_tf.tasks.spade.task import class_palette

    palette = class_palette(cfg.spade.num_classes)

    def translate(pictures: np.ndarray) -> np.ndarray:
        return generate_ids(ids_of_pictures(pictures, palette))

    return ModelSource(translate, cfg, checkpoint, description, run_dir,
                       input_picture=lambda pictures: palette[ids_of_pictures(pictures, palette)])


def spade_source_from_run(run_dir: str | os.PathLike, checkpoint: int | None = None) -> ModelSource:
    import tensorflow as tf

    from reface_tf.data.pipeline import to_uint8
    from reface_tf.tasks import load_run
    from reface_tf.tasks.spade.task import latents_from_seeds

    loaded = load_run(run_dir, checkpoint, names=("generator",))
    cfg, generator = loaded.cfg, loaded.networks["generator"]
    n, z_dim = cfg.spade.num_classes, cfg.spade.z_dim

    @tf.function(reduce_retracing=True)
    def run(ids: tf.Tensor) -> tf.Tensor:
        z = latents_from_seeds(tf.zeros(tf.shape(ids)[:1], tf.int64), z_dim)
        return generator([tf.one_hot(tf.cast(ids, tf.int32), n, dtype=tf.float32), z], training=False)

    return _source(lambda ids: to_uint8(run(ids).numpy()), cfg, Path(loaded.checkpoint).name, str(loaded.checkpoint),
                   Path(run_dir))


def spade_source_from_export(version_dir: Path, meta: dict) -> ModelSource:
    import tensorflow as tf

    from reface_tf.config import from_dict

    try:
        serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    except Exception as err:  # TF raises a zoo of types for a damaged SavedModel; all mean the same here
        raise DataError(f"--model: cannot load the SPADE SavedModel in {version_dir} ({type(err).__name__}); "
                        "export it again") from None
    cfg = from_dict(meta["config"], source=str(version_dir / "reface_meta.json"))
    ckpt = meta.get("checkpoint")
    run_dir = Path(ckpt).parents[1] if ckpt else None
    return _source(lambda ids: serve(labels=tf.constant(ids, tf.uint8))["images"].numpy(), cfg,
                   f"{version_dir.parent.name}-{version_dir.name}", str(version_dir),
                   run_dir if run_dir and (run_dir / "splits.json").is_file() else None)
