"""Pix2Pix: paired image-to-image translation (U-Net generator + PatchGAN discriminator), the flagship task.

Its config sections are ``data``, ``model`` and ``loss`` of ``reface_tf.config`` (they predate the registry and
keep their names so that every earlier run resumes unchanged); the task itself is in ``task.py``.
"""

from __future__ import annotations


def make_task():
    from reface_tf.tasks.pix2pix.task import Pix2PixTask  # imports TensorFlow

    return Pix2PixTask()


def default_data(cfg) -> None:
    """Without --data: the procedure demo dataset (or, offline, synthetic pairs)."""
    if cfg.data.root is None:
        from reface_tf.samples import default_dataset

        cfg.data.root = default_dataset()
