"""The SPADE task: (label map, photo) batches, SPADE generator + multiscale discriminator (+ optional VAE
encoder), trained in one step group.

One forward pass per step: the encoder (when on) turns the photo into ``mu, logvar`` and the batch's ``z`` into
``mu + exp(logvar / 2) * z``; the generator draws the fake from (map, z); the discriminator sees the real and the
fake in ONE batched call (every normalisation in it is per image, so the result is that of two calls) and
returns both halves' features per scale. The G phase (generator and encoder) minimises hinge adversarial +
``lambda_feat`` feature matching + ``lambda_perceptual`` perceptual + ``lambda_kld`` KL; the D phase the hinge
loss of real and fake, summed over scales.

Validation and previews generate from each map with a fixed latent per validation pair (seeded by its index;
with the encoder, ``mu`` of the pair's photo), so the numbers of two epochs compare the networks, not the draws.
PSNR/SSIM against the real photo measure how close the face is to the photo the map came from, which a
map-to-face model can only partly be: the floors (the mean training face, and the map's palette picture as the
output) say how far that is from doing nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.data.labels import LabelStore, label_eval_dataset, label_training_batches, latent_for_seed, mirror_table, scan_label_dataset
from reface_tf.data.pairs import Pair, read_splits, split_pairs, write_splits
from reface_tf.errors import DataError
from reface_tf.faces.alignment_settings import record_run_alignment
from reface_tf.losses import adversarial
from reface_tf.losses.feature_matching import feature_matching
from reface_tf.losses.kl import kl_divergence
from reface_tf.losses.perceptual import feature_distance
from reface_tf.models.spade import build_spade_discriminator, build_spade_encoder, build_spade_generator, per_scale
from reface_tf.synth.segmaps import CLASS_NAMES, PALETTE
from reface_tf.tasks.pix2pix.floors import Floors, FloorWatch, compute_floors, load_floors, mean_target, save_floors
from reface_tf.tasks.pix2pix.task import mean_metrics
from reface_tf.train.monitor import TensorBoard, sample_grid
from reface_tf.tasks.common import training_split
from reface_tf.train.step import make_optimizer
from reface_tf.train.task import Phase, StepContext, StepGroup, TaskData

log = logging.getLogger(__name__)

NAME = "spade"
DISCRIMINATOR_SCALARS = {"d_real": "D/real", "d_fake": "D/fake", "d_accuracy": "D/accuracy"}
PREVIEW_TAG = "samples/map_output_photo"
# NVlabs/SPADE's VGG19 loss: relu1_1 ... relu5_1 (Keras VGG19's blockN_conv1 include the ReLU), deeper weighs more.
VGG_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


# ---------------------------------------------------------------------------------------------- networks


def generator_from_config(cfg: Config, name: str = "generator") -> keras.Model:
    s = cfg.spade
    return build_spade_generator(cfg.data.image_size, s.num_classes, s.z_dim, s.gen_filters, s.num_upsampling,
                                 s.spade_hidden, s.spectral_norm, seed=cfg.runtime.seed, name=name)


def discriminator_from_config(cfg: Config) -> keras.Model:
    s = cfg.spade
    return build_spade_discriminator(cfg.data.image_size, s.num_classes, s.disc_filters, s.disc_layers, s.disc_scales,
                                     s.spectral_norm, seed=cfg.runtime.seed)


def encoder_from_config(cfg: Config) -> keras.Model:
    s = cfg.spade
    return build_spade_encoder(cfg.data.image_size, s.z_dim, s.encoder_filters, seed=cfg.runtime.seed)


def style_latent(encoder: keras.Model | None, photos: tf.Tensor | None, z: tf.Tensor, sample: bool) -> tuple:
    """(z for the generator, mu, logvar): the encoder's ``mu + exp(logvar / 2) * z`` (``mu`` alone unless
    ``sample``), or ``z`` itself without an encoder."""
    if encoder is None or photos is None:
        return z, None, None
    mu, logvar = encoder(photos, training=sample)
    return (mu + tf.exp(0.5 * logvar) * z if sample else mu), mu, logvar


# ---------------------------------------------------------------------------------------------- losses


def perceptual_distance(cfg: Config):
    """``(fake, real) -> [N]`` of ``--perceptual``, or None when off (weight 0 or 'none')."""
    s = cfg.spade
    if s.perceptual == "none" or s.lambda_perceptual == 0:
        return None
    if s.perceptual == "vgg19":
        from reface_tf.losses.perceptual import build_vgg_features, vgg_input

        vgg = build_vgg_features(list(VGG_LAYERS), s.vgg_weights)
        return lambda fake, real: feature_distance(vgg(vgg_input(fake), training=False), vgg(vgg_input(real), training=False),
                                                   VGG_LAYER_WEIGHTS)
    from reface_tf.losses.face_features import FACE_LAYER_WEIGHTS, load_face_features

    face = load_face_features(s.face_model)
    return lambda fake, real: feature_distance(face(fake), face(real), FACE_LAYER_WEIGHTS)


def split_halves(scales) -> tuple[list, list]:
    """The discriminator's per-scale features of a (real ‖ fake) batch → (real scales, fake scales)."""
    halves = [[tf.split(f, 2, axis=0) for f in scale] for scale in scales]
    return [[r for r, _ in scale] for scale in halves], [[f for _, f in scale] for scale in halves]


