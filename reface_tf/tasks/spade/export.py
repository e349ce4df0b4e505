"""Export a SPADE run's generator as a SavedModel (``BASE/<version>/``) that turns label maps into faces.

Signatures:

* ``serving_default``: ``labels`` uint8 ``[N, S, S]`` class ids at the model size → ``images`` uint8
  ``[N, S, S, 3]``, each drawn with the latent of seed 0 (the same map always gives the same face).
* ``with_seeds``: ``labels`` as above and ``seeds`` int64 ``[N]`` → ``images``: seed s draws the latent
  ``stateless_normal([z_dim], [s, 0])``, so another seed is another face for the same map.
* ``with_style`` (runs trained with ``--use-encoder``): ``labels`` as above and ``style`` uint8 ``[N, S, S, 3]``
  photos → ``images``: the face of each map in the style of its photo (the encoder's mean latent).
* ``palette_png``: ``png_bytes`` tf.string ``[N]``, PNG label maps of any size, either one channel of class ids
  or a colour picture in the class palette (each pixel takes the class of the nearest palette colour) →
  ``png_bytes`` of the faces at the map's size (seed 0).

A class id of ``num_classes`` or more, or a map of another size in the uint8 signatures, fails with a message
naming the expected values. ``reface_meta.json`` records the task, the map size, the class names and palette,
the latent size, the config and the provenance; it has no ``image_size`` key, so image-translation tools
(evaluate.py, predict.py for photos) refuse it in one line instead of feeding it photos.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ConfigError
from reface_tf.serve.archive import write_versioned_export
from reface_tf.tasks.spade.task import NAME, class_names, class_palette, latents_from_seeds

log = logging.getLogger(__name__)

SIGNATURES = ("serving_default", "with_seeds", "palette_png")  # and with_style when the run has an encoder


def _to_uint8(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


class SpadeExport(tf.Module):
    """The generator wrapped with the label-map signatures; exists only to be saved."""

    def __init__(self, generator, cfg: Config, encoder=None):
        super().__init__(name="reface_spade")
        self.generator, self.encoder = generator, encoder
        self.size, self.num_classes, self.z_dim = int(cfg.data.image_size), int(cfg.spade.num_classes), int(cfg.spade.z_dim)
        self.palette = tf.constant(class_palette(self.num_classes).astype(np.float32))
        self.serve_labels = tf.function(self._serve_labels, input_signature=[
            tf.TensorSpec([None, None, None], tf.uint8, name="labels")])
        self.serve_seeds = tf.function(self._serve_seeds, input_signature=[
            tf.TensorSpec([None, None, None], tf.uint8, name="labels"), tf.TensorSpec([None], tf.int64, name="seeds")])
        self.serve_png = tf.function(self._serve_png, input_signature=[tf.TensorSpec([None], tf.string, name="png_bytes")])
        size = self.size
        self.serve_style = tf.function(self._serve_style, input_signature=[
            tf.TensorSpec([None, None, None], tf.uint8, name="labels"),
            tf.TensorSpec([None, size, size, 3], tf.uint8, name="style")]) if encoder is not None else None

    def endpoints(self) -> dict:
        found = {"serving_default": self.serve_labels, "with_seeds": self.serve_seeds, "palette_png": self.serve_png}
        return found | ({"with_style": self.serve_style} if self.serve_style is not None else {})

    def _check(self, labels: tf.Tensor) -> tf.Tensor:
        size, n = self.size, self.num_classes
        checks = [tf.debugging.assert_equal(tf.shape(labels)[1:3], tf.constant([size, size]), summarize=4, message=(
                      f"label maps must be {size}x{size} class ids, the size this model was trained at; resize them by "
                      "nearest neighbour, or use the palette_png signature which does")),
                  tf.debugging.assert_less(tf.cast(labels, tf.int32), n, message=f"class ids must be below {n}")]
        with tf.control_dependencies(checks):
            labels = tf.identity(labels)
        return tf.ensure_shape(labels, [None, size, size])

    def _generate(self, labels: tf.Tensor, seeds: tf.Tensor | None = None, z: tf.Tensor | None = None) -> tf.Tensor:
        onehot = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes, dtype=tf.float32)
        z = latents_from_seeds(seeds, self.z_dim) if z is None else z
        return tf.cast(self.generator([onehot, z], training=False), tf.float32)

    def _serve_style(self, labels: tf.Tensor, style: tf.Tensor) -> dict[str, tf.Tensor]:
        labels = self._check(labels)
        mu, _ = self.encoder(tf.cast(style, tf.float32) / 127.5 - 1.0, training=False)
        return {"images": _to_uint8(self._generate(labels, z=tf.cast(mu, tf.float32)))}

    def _serve_seeds(self, labels: tf.Tensor, seeds: tf.Tensor) -> dict[str, tf.Tensor]:
        labels = self._check(labels)
        tf.debugging.assert_equal(tf.shape(seeds)[0], tf.shape(labels)[0], message="one seed per label map")
        return {"images": _to_uint8(self._generate(labels, seeds))}

    def _serve_labels(self, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._serve_seeds(labels, tf.zeros(tf.shape(labels)[:1], tf.int64))

    def ids_from_png(self, data: tf.Tensor) -> tf.Tensor:
        """One PNG → ``[H, W]`` uint8 class ids: its only channel, or the nearest palette colour of its RGB."""
        image = tf.io.decode_png(data, channels=0)

        def from_colours() -> tf.Tensor:
            rgb = tf.cast(image[..., :3], tf.float32)
            distance = tf.reduce_sum(tf.square(rgb[:, :, tf.newaxis, :] - self.palette), axis=-1)
            return tf.cast(tf.argmin(distance, axis=-1), tf.uint8)

        return tf.cond(tf.shape(image)[-1] <= 2, lambda: image[..., 0], from_colours)

    def _serve_png(self, png_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        size = self.size

        def one(data: tf.Tensor) -> tf.Tensor:
            ids = self.ids_from_png(data)
            hw = tf.shape(ids)[:2]
            small = tf.image.resize(ids[..., tf.newaxis], [size, size], method="nearest")[..., 0]
            face = self._generate(self._check(small[tf.newaxis]), tf.zeros([1], tf.int64))[0]
            return tf.io.encode_png(_to_uint8(tf.image.resize(face, hw, antialias=True)))

        return {"png_bytes": tf.map_fn(one, png_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}


def export_spade(run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike, precision: str = "fp32",
                 tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
    """Write the next version under ``base``; returns the folder and a summary line."""
    from reface_tf.provenance import provenance
    from reface_tf.tasks import load_run

    if precision != "fp32" or tflite or onnx:
        raise ConfigError("task spade exports an fp32 SavedModel only; drop --precision/--tflite/--onnx")
    loaded = load_run(run_dir, checkpoint, names=("generator", "encoder"))
    cfg = loaded.cfg
    module = SpadeExport(loaded.networks["generator"], cfg, loaded.networks.get("encoder"))
    n = int(cfg.spade.num_classes)
    meta = {"task": NAME, "input_domain": "label_map", "map_size": int(cfg.data.image_size), "num_classes": n,
            "class_names": class_names(n), "palette": class_palette(n).tolist(), "z_dim": int(cfg.spade.z_dim),
            "checkpoint": loaded.checkpoint, "config": cfg.to_dict(), "provenance": provenance(Path(run_dir))}
    endpoints = module.endpoints()
    version_dir = write_versioned_export(endpoints, meta, base)
    size = cfg.data.image_size
    return version_dir, (f"{loaded.checkpoint} -> {version_dir} (signatures {', '.join(endpoints)}; {size}x{size} "
                         f"label maps of {n} classes -> faces)")
