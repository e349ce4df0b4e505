"""A DCGAN run as a SavedModel: the EMA generator with standing statistics, sampled by seed or by latent.

Signatures (``reface_meta.json`` lists them):

* ``serving_default`` = ``generate``: ``seeds`` int64 ``[N]`` -> ``images`` uint8 ``[N, H, W, 3]``, one face per
  seed whatever else is in the batch;
* ``generate_from_latent``: ``z`` float32 ``[N, latent_dim]`` -> ``images`` uint8;
* ``latent``: ``seeds`` int64 ``[N]`` -> ``z`` float32, the latent ``generate`` draws for each seed (for
  interpolation between seeds, ``sample.py --interpolate 3 7``).
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from reface_tf.tasks.dcgan import NAME


def _as_uint8(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round((tf.cast(x, tf.float32) + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def export_dcgan(run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike) -> tuple[Path, str]:
    from reface_tf.serve.archive import write_versioned_export
    from reface_tf.tasks import load_run
    from reface_tf.tasks.dcgan.task import latent_of_seeds, sampler_of

    loaded = load_run(run_dir, checkpoint, names=("generator_ema",))
    cfg = loaded.cfg
    latent_dim, size = cfg.dcgan.latent_dim, cfg.faces.image_size
    generator = sampler_of(loaded.networks["generator_ema"], cfg)

    from_latent = tf.function(lambda z: {"images": _as_uint8(generator(z, training=False))},
                              input_signature=[tf.TensorSpec([None, latent_dim], tf.float32, name="z")])
    from_seeds = tf.function(lambda seeds: {"images": _as_uint8(generator(latent_of_seeds(seeds, latent_dim), training=False))},
                             input_signature=[tf.TensorSpec([None], tf.int64, name="seeds")])
    latent = tf.function(lambda seeds: {"z": latent_of_seeds(seeds, latent_dim)},
                         input_signature=[tf.TensorSpec([None], tf.int64, name="seeds")])
    meta = {"task": NAME, "input_domain": "latent", "resolution": size, "latent_dim": latent_dim,
            "checkpoint": loaded.checkpoint, "network": "generator_ema", "simulated": False, "class_names": None,
            "standing_statistics": {"draws": cfg.dcgan.standing_samples},
            "training_data": {"root": cfg.faces.root, "layout": cfg.faces.layout, "max_images": cfg.faces.max_images}}
    version = write_versioned_export({"serving_default": from_seeds, "generate": from_seeds,
                                      "generate_from_latent": from_latent, "latent": latent}, meta, base)
    summary = (f"{loaded.checkpoint} -> {version} (signatures serving_default = generate(seeds), generate_from_latent(z), "
               f"latent(seeds); {size}x{size}, z of {latent_dim})")
    return version, summary
