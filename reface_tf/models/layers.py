"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import keras


def conv_init(seed: int | None = None) -> keras.initializers.Initializer:
    """N(0, 0.02), the Pix2Pix paper's and the TF tutorial's weight initialisation."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)


def normalization(kind: str, spatial: int, name: str) -> keras.layers.Layer | None:
    """Batch or instance norm (None for "none").

    Instance norm over a 1x1 map would output zeros, so it is skipped there (as in the reference
    PyTorch implementation's innermost block); batch norm is kept everywhere for parity with the tutorial.
    """
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "instance":
        return None if spatial <= 1 else keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return None