def spade_losses(networks: dict[str, keras.Model], cfg: Config):
    """The loss function of the one step group (``reface_tf.train.task.LossFn``)."""
    s = cfg.spade
    generator, discriminator, encoder = networks["generator"], networks["discriminator"], networks.get("encoder")
    perceptual = perceptual_distance(cfg)

    def losses(batch: dict[str, tf.Tensor], ctx: StepContext):
        labels, real = batch["labels"], batch["target"]
        z, mu, logvar = style_latent(encoder, real, batch["z"], sample=True)
        fake = generator([labels, z], training=True)
        scales = per_scale(discriminator([tf.concat([labels, labels], 0), tf.concat([real, tf.cast(fake, real.dtype)], 0)],
                                         training=True))
        real_scales, fake_scales = split_halves(scales)
        real_logits, fake_logits = [sc[-1] for sc in real_scales], [sc[-1] for sc in fake_scales]
        logs = {"g_adv": ctx.average(adversarial.generator_loss("hinge", fake_logits))}
        g_total = logs["g_adv"]
        if s.lambda_feat > 0:
            logs["feat_match"] = ctx.average(feature_matching(real_scales, fake_scales))
            g_total += s.lambda_feat * logs["feat_match"]
        if perceptual is not None:
            logs["perceptual"] = ctx.average(perceptual(fake, real))
            g_total += s.lambda_perceptual * logs["perceptual"]
        if mu is not None:
            logs["kld"] = ctx.average(kl_divergence(mu, logvar))
            g_total += s.lambda_kld * logs["kld"]
        d_total = ctx.average(adversarial.discriminator_loss("hinge", real_logits, fake_logits))
        n = tf.shape(real)[0]
        logs.update({k: ctx.share(tf.reduce_mean(v), n)
                     for k, v in adversarial.decision_stats("hinge", real_logits, fake_logits).items()})
        return {"g_total": g_total, "d_total": d_total}, logs

    return losses


def gan_group(networks: dict[str, keras.Model], cfg: Config) -> StepGroup:
    g_networks = ("generator", "encoder") if "encoder" in networks else ("generator",)
    return StepGroup("gan", (Phase("g_total", "g_optimizer", g_networks), Phase("d_total", "d_optimizer", ("discriminator",))),
                     spade_losses(networks, cfg))


# ---------------------------------------------------------------------------------------------- data


