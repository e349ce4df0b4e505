"""Class-conditional StyleGAN2-ADA: faces by class (``python train.py --task stylegan2``).

Config sections ``faces`` (the images, shared with the DCGAN task) and ``stylegan2`` (labels, networks, losses,
ADA). Defaults follow NVlabs/stylegan2-ada ``--cfg auto`` (lr 0.0025, Adam betas (0, 0.99), mapping 2 layers,
R1 gamma 0.0002 res^2 / batch, EMA half-life batch * 10/32 kimg with ramp-up 0.05, ADA target 0.6), with the
networks' widths and the ADA speed scaled down for a CPU demo (docs/stylegan2.md lists each value and its source).
The task itself is in ``task.py`` (imports TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

from reface_tf.config import Config, _bad, _opt, register_task
from reface_tf.tasks.dcgan import EMBEDDERS, FacesConfig

NAME = "stylegan2"
LABEL_SOURCES = ("auto", "csv", "utkface", "imdb-wiki")  # reface_tf.data.age_labels.SOURCES (without numpy)


@dataclass
class StyleGAN2Config:
    labels: str = _opt("auto", "where the class labels come from: labels.csv (path,age or path,class), a UTKFace "
                       "folder, or the processed IMDB-WIKI layout; auto detects", choices=LABEL_SOURCES)
    age_groups: str = _opt("0-10,11-20,21-30,31-40,41-50,51-60,61-70,71-80,81+", "age bins of the classes when the "
                           "labels give ages")
    conditional: bool = _opt(True, "train one generator conditioned on the class (False: unconditional)")
    z_dim: int = _opt(128, "length of z (reference: 512)")
    w_dim: int = _opt(128, "length of w (reference: 512)")
    mapping_layers: int = _opt(2, "FC layers of the mapping network (auto: 2, paper256: 8)")
    channel_base: int = _opt(2048, "channels at resolution r are min(channel_base / r, channel_max) (reference "
                             "auto: 16384 below 512 px)")
    channel_max: int = _opt(128, "most channels of a layer (reference: 512)")
    mixed_resolutions: int = _opt(4, "under --precision mixed_*, the highest resolutions that compute in 16 bits "
                                  "(reference: 4)")
    r1_gamma: float | None = _opt(None, "R1 weight (default: the reference's auto rule 0.0002 * res^2 / batch)")
    r1_every: int = _opt(16, "lazy R1: every N steps, weighted N times")
    pl_weight: float = _opt(0.0, "path-length regularisation weight (reference: 2; off by default on CPU, it "
                            "doubles the cost of its steps)")
    pl_every: int = _opt(4, "lazy path-length regularisation every N steps")
    style_mixing: float = _opt(0.9, "probability of style mixing per batch")
    ema_kimg: float | None = _opt(None, "EMA half-life in thousands of images (default: batch * 10 / 32)")
    ema_rampup: float = _opt(0.05, "EMA half-life at most this times the images seen (0 = no ramp-up)")
    ada_target: float = _opt(0.6, "ADA target of E[sign(D(real))] (0 = augmentation off)")
    ada_p: float = _opt(0.0, "starting ADA probability (the reference's --p; with --ada-target 0 it stays fixed)")
    ada_interval: int = _opt(4, "steps between updates of the ADA probability p")
    ada_kimg: float = _opt(10.0, "thousands of images for p to go from 0 to 1 (reference: 500; scaled for the CPU demo)")
    ada_luma_flip: bool = _opt(False, "include the luma flip in the colour transforms (not in the reference's bgc)")
    truncation: float = _opt(1.0, "truncation psi of the sample grids")
    grid_seeds: int = _opt(8, "seeds 0..N-1 drawn per class in the per-epoch grid")
    metric_samples: int = _opt(128, "EMA-generator faces compared with the held-out faces at each validation (classes "
                               "drawn as the training distribution)")
    metric_every: int = _opt(10, "validate (val_kid_<embedder>) every N epochs and at the last")
    metric_embedder: str = _opt("facenet", "embedding of the validation KID (val_kid_<name>; none = no validation)",
                                choices=EMBEDDERS)


def validate_stylegan2(cfg: Config, check_paths: bool) -> None:
    f, s = cfg.faces, cfg.stylegan2
    if f.image_size not in (32, 64, 128, 256):
        raise _bad("faces", "image_size", f"{f.image_size} is not one of 32, 64, 128, 256")
    for key in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "r1_every", "pl_every", "ada_interval",
                "grid_seeds", "metric_samples", "metric_every"):
        if getattr(s, key) < 1:
            raise _bad("stylegan2", key, f"must be at least 1, got {getattr(s, key)}")
    if not 0 <= f.held_out_ratio < 1:
        raise _bad("faces", "held_out_ratio", f"must be in [0, 1), got {f.held_out_ratio}")
    if not 0 <= s.style_mixing <= 1:
        raise _bad("stylegan2", "style_mixing", f"must be in [0, 1], got {s.style_mixing}")
    if not 0 <= s.ada_p <= 1:
        raise _bad("stylegan2", "ada_p", f"must be in [0, 1], got {s.ada_p}")
    if not 0 <= s.ada_target < 1:
        raise _bad("stylegan2", "ada_target", f"must be in [0, 1), got {s.ada_target}")
    if cfg.optim.accumulate > 1:
        raise _bad("optim", "accumulate", f"{cfg.optim.accumulate}: stylegan2 updates the ADA probability and the "
                   "path-length mean inside each step, which slices would repeat; use --accumulate 1")
    batch = cfg.optim.batch_size
    if batch > 4 and batch % 4:
        raise _bad("optim", "batch_size", f"{batch}: the minibatch-stddev groups of 4 need a multiple of 4 (or at most 4)")
    if check_paths and f.root is not None:
        from pathlib import Path

        if not Path(f.root).is_dir():
            raise _bad("faces", "root", f"{f.root} is not a folder; pass a folder of labelled face images (or omit --data "
                       "for the demo)")


register_task(NAME, {"faces": FacesConfig, "stylegan2": StyleGAN2Config}, validate_stylegan2,
              defaults={"faces": {"image_size": 32},
                        "optim": {"epochs": 80, "batch_size": 8, "lr_g": 0.0025, "lr_d": 0.0025, "beta1": 0.0,
                                  "beta2": 0.99},
                        "runtime": {"run_dir": "runs/stylegan2", "log_every": 20, "image_every": 200}})


def fill_default_data(cfg: Config) -> None:
    """No ``--data``: the demo faces with two SIMULATED age classes (``reface_tf.samples.demo_age_faces``)."""
    if cfg.faces.root is None:
        from reface_tf.samples import demo_age_faces

        cfg.faces.root = str(demo_age_faces())


def make_task():
    from reface_tf.tasks.stylegan2.task import StyleGAN2Task  # imports TensorFlow

    return StyleGAN2Task()
