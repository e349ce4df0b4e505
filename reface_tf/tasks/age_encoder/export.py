"""An age encoder run as one SavedModel: the encoder and the StyleGAN2 EMA generator it inverts, bundled, so an
export edits with no run directory around.

Signatures (``reface_meta.json`` lists them):

* ``serving_default`` = ``edit_images``: ``images`` uint8 ``[N, S, S, 3]`` (aligned faces at the model size),
  ``classes`` int32 ``[N]`` -> ``images`` uint8: each face re-rendered with its target class;
* ``encode``: ``images`` -> ``z`` float32 ``[N, z_dim]``;
* ``generate_from_z``: ``z``, ``classes`` -> ``images``; ``render_from_z``: the same as float32 in [-1, 1], which
  gradients flow through (``edit.py --refine-steps``);
* ``edit``: ``image_bytes`` string ``[]`` (a PNG or JPEG of an aligned face, any size: resized to S), ``target_class``
  int32 ``[]`` -> ``png`` string ``[]`` (the edited face at S x S). Photos are aligned outside the graph
  (MediaPipe), as ``edit.py`` does, with the ``alignment`` recorded here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from reface_tf.tasks.age_encoder import NAME
from reface_tf.tasks.dcgan.export import _as_uint8


def _simulated(root: Path | None) -> tuple[bool, str | None]:
    """Whether the generator's training classes are a simulation (the demo's metadata.json says so), and its note."""
    meta = root / "metadata.json" if root is not None else None
    if meta is None or not meta.is_file():
        return False, None
    data = json.loads(meta.read_text(encoding="utf-8"))
    return bool(data.get("simulated")), data.get("note")


def export_age_editor(run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike) -> tuple[Path, str]:
    from reface_tf.faces.alignment_settings import read_alignment
    from reface_tf.serve.archive import write_versioned_export
    from reface_tf.tasks import load_run
    from reface_tf.tasks.age_encoder.task import FrozenGenerator, generator_data_root, generator_record

    loaded = load_run(run_dir, checkpoint, names=("encoder",))
    encoder, cfg = loaded.networks["encoder"], loaded.cfg
    generator = FrozenGenerator(*generator_record(cfg, Path(run_dir)))
    size, z_dim = generator.resolution, generator.z_dim
    images_spec = tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")
    classes_spec = tf.TensorSpec([None], tf.int32, name="classes")

    def to_z(images):
        return tf.cast(encoder(tf.cast(images, tf.float32) / 127.5 - 1.0, training=False), tf.float32)

    def edited(images, classes):
        return _as_uint8(generator.render(to_z(images), classes))

    edit_images = tf.function(lambda images, classes: {"images": edited(images, classes)},
                              input_signature=[images_spec, classes_spec])
    encode = tf.function(lambda images: {"z": to_z(images)}, input_signature=[images_spec])
    from_z = tf.function(lambda z, classes: {"images": _as_uint8(generator.render(z, classes))},
                         input_signature=[tf.TensorSpec([None, z_dim], tf.float32, name="z"), classes_spec])

    render = tf.function(lambda z, classes: {"images": generator.render(z, classes)},
                         input_signature=[tf.TensorSpec([None, z_dim], tf.float32, name="z"), classes_spec])

    def edit_bytes(image_bytes, target_class):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, [size, size], antialias=True)), 0, 255), tf.uint8)
        out = edited(image[None], tf.reshape(target_class, [1]))[0]
        return {"png": tf.io.encode_png(out)}

    edit = tf.function(edit_bytes, input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"),
                                                     tf.TensorSpec([], tf.int32, name="target_class")])
    root = generator_data_root(generator)
    alignment = read_alignment(root) if root is not None and root.is_dir() else None
    simulated, note = _simulated(root)
    meta = {"task": NAME, "input_domain": "photo", "resolution": size, "latent_dim": z_dim, "target": cfg.age_encoder.target,
            "num_classes": len(generator.class_names), "class_names": list(generator.class_names),
            "class_counts": [int(c) for c in generator.counts], "checkpoint": loaded.checkpoint,
            "generator": {"run": str(generator.run), "checkpoint": generator.step, "path": generator.checkpoint},
            "alignment": alignment.to_dict() if alignment is not None else None,
            "simulated": simulated, "simulated_note": note,
            "training_data": {"root": str(root) if root else None, "labels": generator.cfg.stylegan2.labels}}
    version = write_versioned_export({"serving_default": edit_images, "edit_images": edit_images, "encode": encode,
                                      "generate_from_z": from_z, "render_from_z": render, "edit": edit}, meta, base)
    return version, (f"{loaded.checkpoint} + {generator.checkpoint} -> {version} (signatures serving_default = "
                     f"edit_images(images, classes), encode, generate_from_z, edit(image_bytes, target_class); "
                     f"{size}x{size}, classes {', '.join(generator.class_names)})")
