"""Pix2Pix: paired image-to-image translation (U-Net generator + PatchGAN discriminator), the flagship task.

Its config sections are ``data``, ``model`` and ``loss`` of ``reface_tf.config`` (they predate the registry and
keep their names so that every earlier run resumes unchanged); the task itself is in ``task.py``.
"""

from __future__ import annotations


def make_task():
    from reface_tf.tasks.pix2pix.task import Pix2PixTask  # imports TensorFlow

    return Pix2PixTask()


def fill_default_data(cfg) -> None:
    """No ``--data``: the procedure demo (built once, cached), or synthetic pairs offline; with
    ``--input-domain sketch``, the sketch demo (A = pencil sketch of the aligned photo, B = the photo)."""
    if cfg.data.root is None:
        from reface_tf.samples import default_dataset, ensure_demo

        cfg.data.root = str(ensure_demo("sketch")) if cfg.data.input_domain == "sketch" else default_dataset()
