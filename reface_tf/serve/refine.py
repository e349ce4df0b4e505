"""Per-image refinement of an age editor's latents by optimisation (``edit.py --refine-steps N``, off by default).

The encoder gives a start z in one pass; a few hundred Adam steps then lower the L1 between the face and its
re-rendering with the face's own (source) class, with a small pull of z toward the prior's shell (the mean of z²
toward 1) so the latent stays where the mapping network was trained. The refined z is then re-rendered with each
target class, as an unrefined edit is. Costs one generator forward and backward pass per step and image; the time
per image is returned so the command can report it.

Example::

    refined = refine_latents(editor, aligned_faces, source_classes, steps=200)
    edits = render_latents(editor, refined.z, target_classes)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from reface_tf.errors import ModelError
from reface_tf.serve.age_editor import AgeEditor


@dataclass
class Refined:
    z: np.ndarray              # [N, z_dim] float32
    start_l1: np.ndarray       # per image: L1 of the encoder's start ([-1, 1] units)
    final_l1: np.ndarray       # per image: L1 after refinement
    seconds_per_image: float


def _renderer(editor: AgeEditor):
    if editor.render is None:
        raise ModelError(f"--refine-steps: {editor.description} has no float render_from_z signature (an export made "
                         "before it); re-export the run with python export.py, or drop --refine-steps")
    return editor.render


def refine_latents(editor: AgeEditor, faces: np.ndarray, source_classes, steps: int, lr: float = 0.05,
                   prior_weight: float = 0.01) -> Refined:
    """Optimise the encoder's z of each aligned uint8 face so that G(z, source class) matches it."""
    import tensorflow as tf

    render = _renderer(editor)
    start = time.perf_counter()
    faces = np.asarray(faces, np.uint8)
    classes = tf.constant(np.broadcast_to(np.asarray(source_classes, np.int32), (len(faces),)))
    target = tf.constant(faces, tf.float32) / 127.5 - 1.0
    z = tf.Variable(np.asarray(editor.encode(faces), np.float32))
    optimizer = tf.keras.optimizers.Adam(lr)

    def per_image_l1() -> tf.Tensor:
        return tf.reduce_mean(tf.abs(render(z, classes) - target), axis=[1, 2, 3])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            l1 = per_image_l1()
            prior = tf.square(tf.reduce_mean(tf.square(z), axis=-1) - 1.0)
            loss = tf.reduce_sum(l1 + prior_weight * prior)  # a sum: each image's z gets its own gradient
        optimizer.apply_gradients([(tape.gradient(loss, z), z)])
        return l1

    first = per_image_l1().numpy()
    for _ in range(steps):
        step()
    final = per_image_l1().numpy()
    seconds = (time.perf_counter() - start) / max(len(faces), 1)
    return Refined(z.numpy(), first, final, seconds)


def render_latents(editor: AgeEditor, z: np.ndarray, classes) -> np.ndarray:
    """uint8 faces of latents ``z`` rendered with ``classes`` (one for all, or one per latent)."""
    import tensorflow as tf

    render = _renderer(editor)
    classes = np.broadcast_to(np.asarray(classes, np.int32), (len(z),))
    images = render(tf.constant(z, tf.float32), tf.constant(classes))
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8).numpy()
