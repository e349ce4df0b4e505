"""The age encoder task: a frozen StyleGAN2 EMA generator draws ``(face, z, class)`` every step; the encoder
learns ``face -> z`` (not looking at the class); an edit re-renders ``z`` with another class.

* Data: each batch is z ~ N(0, 1) and classes drawn in proportion to the generator run's training counts, from
  stateless seeds of (run seed, epoch, step), so a resumed run replays them exactly; the faces are generated
  inside the step (with the generator's constant noise, as edits and exports render them) and clipped to
  [-1, 1] as every exported face is.
* Losses: ``lambda_latent`` * MSE(E(x), z) (the seed's); ``lambda_pixel`` * L1(G(E(x), c), x) and
  ``lambda_identity`` * FaceNet distance, through the frozen generator.
* Validation: fixed generated pairs (``val_latent_mse``, ``val_psnr``/``val_ssim`` of their re-rendering) and the
  generator run's held-out REAL faces re-rendered with their own class (``val_real_psnr``/``val_real_ssim``):
  the gap between the two is the gap between generated training faces and photos.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.data.images import tile_images
from reface_tf.data.pipeline import from_uint8
from reface_tf.errors import ConfigError, ModelError
from reface_tf.models.inception_resnet import build_inception_resnet_encoder
from reface_tf.tasks.age_encoder import NAME
from reface_tf.tasks.dcgan.export import _as_uint8
from reface_tf.train.step import make_optimizer
from reface_tf.train.task import Phase, StepContext, StepGroup, TaskData

log = logging.getLogger(__name__)

GENERATOR_FILE = "generator.json"
VAL_SEED = 5_000_000  # validation pairs are drawn from seeds no training step uses
PREVIEW_TAG = "samples/age_edits"


# ----------------------------------------------------------------------------------------------- the generator

def generator_record(cfg: Config, run_dir: Path | None) -> tuple[Path, int]:
    """(generator run, checkpoint step) of an encoder run: read from its ``generator.json``, else resolved now
    (``--generator-checkpoint`` or the latest) and, when ``run_dir`` is given, recorded."""
    from reface_tf.train.checkpoints import checkpoint_path

    a = cfg.age_encoder
    saved = run_dir / GENERATOR_FILE if run_dir is not None else None
    if saved is not None and saved.is_file():
        data = json.loads(saved.read_text())
        if a.generator_checkpoint is not None and a.generator_checkpoint != data["checkpoint"]:
            raise ConfigError(f"--generator-checkpoint {a.generator_checkpoint}: this run's encoder was trained on "
                              f"ckpt-{data['checkpoint']} ({saved}); start a new --run-dir for another checkpoint")
        return Path(a.generator_run), int(data["checkpoint"])
    path = checkpoint_path(a.generator_run, a.generator_checkpoint)
    number = int(Path(path).name.split("-")[-1])
    if saved is not None:
        from reface_tf.faces.prepare import write_text_atomic

        write_text_atomic(saved, json.dumps({"run": str(a.generator_run), "checkpoint": number}))
    return Path(a.generator_run), number


def generator_shape(cfg: Config) -> tuple[int, int]:
    """(resolution, z_dim) of the generator run, from its config alone (no weights)."""
    from reface_tf.tasks import run_config

    gen = run_config(cfg.age_encoder.generator_run)
    if gen.task.name != "stylegan2":
        raise ModelError(f"--generator-run {cfg.age_encoder.generator_run}: a {gen.task.name} run; the age encoder "
                         "inverts a --task stylegan2 run")
    return gen.faces.image_size, gen.stylegan2.z_dim


class FrozenGenerator:
    """A StyleGAN2 run's EMA generator with what an editor needs of it: class names, training counts, renders."""

    def __init__(self, run: Path, checkpoint: int):
        from reface_tf.tasks import load_run
        from reface_tf.tasks.stylegan2.task import class_names_of, train_counts_of

        loaded = load_run(run, checkpoint, names=("generator_ema",))
        self.network, self.cfg, self.run, self.checkpoint = loaded.networks["generator_ema"], loaded.cfg, run, loaded.checkpoint
        self.network.trainable = False
        self.step = checkpoint
        if self.network.num_classes < 2:
            raise ModelError(f"--generator-run {run}: an unconditional generator; age editing re-renders a face with "
                             "another class, so train it with --conditional true on two or more classes")
        self.class_names = class_names_of(loaded.cfg, run)
        self.counts = np.asarray(train_counts_of(run, self.network.num_classes), np.float64)
        self.resolution, self.z_dim = self.network.resolution, self.network.z_dim

    def render(self, z: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        """Faces in [-1, 1] of (z, class): mapping without truncation, constant noise, clipped as exports clip."""
        ws = self.network.mapping(z, tf.cast(classes, tf.int32))
        return tf.clip_by_value(self.network.synthesis(ws), -1.0, 1.0)


# ------------------------------------------------------------------------------------------------ networks

def build_networks(cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
    size, z_dim = generator_shape(cfg)
    a = cfg.age_encoder
    networks = {"encoder": lambda: build_inception_resnet_encoder(size, z_dim, a.encoder_width, a.encoder_blocks,
                                                                  a.encoder_max_width, seed=cfg.runtime.seed)}
    return {name: make() for name, make in networks.items() if names is None or name in names}


def encode(encoder: keras.Model, faces_uint8: np.ndarray, batch: int = 64) -> np.ndarray:
    """z of uint8 faces, in inference mode."""
    parts = [encoder(from_uint8(tf.constant(faces_uint8[i:i + batch])), training=False).numpy()
             for i in range(0, len(faces_uint8), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.output_shape[-1]), np.float32)


def render_uint8(generator: FrozenGenerator, z: np.ndarray, classes: np.ndarray, batch: int = 64) -> np.ndarray:
    parts = [_as_uint8(generator.render(tf.constant(z[i:i + batch], tf.float32),
                                        tf.constant(np.asarray(classes)[i:i + batch], tf.int32))).numpy()
             for i in range(0, len(z), batch)]
    size = generator.resolution
    return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)


def edit_faces(encoder: keras.Model, generator: FrozenGenerator, faces_uint8: np.ndarray, classes) -> np.ndarray:
    """Each face re-rendered with its target class (one class for all, or one per face)."""
    classes = np.broadcast_to(np.asarray(classes, np.int32), (len(faces_uint8),))
    return render_uint8(generator, encode(encoder, faces_uint8), classes)


# ------------------------------------------------------------------------------------------------- the run

def _image_scores(outputs: np.ndarray, targets: np.ndarray, prefix: str) -> dict[str, float]:
    from reface_tf.metrics.image import batch_metrics

    rows = batch_metrics(outputs, targets, data_range=255.0)
    return {f"{prefix}psnr": float(np.mean(rows["psnr"])), f"{prefix}ssim": float(np.mean(rows["ssim"]))}


class AgeEncoderRun:
    preview_tag = PREVIEW_TAG
    step_scalars: dict[str, str] = {}
    progress_keys = ("total", "latent_mse", "pixel_l1")

    def __init__(self, cfg: Config, run_dir: Path):
        from reface_tf.serve.source import classes_for_seeds
        from reface_tf.tasks.dcgan.task import latent_of_seeds
        from reface_tf.tasks.stylegan2.task import StyleGAN2Task

        self.cfg, self.run_dir, a = cfg, run_dir, cfg.age_encoder
        self.generator = FrozenGenerator(*generator_record(cfg, run_dir))
        g = self.generator
        log.info("inverting %s (%dx%d, z %d, classes %s)", g.checkpoint, g.resolution, g.resolution, g.z_dim,
                 ", ".join(g.class_names))
        batch, seed, z_dim = cfg.optim.batch_size, cfg.runtime.seed, g.z_dim
        steps = a.pairs_per_epoch // batch
        if cfg.optim.steps_per_epoch:
            steps = min(steps, cfg.optim.steps_per_epoch)
        log_odds = tf.constant(np.log(np.maximum(g.counts / g.counts.sum(), 1e-12))[None], tf.float32)

        def make_batch(epoch: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
            base = tf.stack([tf.constant(seed, tf.int64), epoch * 1_000_003 + step])
            classes = tf.random.stateless_categorical(log_odds, batch, base + [0, 2], dtype=tf.int32)[0]
            return {"z": tf.random.stateless_normal([batch, z_dim], base + [0, 1]), "class": classes}

        def batches(first_epoch: int, epochs: int, first_skip: int) -> tf.data.Dataset:
            rows = [(e, s) for e in range(first_epoch, epochs) for s in range(first_skip if e == first_epoch else 0, steps)]
            epoch_of = np.array([r[0] for r in rows], np.int64)
            step_of = np.array([r[1] for r in rows], np.int64)
            return tf.data.Dataset.from_tensor_slices((epoch_of, step_of)).map(make_batch).prefetch(2)

        self.data = TaskData(steps, batch, batches)
        self.ema: dict = {}
        val_seeds = np.arange(VAL_SEED, VAL_SEED + a.val_pairs, dtype=np.int64)
        self.val_z = latent_of_seeds(tf.constant(val_seeds), z_dim).numpy()
        self.val_classes = classes_for_seeds(val_seeds, g.counts)
        self.val_faces = render_uint8(g, self.val_z, self.val_classes)
        held, held_cls, _, _ = StyleGAN2Task().labelled_faces(g.run) if a.val_real or a.preview_faces else ((), (), (), ())
        self.real, self.real_classes = np.asarray(held)[: max(a.val_real, a.preview_faces)], np.asarray(held_cls, np.int32)
        if not len(self.real):
            log.warning("the generator run holds out no real faces: val_real_* and the real-face preview are left out")
        self.identity = None
        if a.lambda_identity > 0:
            from reface_tf.faces.facenet import load_embedder, make_embedding_fn, resolve_identity_model

            self.identity = make_embedding_fn(load_embedder(resolve_identity_model(a.identity_model)))

    def build_optimizers(self, networks):
        lr = self.cfg.optim.lr_g
        return {"optimizer": (make_optimizer(lr, self.cfg), lr)}

    def step_groups(self, networks):
        E, g, a, embed = networks["encoder"], self.generator, self.cfg.age_encoder, self.identity

        def losses(batch: dict[str, tf.Tensor], ctx: StepContext):
            z, classes = batch["z"], batch["class"]
            faces = tf.stop_gradient(g.render(z, classes))
            z_hat = tf.cast(E(faces, training=True), tf.float32)
            latent = tf.reduce_mean(tf.square(z_hat - z), axis=-1)
            total, logs = a.lambda_latent * latent, {"latent_mse": ctx.average(latent)}
            if a.lambda_pixel > 0 or embed is not None:
                rendered = g.render(z_hat, classes)  # gradients reach E through the frozen generator
                pixel = tf.reduce_mean(tf.abs(rendered - faces), axis=[1, 2, 3])
                total += a.lambda_pixel * pixel
                logs["pixel_l1"] = ctx.average(pixel)
                if embed is not None:
                    identity = 1.0 - tf.reduce_sum(embed(rendered) * tf.stop_gradient(embed(faces)), axis=-1)
                    total += a.lambda_identity * identity
                    logs["identity"] = ctx.average(identity)
            return {"total": ctx.average(total)}, logs

        return [StepGroup("encoder", (Phase("total", "optimizer", ("encoder",)),), losses)]

    def preview(self, networks) -> np.ndarray:
        """Rows = held-out real faces (else validation pairs): input, re-rendered with its class, every class."""
        E, g, count = networks["encoder"], self.generator, self.cfg.age_encoder.preview_faces
        faces, own = (self.real[:count], self.real_classes[:count]) if len(self.real) else (
            self.val_faces[:count], self.val_classes[:count])
        z = encode(E, faces)
        columns = [faces, render_uint8(g, z, own)] + [render_uint8(g, z, np.full(len(z), k)) for k in range(len(g.class_names))]
        return tile_images(np.stack(columns, axis=1).reshape(-1, *faces.shape[1:]), len(columns))

    def validate(self, networks) -> dict[str, float]:
        E, g = networks["encoder"], self.generator
        z_hat = encode(E, self.val_faces)
        scores = {"val_latent_mse": float(np.mean(np.square(z_hat.astype(np.float64) - self.val_z)))}
        scores |= _image_scores(render_uint8(g, z_hat, self.val_classes), self.val_faces, "val_")
        real = self.real[: self.cfg.age_encoder.val_real]
        if len(real):
            rendered = render_uint8(g, encode(E, real), self.real_classes[: len(real)])
            scores |= _image_scores(rendered, real, "val_real_")
        return scores

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]):
        return {}, None


