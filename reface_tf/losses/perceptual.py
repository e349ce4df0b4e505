"""VGG19 perceptual loss: mean L1 distance between VGG19 feature maps of output and target.

Weights come from ``--vgg-weights``: ``imagenet`` (the standard Keras download, cached in ~/.keras),
``random`` (for tests and offline smoke runs; not a meaningful loss), or a local ``.weights.h5`` file of
``keras.applications.VGG19(include_top=False)``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ModelError
from reface_tf.losses.terms import LossContext, LossTerm, per_example_mean


def build_vgg_features(layers: list[str], weights: str = "imagenet", image_size: int | None = None) -> keras.Model:
    """A frozen VGG19 returning the listed layers' activations for an input in [0, 255] RGB."""
    shape = (image_size, image_size, 3) if image_size else (None, None, 3)
    try:
        if weights == "imagenet":
            vgg = keras.applications.VGG19(include_top=False, weights="imagenet", input_shape=shape)
        else:
            vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=shape)
            if weights != "random":
                path = Path(weights)
                if not path.is_file():
                    raise ModelError(f"--vgg-weights: {path} does not exist; pass a VGG19 .weights.h5 file, 'imagenet' or 'random'")
                vgg.load_weights(str(path))
    except ModelError:
        raise
    except Exception as err:  # download failure, wrong file, shape mismatch: one line for the user
        raise ModelError(f"--vgg-weights {weights}: could not load VGG19 weights ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:160]}); pass a local VGG19 .weights.h5 file") from None
    names = {layer.name for layer in vgg.layers}
    missing = [name for name in layers if name not in names]
    if missing:
        raise ModelError(f"--perceptual-layers: VGG19 has no layer {missing[0]}; valid: "
                         + ", ".join(n for n in sorted(names) if "conv" in n))
    vgg.trainable = False
    return keras.Model(vgg.input, [vgg.get_layer(name).output for name in layers], name="vgg19_features")


def vgg_input(x: tf.Tensor) -> tf.Tensor:
    """Images in [-1, 1] (RGB or gray) → VGG19's input (caffe-style BGR, mean subtracted)."""
    x = tf.cast(x, tf.float32)
    if x.shape[-1] == 1:
        x = tf.image.grayscale_to_rgb(x)
    return keras.applications.vgg19.preprocess_input((x + 1.0) * 127.5)


def feature_distance(out_feats, tgt_feats, layer_weights=None) -> tf.Tensor:
    """Per-example L1 between two lists of feature maps, the targets' held constant: the mean over the layers,
    or their sum weighted by ``layer_weights``."""
    per_layer = [per_example_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(tf.stop_gradient(b), tf.float32)))
                 for a, b in zip(out_feats, tgt_feats)]
    if layer_weights is None:
        return tf.add_n(per_layer) / len(per_layer)
    return tf.add_n([w * d for w, d in zip(layer_weights, per_layer)])


def build_perceptual(cfg: Config) -> LossTerm | None:
    lo = cfg.loss
    if lo.lambda_perceptual == 0:
        return None
    features = build_vgg_features(list(lo.perceptual_layers), lo.vgg_weights)

    def distance(ctx: LossContext) -> tf.Tensor:
        return feature_distance(features(vgg_input(ctx.fake), training=False),
                                features(vgg_input(ctx.targets), training=False))

    term = LossTerm("perceptual", lo.lambda_perceptual, distance)
    term.model = features  # type: ignore[attr-defined]  # kept for tests and checkpoint-free inspection
    return term