def splits_for_run(cfg: Config, run_dir: Path) -> dict[str, list[Pair]]:
    """The run's split of (label map, photo) pairs: read back on resume, otherwise made now and saved."""
    if (run_dir / "splits.json").is_file():
        splits = read_splits(run_dir)
        missing = [p for pairs in splits.values() for p in pairs for f in (p.input_path, p.target_path) if not Path(f).is_file()]
        if missing:
            raise DataError(f"the run's dataset lacks {len(missing)} file(s) of its split (first: {missing[0].input_path}); "
                            "restore them or start a new --run-dir")
        return splits
    if cfg.data.root is None:
        raise DataError("--data: no dataset given; pass a folder with labels/ and B/ (or omit it for the demo)")
    scan = scan_label_dataset(cfg.data.root, cfg.data, cfg.spade.num_classes)
    scan.write_report(run_dir / "data_report.json")
    log.info("%s%s", scan.summary(), f"; each named in {run_dir / 'data_report.json'}" if scan.problems else "")
    splits = split_pairs(scan.pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)
    write_splits(run_dir, splits, scan.root, cfg.runtime.seed)
    record_run_alignment(scan.root, run_dir)
    log.info("split: %s", ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return splits


def class_palette(num_classes: int) -> np.ndarray:
    """``[num_classes, 3]`` uint8: the CelebAMask-HQ colours, grey for classes past them."""
    extra = np.full((max(0, num_classes - len(PALETTE)), 3), 128, np.uint8)
    return np.concatenate([PALETTE, extra])[:num_classes]


def palette_images(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Class ids ``[..., H, W]`` → their palette pictures in [-1, 1]."""
    return class_palette(num_classes)[np.asarray(ids)].astype(np.float32) / 127.5 - 1.0


def class_names(num_classes: int) -> list[str]:
    return list(CLASS_NAMES[:num_classes]) + [f"class_{i}" for i in range(len(CLASS_NAMES), num_classes)]


# ---------------------------------------------------------------------------------------------- the run


class SpadeRun:
    """One SPADE run: split, pipelines, fixed preview batch and floors."""

    ema: dict = {}
    step_scalars = DISCRIMINATOR_SCALARS
    progress_keys = ("g_total", "g_adv", "d_total")
    preview_tag = PREVIEW_TAG

    def __init__(self, cfg: Config, run_dir: Path, tb: TensorBoard):
        self.cfg = cfg
        s, d = cfg.spade, cfg.data
        train_pairs, val_pairs, steps_per_epoch = training_split(splits_for_run(cfg, run_dir), cfg)
        global_batch = cfg.optim.batch_size
        store = LabelStore(train_pairs, d.load_size, s.num_classes, d.max_pixels, cache=d.cache)
        self.val_store = LabelStore(val_pairs, d.image_size, s.num_classes, d.max_pixels, cache=True)
        self.val_ds = label_eval_dataset(self.val_store, cfg.runtime.seed, s.z_dim, min(8, len(val_pairs)))
        self.fixed = next(iter(label_eval_dataset(self.val_store, cfg.runtime.seed, s.z_dim, cfg.runtime.sample_count)))
        self.floors = self._floors(run_dir, store, tb)
        mirror = mirror_table(class_names(s.num_classes)) if s.mirror_classes else None
        seed = cfg.runtime.seed

        def batches(first_epoch: int, epochs: int, first_skip: int) -> tf.data.Dataset:
            return label_training_batches(store, d, seed, s.z_dim, first_epoch, epochs, global_batch, steps_per_epoch,
                                          first_skip, mirror)

        self.data = TaskData(steps_per_epoch, global_batch, batches)

    def _floors(self, run_dir: Path, store: LabelStore, tb: TensorBoard) -> Floors:
        """Mean training face and map-palette-as-output scores on the validation pairs, once per run."""
        floors = load_floors(run_dir)
        if floors is None:
            floors = compute_floors(mean_target(store, self.cfg.data.image_size),
                                    ((palette_images(b["ids"].numpy(), self.cfg.spade.num_classes), b["target"].numpy())
                                     for b in self.val_ds))
            save_floors(floors, run_dir)
            tb.scalars({"floor/mean_face_psnr": floors.mean_face_psnr, "floor/mean_face_ssim": floors.mean_face_ssim,
                        "floor/palette_psnr": floors.identity_psnr, "floor/palette_ssim": floors.identity_ssim}, 0)
        log.info("validation floors: %s (output = input: the map's palette picture)", floors.describe())
        return floors

    def build_optimizers(self, networks):
        o = self.cfg.optim
        return {"g_optimizer": (make_optimizer(o.lr_g, self.cfg), o.lr_g),
                "d_optimizer": (make_optimizer(o.lr_d, self.cfg), o.lr_d)}

    def step_groups(self, networks):
        return [gan_group(networks, self.cfg)]

    def generate(self, networks, batch: dict[str, tf.Tensor]) -> np.ndarray:
        z, _, _ = style_latent(networks.get("encoder"), batch["target"], batch["z"], sample=False)
        return networks["generator"]([batch["labels"], z], training=False).numpy()

    def preview(self, networks) -> np.ndarray:
        palette = palette_images(self.fixed["ids"].numpy(), self.cfg.spade.num_classes)
        return sample_grid(palette, self.generate(networks, self.fixed), self.fixed["target"].numpy())

    def validate(self, networks) -> dict[str, float]:
        return mean_metrics((self.generate(networks, b), b["target"].numpy()) for b in self.val_ds)

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]):
        return {"below_floors": FloorWatch(self.floors).below(val["val_psnr"], val["val_ssim"])}, None


# ---------------------------------------------------------------------------------------------- the task


class SpadeTask:
    name = NAME
    input_domain = "label_map"
    # What evaluate.py and predict.py say of a run of this task, which turns maps (not photos) into faces.
    no_source_hint = "export it with python export.py --run-dir RUN, then python predict.py MAP.png --model EXPORT"

    def evaluation_source(self, run_dir: str | os.PathLike, checkpoint: int | None = None):
        """The run as a translation of class-id (or palette) pictures, for evaluate.py only: predict.py's photo
        inputs mean nothing to it."""
        from reface_tf.tasks.spade.source import spade_source_from_run

        return spade_source_from_run(run_dir, checkpoint)

    def build_networks(self, cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        builders = {"generator": generator_from_config, "discriminator": discriminator_from_config}
        if cfg.spade.use_encoder:
            builders["encoder"] = encoder_from_config
        return {name: build(cfg) for name, build in builders.items() if names is None or name in names}

    def start(self, cfg: Config, run_dir: Path, tb: TensorBoard) -> SpadeRun:
        return SpadeRun(cfg, run_dir, tb)

    def export(self, run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike,
               precision: str = "fp32", tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
        from reface_tf.tasks.spade.export import export_spade

        return export_spade(run_dir, checkpoint, base, precision=precision, tflite=tflite, onnx=onnx)


def latents_from_seeds(seeds: tf.Tensor, z_dim: int) -> tf.Tensor:
    """``[N]`` int64 seeds → ``[N, z_dim]`` latents (seed s: the stateless normal of [s, 0])."""
    return tf.map_fn(lambda s: latent_for_seed(tf.stack([s, tf.constant(0, tf.int64)]), z_dim), tf.cast(seeds, tf.int64),
                     fn_output_signature=tf.float32)
