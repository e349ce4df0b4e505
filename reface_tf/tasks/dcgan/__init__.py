"""DCGAN: unconditional faces from noise (``python train.py --task dcgan``).

Config sections ``faces`` (the images) and ``dcgan`` (networks, losses, EMA, DiffAugment, metrics), with this
task's own defaults of ``optim`` (Radford et al.: Adam 2e-4, beta_1 0.5; batch 32) and of the run directory.
The task itself is in ``task.py`` (imports TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

from reface_tf.config import Config, _bad, _opt, register_task
from reface_tf.data.images import DEFAULT_MAX_PIXELS

NAME = "dcgan"
LAYOUTS = ("auto", "folder", "celeba")
EMBEDDERS = ("facenet", "sface", "none")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")  # reface_tf.data.diffaugment.POLICIES (without TensorFlow)


@dataclass
class FacesConfig:
    root: str | None = _opt(None, "folder of face images (searched recursively), the folder holding CelebA's "
                            "img_align_celeba/, or prepare.py's aligned faces; default: the demo faces", flag="--data")
    layout: str = _opt("auto", "folder, or celeba (crop 20 px top and bottom, list_eval_partition.txt split); "
                       "auto picks celeba when img_align_celeba/ is there", choices=LAYOUTS)
    image_size: int = _opt(64, "resolution of the generated faces (a power of two: 32, 64, 128, 256)")
    max_images: int | None = _opt(None, "use only the first N training images by file name (CelebA's "
                                  "'first 50,000': --max-images 50000)")
    held_out_ratio: float = _opt(0.2, "share of the images (whole groups of groups.csv) held out for the metrics "
                                 "(ignored when list_eval_partition.txt gives the split)")
    max_held_out: int = _opt(2000, "at most this many held-out images")
    flip: bool = _opt(True, "random horizontal flips of the training images")
    max_pixels: int = _opt(DEFAULT_MAX_PIXELS, "refuse images with more pixels than this")


@dataclass
class DCGANConfig:
    latent_dim: int = _opt(100, "length of z (the seed's 100; keras-io uses 128)")
    generator_filters: int = _opt(64, "channels of the generator's last hidden layer (Radford's ngf)")
    discriminator_filters: int = _opt(64, "channels of the discriminator's first layer (Radford's ndf)")
    discriminator_batch_norm: bool = _opt(True, "batch norm in the discriminator (all but its first layer)")
    label_smoothing: float = _opt(0.0, "one-sided label smoothing: real images get the label 1 - s")
    diffaugment: str = _opt("color,translation,cutout", "DiffAugment policies applied to real and fake images "
                            "before D (any of color, translation, cutout; empty = off)")
    ema_decay: float = _opt(0.999, "decay of the generator's EMA copy (used for samples, metrics and export)")
    standing_samples: int = _opt(256, "z draws that re-estimate the EMA generator's batch-norm statistics before it "
                                 "samples (standing statistics)")
    metric_samples: int = _opt(128, "generated faces compared with the held-out faces at each validation")
    metric_every: int = _opt(10, "validate (val_kid_<embedder>) every N epochs and at the last")
    metric_embedder: str = _opt("facenet", "embedding of the validation KID (val_kid_<name>)", choices=EMBEDDERS)
    grid_seeds: int = _opt(16, "seeds 0..N-1 drawn in the per-epoch sample grid")


def validate_dcgan(cfg: Config, check_paths: bool) -> None:
    from pathlib import Path

    f, d = cfg.faces, cfg.dcgan
    if f.image_size not in (32, 64, 128, 256):
        raise _bad("faces", "image_size", f"{f.image_size} is not one of 32, 64, 128, 256")
    if f.max_images is not None and f.max_images < 1:
        raise _bad("faces", "max_images", f"must be at least 1, got {f.max_images}")
    if not 0 <= f.held_out_ratio < 1:
        raise _bad("faces", "held_out_ratio", f"must be in [0, 1), got {f.held_out_ratio}")
    if check_paths and f.root is not None and not Path(f.root).is_dir():
        raise _bad("faces", "root", f"{f.root} is not a folder; pass a folder of face images (or omit --data for the demo)")
    for key in ("latent_dim", "generator_filters", "discriminator_filters", "standing_samples", "metric_samples", "metric_every",
                "grid_seeds"):
        if getattr(d, key) < 1:
            raise _bad("dcgan", key, f"must be at least 1, got {getattr(d, key)}")
    if not 0 <= d.label_smoothing < 0.5:
        raise _bad("dcgan", "label_smoothing", f"must be in [0, 0.5), got {d.label_smoothing}")
    if not 0 <= d.ema_decay < 1:
        raise _bad("dcgan", "ema_decay", f"must be in [0, 1), got {d.ema_decay}")
    unknown = [p for p in (q.strip() for q in d.diffaugment.split(",")) if p and p not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise _bad("dcgan", "diffaugment", f"unknown policy {unknown[0]!r}; use any of {', '.join(DIFFAUGMENT_POLICIES)} "
                   "separated by commas, or '' for none")

register_task(NAME, {"faces": FacesConfig, "dcgan": DCGANConfig}, validate_dcgan,
              defaults={"optim": {"epochs": 100, "batch_size": 32, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5},
                        "runtime": {"run_dir": "runs/dcgan", "log_every": 20, "image_every": 200}})


def fill_default_data(cfg: Config) -> None:
    """No ``--data``: the real demo faces (the aligned photos of the procedure demo, built once, cached)."""
    if cfg.faces.root is None:
        from reface_tf.samples import demo_faces

        cfg.faces.root = demo_faces()


def make_task():
    from reface_tf.tasks.dcgan.task import DCGANTask  # imports TensorFlow

    return DCGANTask()
