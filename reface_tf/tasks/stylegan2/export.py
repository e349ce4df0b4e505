"""A StyleGAN2 run as a SavedModel: the EMA generator, sampled by seed and class, with truncation toward the
average w stored in the model.

Signatures (``reface_meta.json`` lists them):

* ``serving_default`` = ``generate``: ``seeds`` int64 ``[N]``, ``classes`` int32 ``[N]`` (``class`` is a Python keyword), ``truncation`` float32
  ``[]`` -> ``images`` uint8 ``[N, H, W, 3]``; one face per (seed, class), whatever else is in the batch;
* ``mapping``: ``seeds``, ``classes``, ``truncation`` -> ``w`` float32 ``[N, num_ws, w_dim]``;
* ``generate_from_w``: ``w`` -> ``images`` uint8 (for editing and style mixing).
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from reface_tf.tasks.dcgan.export import _as_uint8
from reface_tf.tasks.stylegan2 import NAME


def export_stylegan2(run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike) -> tuple[Path, str]:
    from reface_tf.serve.archive import write_versioned_export
    from reface_tf.tasks import load_run
    from reface_tf.tasks.dcgan.task import latent_of_seeds
    from reface_tf.tasks.stylegan2.task import class_names_of, train_counts_of

    loaded = load_run(run_dir, checkpoint, names=("generator_ema",))
    cfg = loaded.cfg
    g = loaded.networks["generator_ema"]
    names = class_names_of(cfg, Path(run_dir)) if g.num_classes else ()
    size, z_dim, num_ws, w_dim = cfg.faces.image_size, g.z_dim, g.num_ws, cfg.stylegan2.w_dim
    seeds_spec = tf.TensorSpec([None], tf.int64, name="seeds")
    class_spec = tf.TensorSpec([None], tf.int32, name="classes")
    psi_spec = tf.TensorSpec([], tf.float32, name="truncation")

    def to_w(seeds, classes, truncation):
        return g.mapping(latent_of_seeds(seeds, z_dim), classes, truncation=truncation)

    mapping = tf.function(lambda seeds, classes, truncation: {"w": to_w(seeds, classes, truncation)},
                          input_signature=[seeds_spec, class_spec, psi_spec])
    from_w = tf.function(lambda w: {"images": _as_uint8(tf.clip_by_value(g.synthesis(w), -1.0, 1.0))},
                         input_signature=[tf.TensorSpec([None, num_ws, w_dim], tf.float32, name="w")])
    generate = tf.function(lambda seeds, classes, truncation: {"images": _as_uint8(tf.clip_by_value(
        g.synthesis(to_w(seeds, classes, truncation)), -1.0, 1.0))}, input_signature=[seeds_spec, class_spec, psi_spec])
    meta = {"task": NAME, "input_domain": "latent", "resolution": size, "latent_dim": z_dim, "w_dim": w_dim,
            "num_ws": num_ws, "num_classes": int(g.num_classes), "class_names": list(names) or None,
            "class_counts": train_counts_of(Path(run_dir), int(g.num_classes)) if g.num_classes else None,
            "checkpoint": loaded.checkpoint, "network": "generator_ema", "simulated": False,
            "training_data": {"root": cfg.faces.root, "labels": cfg.stylegan2.labels}}
    version = write_versioned_export({"serving_default": generate, "generate": generate, "mapping": mapping,
                                      "generate_from_w": from_w}, meta, base)
    return version, (f"{loaded.checkpoint} -> {version} (signatures serving_default = generate(seeds, classes, truncation), "
                     f"mapping, generate_from_w; {size}x{size}, {g.num_classes} classes)")