class AgeEncoderTask:
    name = NAME
    no_source_hint = "export it (python export.py --run-dir RUN --out export/age_editor) and edit photos with edit.py"

    def build_networks(self, cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        return build_networks(cfg, names)

    def start(self, cfg: Config, run_dir: Path, tb) -> AgeEncoderRun:
        return AgeEncoderRun(cfg, run_dir)

    def editor(self, run_dir: str | os.PathLike, checkpoint: int | None = None):
        """The run's encoder and its generator as an ``AgeEditor``."""
        from reface_tf.serve.age_editor import AgeEditor
        from reface_tf.tasks import load_run

        loaded = load_run(run_dir, checkpoint, names=("encoder",))
        generator = FrozenGenerator(*generator_record(loaded.cfg, Path(run_dir)))
        encoder = loaded.networks["encoder"]
        return AgeEditor(lambda faces, classes: edit_faces(encoder, generator, faces, classes),
                         lambda faces: encode(encoder, faces), generator.class_names, generator.resolution,
                         Path(loaded.checkpoint).name, loaded.checkpoint, generator_data_root(generator),
                         render=generator.render)

    def export(self, run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike,
               precision: str = "fp32", tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
        from reface_tf.tasks.age_encoder.export import export_age_editor

        if precision != "fp32" or tflite or onnx:
            raise ConfigError("--precision/--tflite/--onnx: an age_encoder run exports an fp32 SavedModel only; drop those options")
        return export_age_editor(run_dir, checkpoint, base)


def held_out_faces(generator_run: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 faces, classes, person of each) held out by a StyleGAN2 run's split: faces no encoder or generator
    trained on, with the whole-identity groups of ``groups.csv`` so another person's face is known."""
    from reface_tf.data.image_folder import decode_faces
    from reface_tf.tasks import run_config
    from reface_tf.tasks.stylegan2.split import labelled_split, read_labelled_faces

    cfg = run_config(generator_run)
    split = labelled_split(cfg, Path(generator_run))
    f = cfg.faces
    images, kept, skipped = decode_faces(split.held_out, f.image_size, False, f.max_pixels)
    if skipped:
        log.warning("%d held-out image(s) skipped (first: %s: %s)", len(skipped), *skipped[0])
    class_of = {str(p): int(c) for p, c in zip(split.held_out, split.held_out_classes)}
    files, _, _, groups = read_labelled_faces(cfg)
    person_of = {Path(p).stem: str(g) for p, g in zip(files, groups)}
    return (images, np.asarray([class_of[str(p)] for p in kept], np.int32),
            [person_of.get(Path(p).stem, Path(p).stem) for p in kept])


def generator_data_root(generator: FrozenGenerator) -> Path | None:
    """The folder the generator was trained on (its ``alignment.json`` says how photos must be aligned)."""
    return Path(generator.cfg.faces.root) if generator.cfg.faces.root else None
