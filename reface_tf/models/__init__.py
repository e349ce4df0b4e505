"""Networks, built from the config so every caller (training, evaluation, export) gets the same ones."""

from __future__ import annotations

import keras

from reface_tf.config import Config
from reface_tf.models.patchgan import build_patchgan
from reface_tf.models.unet import build_unet_generator


def generator_from_config(cfg: Config) -> keras.Model:
    m = cfg.model
    return build_unet_generator(cfg.data.image_size, cfg.data.input_channels, 3, m.generator_depth,
                                m.generator_filters, m.norm, m.dropout, m.dropout_blocks, seed=cfg.runtime.seed)


def discriminator_from_config(cfg: Config) -> keras.Model:
    m = cfg.model
    return build_patchgan(cfg.data.image_size, cfg.data.input_channels, 3, m.disc_layers,
                          m.disc_filters, m.norm, m.spectral_norm, seed=cfg.runtime.seed)


def inference_training_flag(cfg: Config) -> bool:
    """The ``training=`` flag used for every generation outside the train step (samples, evaluation, export)."""
    return cfg.model.inference_mode == "train"
