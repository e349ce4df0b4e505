"""The DCGAN task: real faces and z in each batch, G and D trained from one forward pass, an EMA generator
that samples, scores and exports.

* Data: every image decoded once into memory at ``faces.image_size`` (``reface_tf.data.image_folder``); each
  batch carries its real images (randomly flipped), its z and two DiffAugment seeds, all drawn from stateless
  seeds of (run seed, epoch, step), so a resumed run replays them exactly.
* Step: one group, as the TF DCGAN tutorial: the fake batch feeds D's loss (real + fake BCE, optional one-sided
  label smoothing) and G's non-saturating BCE; D sees real and fake in separate calls so its batch norm never
  mixes them (Radford et al.). With ``--diffaugment`` both go through the same kind of random transforms.
* Sampling: ``z = N(0, 1)`` drawn from the seed alone (``latent_of_seeds``), so one seed is one face in training
  previews, ``sample.py`` and the export. The EMA generator's batch-norm statistics are the generator's averaged
  over time, which do not match the averaged weights; before sampling, a copy of it re-estimates them from
  ``standing_samples`` fixed draws (BigGAN's "standing statistics"), so inference-mode outputs are per-seed
  deterministic and match what the weights produce.
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
from reface_tf.data.diffaugment import diff_augment, parse_policy
from reface_tf.data.image_folder import FaceImages, decode_faces, scan_face_images
from reface_tf.data.images import tile_images
from reface_tf.data.pipeline import from_uint8, to_uint8
from reface_tf.errors import DataError
from reface_tf.losses import adversarial
from reface_tf.models.dcgan import build_dcgan_discriminator, build_dcgan_generator
from reface_tf.tasks.dcgan import NAME
from reface_tf.train.step import copy_weights, make_optimizer
from reface_tf.train.task import EMA, Phase, StepContext, StepGroup, TaskData

log = logging.getLogger(__name__)

SPLIT_FILE = "splits.json"
STANDING_SEED = 1_000_000  # standing-statistics draws use seeds from here on, apart from the ones users sample
PREVIEW_TAG = "samples/ema_grid"
DISCRIMINATOR_SCALARS = {"d_real": "D/real", "d_fake": "D/fake", "d_accuracy": "D/accuracy"}


def _draw_latents(seeds: tf.Tensor, latent_dim: int) -> tf.Tensor:
    return tf.map_fn(lambda s: tf.random.stateless_normal([latent_dim], tf.stack([s, tf.constant(0, tf.int64)])),
                     tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)


_LATENT_GRAPHS: dict[int, tf.types.experimental.GenericFunction] = {}


def latent_of_seeds(seeds: tf.Tensor, latent_dim: int) -> tf.Tensor:
    """``z [N, latent_dim]``: a standard normal vector per int64 seed, independent of the batch it is in.
    Eagerly, through one traced graph per latent size (an eager map_fn is a Python loop over the seeds)."""
    if not tf.executing_eagerly():
        return _draw_latents(seeds, latent_dim)
    if latent_dim not in _LATENT_GRAPHS:
        _LATENT_GRAPHS[latent_dim] = tf.function(lambda s: _draw_latents(s, latent_dim),
                                                 input_signature=[tf.TensorSpec([None], tf.int64)])
    return _LATENT_GRAPHS[latent_dim](tf.cast(seeds, tf.int64))


def standing_statistics(generator: keras.Model, latent_dim: int, samples: int, batch: int = 256) -> None:
    """Set every batch-norm layer's moving mean and variance to the statistics of ``samples`` fixed draws
    through ``generator`` itself (the average over batches of up to ``batch`` draws)."""
    norms = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    totals = None
    seeds = np.arange(STANDING_SEED, STANDING_SEED + samples, dtype=np.int64)
    chunks = [seeds[i:i + batch] for i in range(0, samples, batch)]
    try:
        for layer in norms:
            layer.momentum = 0.0  # moving = batch statistics of this one call
        for chunk in chunks:
            generator(latent_of_seeds(tf.constant(chunk), latent_dim), training=True)
            stats = [(layer.moving_mean.numpy() * len(chunk), layer.moving_variance.numpy() * len(chunk)) for layer in norms]
            totals = stats if totals is None else [(a + m, b + v) for (a, b), (m, v) in zip(totals, stats)]
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    for layer, (mean, var) in zip(norms, totals):
        layer.moving_mean.assign(mean / samples)
        layer.moving_variance.assign(var / samples)


def build_networks(cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
    f, d, seed = cfg.faces, cfg.dcgan, cfg.runtime.seed
    generator = lambda name: build_dcgan_generator(f.image_size, d.latent_dim, d.generator_filters, seed=seed * 7919, name=name)
    builders = {"generator": lambda: generator("generator"), "generator_ema": lambda: generator("generator_ema"),
                "discriminator": lambda: build_dcgan_discriminator(f.image_size, d.discriminator_filters,
                                                                    seed=seed * 7919 + 1000, batch_norm=d.discriminator_batch_norm)}
    return {name: build() for name, build in builders.items() if names is None or name in names}


def sampler_of(ema: keras.Model, cfg: Config) -> keras.Model:
    """A copy of the EMA generator with standing statistics (the EMA network itself is left as training has it)."""
    copy = build_networks(cfg, ("generator_ema",))["generator_ema"]
    copy_weights(copy, ema)
    standing_statistics(copy, cfg.dcgan.latent_dim, cfg.dcgan.standing_samples)
    return copy


def generate(generator: keras.Model, seeds, latent_dim: int, batch: int = 64) -> np.ndarray:
    """uint8 faces of ``seeds`` from a generator in inference mode."""
    seeds = np.asarray(seeds, np.int64)
    out = [generator(latent_of_seeds(tf.constant(seeds[i:i + batch]), latent_dim), training=False).numpy()
           for i in range(0, len(seeds), batch)]
    return to_uint8(np.concatenate(out)) if out else np.zeros((0,) + generator.output_shape[1:], np.uint8)


def interpolation_strip(generator: keras.Model, latent_dim: int, first: int, last: int, steps: int = 8) -> np.ndarray:
    """Faces along the straight line between the z of two seeds, ``steps`` of them, left to right."""
    z = latent_of_seeds(tf.constant([first, last], tf.int64), latent_dim).numpy()
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    images = generator(tf.constant((1 - t) * z[0] + t * z[1]), training=False).numpy()
    return np.concatenate(list(to_uint8(images)), axis=1)


def dcgan_losses(generator: keras.Model, discriminator: keras.Model, cfg: Config):
    """The loss function of the one step group (``reface_tf.train.task.LossFn``)."""
    policy, smoothing = parse_policy(cfg.dcgan.diffaugment), cfg.dcgan.label_smoothing

    def bce(logits: tf.Tensor, label: float) -> tf.Tensor:
        logits = tf.cast(logits, tf.float32)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), label), logits), axis=1)

    def losses(batch: dict[str, tf.Tensor], ctx: StepContext):
        real = batch["real"]
        fake = generator(batch["z"], training=True)
        if policy:  # independent draws for the real and the fake batch, as the paper
            real = diff_augment(real, batch["aug_real"][0], policy)
            fake = diff_augment(fake, batch["aug_fake"][0], policy)
        real_logits = discriminator(real, training=True)
        fake_logits = discriminator(fake, training=True)
        g_total = ctx.average(bce(fake_logits, 1.0))  # non-saturating: -log D(G(z))
        d_total = ctx.average(bce(real_logits, 1.0 - smoothing) + bce(fake_logits, 0.0))
        n = tf.shape(real)[0]
        logs = {k: ctx.share(tf.reduce_mean(v), n) for k, v in adversarial.decision_stats("bce", real_logits, fake_logits).items()}
        return {"g_total": g_total, "d_total": d_total}, logs

    return losses


def shuffled_batches(make_batch, count: int, steps: int, batch: int, seed: int):
    """``TaskData.batches`` over ``count`` in-memory images: each epoch a permutation seeded by (seed, epoch), cut
    into ``steps`` batches of indices, mapped by ``make_batch(epoch, step, index)``; a resumed epoch skips the
    batches already trained."""

    def batches(first_epoch: int, epochs: int, first_skip: int) -> tf.data.Dataset:
        rows = []
        for epoch in range(first_epoch, epochs):
            order = np.random.default_rng([seed, epoch]).permutation(count)[: steps * batch].reshape(steps, batch)
            first = first_skip if epoch == first_epoch else 0
            rows += [(epoch, s, order[s]) for s in range(first, steps)]
        if not rows:
            return tf.data.Dataset.from_tensor_slices((np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                       np.zeros((0, batch), np.int64))).map(make_batch)
        epochs_of, steps_of, index = (np.array([r[k] for r in rows], np.int64) for k in range(3))
        ds = tf.data.Dataset.from_tensor_slices((epochs_of, steps_of, index))
        return ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)

    return batches


def splits_for_run(cfg: Config, run_dir: Path) -> FaceImages:
    """The run's images: read back from ``splits.json`` on resume (the same files in the same order), else
    scanned now and recorded."""
    path = run_dir / SPLIT_FILE
    f = cfg.faces
    if path.is_file():
        saved = json.loads(path.read_text())
        root = Path(f.root) if f.root else Path(saved["root"])
        faces = FaceImages(root, saved["layout"], [root / p for p in saved["train"]], [root / p for p in saved["held_out"]])
        missing = [p for p in faces.train + faces.held_out if not p.is_file()]
        if missing:
            raise DataError(f"--data {root} lacks {len(missing)} image(s) of this run (first: {missing[0]}); pass "
                            "--data with the folder the images moved to")
        return faces
    if f.root is None:
        raise DataError("--data: no folder of face images given")
    faces = scan_face_images(f.root, f.layout, f.max_images, f.held_out_ratio, f.max_held_out, cfg.runtime.seed)
    rel = lambda paths: [str(p.relative_to(faces.root)) for p in paths]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"root": str(faces.root.resolve()), "layout": faces.layout, "seed": cfg.runtime.seed,
                               "train": rel(faces.train), "held_out": rel(faces.held_out)}, indent=1))
    os.replace(tmp, path)
    return faces


class DCGANRun:
    """One DCGAN run: the decoded images, the batch stream, the fixed grid seeds and the held-out faces."""

    step_scalars = DISCRIMINATOR_SCALARS
    progress_keys = ("g_total", "d_total", "d_accuracy")
    preview_tag = PREVIEW_TAG

    def __init__(self, cfg: Config, run_dir: Path, tb):
        self.cfg, self.run_dir = cfg, run_dir
        f, d, seed = cfg.faces, cfg.dcgan, cfg.runtime.seed
        faces = splits_for_run(cfg, run_dir)
        celeba = faces.layout == "celeba"
        self.images, kept, skipped = decode_faces(faces.train, f.image_size, celeba, f.max_pixels)
        self.held_out, _, skipped_held = decode_faces(faces.held_out, f.image_size, celeba, f.max_pixels)
        faces.skipped += skipped + skipped_held
        faces.write_report(run_dir / "data_report.json")
        log.info("%s%s", faces.summary(), f"; each named in {run_dir / 'data_report.json'}" if faces.skipped else "")
        batch = cfg.optim.batch_size
        if len(self.images) < batch:
            raise DataError(f"--batch-size {batch} is larger than the {len(self.images)} training images; lower it or add images")
        steps = len(self.images) // batch
        if cfg.optim.steps_per_epoch:
            steps = min(steps, cfg.optim.steps_per_epoch)
        self.ema = {"generator_ema": EMA("generator", d.ema_decay, warmup=True)}
        self.embedder = None
        images, latent, flip = self.images, d.latent_dim, f.flip

        def gather(index: np.ndarray) -> np.ndarray:
            return images[index]

        def make_batch(epoch: tf.Tensor, step: tf.Tensor, index: tf.Tensor) -> dict[str, tf.Tensor]:
            real = tf.numpy_function(gather, [index], tf.uint8, stateful=False)
            real = tf.ensure_shape(real, [batch, f.image_size, f.image_size, 3])
            base = tf.stack([tf.constant(seed, tf.int64), epoch * 1_000_003 + step])
            x = from_uint8(real)
            if flip:
                mirror = tf.random.stateless_uniform([batch, 1, 1, 1], base + [0, 1]) < 0.5
                x = tf.where(mirror, x[:, :, ::-1, :], x)
            z = tf.random.stateless_normal([batch, latent], base + [0, 2])
            # One [2] seed per batch for each DiffAugment draw, repeated per example so the batch splits over replicas.
            aug = lambda salt: tf.tile(tf.random.stateless_uniform([1, 2], base + [0, salt], maxval=2**31 - 1, dtype=tf.int64), [batch, 1])
            return {"real": x, "z": z, "aug_real": aug(3), "aug_fake": aug(4)}

        batches = shuffled_batches(make_batch, len(images), steps, batch, seed)
        self.data = TaskData(steps, batch, batches)
        self.validate_every = d.metric_every
        self.sampler, self._sampler_fresh = None, False

    def build_optimizers(self, networks):
        o = self.cfg.optim
        return {"g_optimizer": (make_optimizer(o.lr_g, self.cfg), o.lr_g),
                "d_optimizer": (make_optimizer(o.lr_d, self.cfg), o.lr_d)}

    def step_groups(self, networks):
        return [StepGroup("gan", (Phase("d_total", "d_optimizer", ("discriminator",)),
                                  Phase("g_total", "g_optimizer", ("generator",))),
                          dcgan_losses(networks["generator"], networks["discriminator"], self.cfg))]

    def _sampler(self, networks, reuse: bool = False) -> keras.Model:
        """The EMA generator with standing statistics; ``reuse`` takes the one validation made just before
        (the end-of-epoch preview follows validation with the same weights)."""
        if not (reuse and self._sampler_fresh):
            self.sampler = sampler_of(networks["generator_ema"], self.cfg)
        self._sampler_fresh = False
        return self.sampler

    def preview(self, networks) -> np.ndarray:
        images = generate(self._sampler(networks, reuse=True), range(self.cfg.dcgan.grid_seeds), self.cfg.dcgan.latent_dim)
        return tile_images(images, int(np.ceil(np.sqrt(len(images)))))

    def validate(self, networks) -> dict[str, float]:
        d = self.cfg.dcgan
        if d.metric_embedder == "none" or len(self.held_out) < 2:
            return {}
        from reface_tf.tasks.dcgan.scores import validation_kid

        samples = generate(self._sampler(networks), range(d.metric_samples), d.latent_dim)
        self._sampler_fresh = True
        return validation_kid(samples, self.held_out, d.metric_embedder, self)

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]):
        if epoch == self.cfg.optim.epochs and self.sampler is not None:
            from reface_tf.data.images import save_png_atomic

            strip = np.concatenate([interpolation_strip(self.sampler, self.cfg.dcgan.latent_dim, a, b)
                                    for a, b in ((0, 1), (2, 3), (4, 5))], axis=0)
            save_png_atomic(self.run_dir / "samples" / "interpolation.png", strip)
        return {}, None


class DCGANTask:
    name = NAME

    def build_networks(self, cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        return build_networks(cfg, names)

    def start(self, cfg: Config, run_dir: Path, tb) -> DCGANRun:
        return DCGANRun(cfg, run_dir, tb)

    def seed_source(self, run_dir: str | os.PathLike, checkpoint: int | None = None):
        """The run's EMA generator (standing statistics) as a ``reface_tf.serve.source.SeedSource``."""
        from reface_tf.serve.source import SeedSource
        from reface_tf.tasks import load_run

        loaded = load_run(run_dir, checkpoint, names=("generator_ema",))
        cfg = loaded.cfg
        sampler = sampler_of(loaded.networks["generator_ema"], cfg)
        return SeedSource(lambda seeds: generate(sampler, seeds, cfg.dcgan.latent_dim), cfg.faces.image_size,
                          Path(loaded.checkpoint).name, loaded.checkpoint, NAME, Path(run_dir))

    def real_faces(self, run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """(held-out, training) faces of a run's split, decoded as training decodes them."""
        from reface_tf.tasks import run_config

        cfg = run_config(run_dir)
        faces = splits_for_run(cfg, Path(run_dir))
        celeba = faces.layout == "celeba"
        held_out, _, _ = decode_faces(faces.held_out, cfg.faces.image_size, celeba, cfg.faces.max_pixels)
        train, _, _ = decode_faces(faces.train, cfg.faces.image_size, celeba, cfg.faces.max_pixels)
        return held_out, train

    def export(self, run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike,
               precision: str = "fp32", tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
        from reface_tf.errors import ConfigError
        from reface_tf.tasks.dcgan.export import export_dcgan

        if precision != "fp32" or tflite or onnx:
            raise ConfigError("--precision/--tflite/--onnx: a dcgan run exports an fp32 SavedModel only; drop those options")
        return export_dcgan(run_dir, checkpoint, base)
