"""The StyleGAN2-ADA task: labelled faces, one shared forward pass for G and D, lazy R1 (and optional path-length)
groups, ADA on everything D sees, an EMA generator that samples a fixed grid per class and exports.

* Data: the labelled images (``reface_tf.data.age_labels.read_class_labels``) decoded once into memory; each batch
  carries its reals (randomly flipped), classes, z, a second z and a cutoff for style mixing, and stateless seeds
  for noise and augmentation, all from (run seed, epoch, step), so a resumed run replays them exactly. Generated
  images use the real batch's classes (the reference draws classes from the dataset's label distribution).
* ADA: p, the running sum of sign(D(real)) and its count live in the ``ada`` network's variables, so they are
  checkpointed with everything else; p is updated inside the step every ``ada_interval`` steps.
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
from reface_tf.data import ada
from reface_tf.data.image_folder import decode_faces
from reface_tf.data.images import tile_images
from reface_tf.data.pipeline import from_uint8, to_uint8
from reface_tf.errors import DataError
from reface_tf.losses import stylegan2 as sg_losses
from reface_tf.models.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from reface_tf.tasks.dcgan.task import latent_of_seeds, shuffled_batches
from reface_tf.tasks.stylegan2 import NAME
from reface_tf.tasks.stylegan2.split import labelled_split, read_labelled_faces
from reface_tf.train.step import make_optimizer
from reface_tf.train.task import EMA, Phase, StepContext, StepGroup, TaskData

log = logging.getLogger(__name__)

PREVIEW_TAG = "samples/ema_grid_by_class"
STEP_SCALARS = {"ada_p": "ada/p", "ada_rt": "ada/rt", "d_real": "D/real", "d_fake": "D/fake"}


class AdaState(keras.Model):
    """The ADA probability p and the sign statistics of the current interval (checkpointed, never trained)."""

    def __init__(self, p: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.p = self.add_weight(name="p", shape=(), initializer=keras.initializers.Constant(p), trainable=False)
        self.sign_sum = self.add_weight(name="sign_sum", shape=(), initializer="zeros", trainable=False)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)
        self.rt = self.add_weight(name="rt", shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        return x


class PathLengthState(keras.Model):
    """The running mean of the path lengths (the regulariser's target), checkpointed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mean = self.add_weight(name="pl_mean", shape=(), initializer="zeros", trainable=False)

    def call(self, x):
        return x


def num_classes_of(cfg: Config, class_names: tuple[str, ...] | None) -> int:
    return len(class_names) if cfg.stylegan2.conditional and class_names else 0


def build_networks(cfg: Config, num_classes: int, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
    f, s, seed = cfg.faces, cfg.stylegan2, cfg.runtime.seed * 7919
    generator = lambda name: StyleGAN2Generator(f.image_size, s.z_dim, s.w_dim, num_classes, s.mapping_layers, s.channel_base,
                                                s.channel_max, s.mixed_resolutions, seed=seed, name=name)
    builders = {"generator": lambda: generator("generator"), "generator_ema": lambda: generator("generator_ema"),
                "discriminator": lambda: StyleGAN2Discriminator(f.image_size, num_classes, s.channel_base, s.channel_max,
                                                                mixed_resolutions=s.mixed_resolutions, seed=seed + 5000,
                                                                name="discriminator"),
                "ada": lambda: AdaState(s.ada_p, name="ada"), "path_length": lambda: PathLengthState(name="path_length")}
    return {name: build() for name, build in builders.items() if names is None or name in names}


def generate(generator: StyleGAN2Generator, seeds, classes, truncation: float = 1.0, batch: int = 32) -> np.ndarray:
    """uint8 faces of ``seeds`` (with ``classes``, one per seed) from the generator's constant noise."""
    seeds, classes = np.asarray(seeds, np.int64), np.broadcast_to(np.asarray(classes, np.int32), (len(seeds),))
    out = []
    for i in range(0, len(seeds), batch):
        z = latent_of_seeds(tf.constant(seeds[i:i + batch]), generator.z_dim)
        out.append(generator({"z": z, "class": tf.constant(classes[i:i + batch])}, truncation=truncation).numpy())
    return to_uint8(np.clip(np.concatenate(out), -1, 1)) if out else np.zeros((0, generator.resolution, generator.resolution, 3), np.uint8)


def stylegan2_groups(networks: dict[str, keras.Model], cfg: Config, global_batch: int) -> list[StepGroup]:
    G, D, state, pl = networks["generator"], networks["discriminator"], networks["ada"], networks["path_length"]
    s = cfg.stylegan2
    gamma = s.r1_gamma if s.r1_gamma is not None else sg_losses.auto_r1_gamma(cfg.faces.image_size, global_batch)
    use_ada = s.ada_target > 0 or s.ada_p > 0
    adaptive = s.ada_target > 0

    def augment(images, seed):
        return ada.augment(images, seed, state.p, s.ada_luma_flip) if use_ada else images

    def mapped(batch):
        ws = G.mapping(batch["z"], batch["class"], training=True)
        if s.style_mixing > 0:  # layers from the cutoff on take the styles of a second z
            mixed = G.mapping(batch["z_mix"], batch["class"], training=False)
            layer = tf.range(G.num_ws)[None, :, None]
            ws = tf.where(layer >= batch["mix_cutoff"][:, None, None], mixed, ws)
        return ws

    def gan(batch: dict[str, tf.Tensor], ctx: StepContext):
        classes = batch["class"]
        fake = G.synthesis(mapped(batch), noise_seed=batch["noise_seed"][0])
        real_logits = D({"image": augment(batch["real"], batch["aug_real"][0]), "class": classes}, training=True)
        fake_logits = D({"image": augment(fake, batch["aug_fake"][0]), "class": classes}, training=True)
        n = tf.shape(real_logits)[0]
        logs = {"d_real": ctx.share(tf.reduce_mean(real_logits), n), "d_fake": ctx.share(tf.reduce_mean(fake_logits), n)}
        if adaptive:  # accumulate sign(D(real)); every ada_interval steps move p and start a new interval
            state.sign_sum.assign_add(tf.reduce_sum(tf.sign(real_logits)))
            state.count.assign_add(tf.cast(n, tf.float32))
            due = tf.equal((ctx.step + 1) % s.ada_interval, 0)
            rt = state.sign_sum / tf.maximum(state.count, 1.0)
            new_p = ada.adjusted_p(state.p, rt, s.ada_target, global_batch * s.ada_interval, s.ada_kimg * 1000)
            state.p.assign(tf.where(due, new_p, state.p))
            state.rt.assign(tf.where(due, rt, state.rt))
            state.sign_sum.assign(tf.where(due, 0.0, state.sign_sum))
            state.count.assign(tf.where(due, 0.0, state.count))
            logs |= {"ada_p": ctx.share(state.p, n), "ada_rt": ctx.share(state.rt, n)}
        return {"g_total": ctx.average(sg_losses.generator_logistic(fake_logits)),
                "d_total": ctx.average(sg_losses.discriminator_logistic(real_logits, fake_logits))}, logs

    def r1(batch: dict[str, tf.Tensor], ctx: StepContext):
        score = lambda x: D({"image": augment(x, batch["aug_real"][0]), "class": batch["class"]}, training=True)
        penalty = sg_losses.r1_penalty(score, batch["real"])
        # Lazy regularisation: every r1_every steps with r1_every times the weight (Karras et al. 2020, App. B).
        return {"d_r1": ctx.average(penalty * (gamma / 2) * s.r1_every)}, {"r1_penalty": ctx.average(penalty)}

    def path_length(batch: dict[str, tf.Tensor], ctx: StepContext):
        ws = mapped(batch)
        lengths = sg_losses.path_lengths(lambda w: G.synthesis(w, noise_seed=batch["noise_seed"][0]), ws,
                                         batch["noise_seed"][0] + tf.constant([0, 99], tf.int64))
        mean = pl.mean + 0.01 * (tf.reduce_mean(lengths) - pl.mean)
        pl.mean.assign(tf.stop_gradient(mean))
        penalty = tf.square(lengths - mean)
        return {"g_pl": ctx.average(penalty * s.pl_weight * s.pl_every)}, {}

    groups = [StepGroup("gan", (Phase("d_total", "d_optimizer", ("discriminator",)),
                                Phase("g_total", "g_optimizer", ("generator",))), gan),
              StepGroup("r1", (Phase("d_r1", "d_optimizer", ("discriminator",)),), r1, every=s.r1_every)]
    if s.pl_weight > 0:
        groups.append(StepGroup("path_length", (Phase("g_pl", "g_optimizer", ("generator",)),), path_length, every=s.pl_every))
    return groups


class StyleGAN2Run:
    preview_tag = PREVIEW_TAG
    step_scalars = STEP_SCALARS
    progress_keys = ("g_total", "d_total", "ada_p")

    def __init__(self, cfg: Config, run_dir: Path, tb, class_names: tuple[str, ...]):
        self.cfg, self.run_dir = cfg, run_dir
        f, s, seed = cfg.faces, cfg.stylegan2, cfg.runtime.seed
        split = labelled_split(cfg, run_dir)
        images, self.classes = decoded_with_classes(split.train, split.train_classes, cfg)
        self.held_out, self.held_out_classes = decoded_with_classes(split.held_out, split.held_out_classes, cfg)
        if not s.conditional:
            self.classes = np.zeros_like(self.classes)
        self.images, self.class_names = images, class_names
        batch = cfg.optim.batch_size
        if len(images) < batch:
            raise DataError(f"--batch-size {batch} is larger than the {len(images)} training images; lower it or add images")
        self.counts = np.bincount(self.classes, minlength=max(len(class_names), 1))
        record_train_counts(run_dir, self.counts)
        log.info("%d training images in %d classes (%s), %d held out", len(images), len(class_names),
                 ", ".join(f"{n}: {c}" for n, c in zip(class_names, self.counts)), len(self.held_out))
        self.embedder, self.validate_every = None, s.metric_every
        steps = len(images) // batch
        if cfg.optim.steps_per_epoch:
            steps = min(steps, cfg.optim.steps_per_epoch)
        kimg = s.ema_kimg if s.ema_kimg is not None else sg_losses.auto_ema_kimg(batch)
        rampup = s.ema_rampup or None
        self.ema = {"generator_ema": EMA("generator", 0.0, schedule=lambda t: sg_losses.ema_decay(t, batch, kimg, rampup))}
        labels, flip, size, z_dim = self.classes, f.flip, f.image_size, s.z_dim
        num_ws = 2 * int(np.log2(size)) - 2

        def gather(index: np.ndarray):
            return images[index], labels[index]

        def make_batch(epoch: tf.Tensor, step: tf.Tensor, index: tf.Tensor) -> dict[str, tf.Tensor]:
            real, cls = tf.numpy_function(gather, [index], (tf.uint8, tf.int32), stateful=False)
            real = tf.ensure_shape(real, [batch, size, size, 3])
            base = tf.stack([tf.constant(seed, tf.int64), epoch * 1_000_003 + step])
            x = from_uint8(real)
            if flip:
                mirror = tf.random.stateless_uniform([batch, 1, 1, 1], base + [0, 1]) < 0.5
                x = tf.where(mirror, x[:, :, ::-1, :], x)
            mix = tf.random.stateless_uniform([], base + [0, 5]) < s.style_mixing
            cutoff = tf.random.stateless_uniform([], base + [0, 6], 1, num_ws, dtype=tf.int32)
            seed_of = lambda salt: tf.tile(tf.random.stateless_uniform([1, 2], base + [0, salt], maxval=2**31 - 1, dtype=tf.int64),
                                           [batch, 1])
            return {"real": x, "class": tf.ensure_shape(cls, [batch]),
                    "z": tf.random.stateless_normal([batch, z_dim], base + [0, 2]),
                    "z_mix": tf.random.stateless_normal([batch, z_dim], base + [0, 3]),
                    "mix_cutoff": tf.fill([batch], tf.where(mix, cutoff, num_ws)),
                    "noise_seed": seed_of(4), "aug_real": seed_of(7), "aug_fake": seed_of(8)}

        batches = shuffled_batches(make_batch, len(images), steps, batch, seed)
        self.data = TaskData(steps, batch, batches)

    def build_optimizers(self, networks):
        o, s = self.cfg.optim, self.cfg.stylegan2
        # Lazy regularisation's Adam correction (Karras et al. 2020, App. B): lr and betas scaled by c = N / (N + 1).
        def adam(lr, every):
            c = every / (every + 1) if every else 1.0
            return make_optimizer(lr * c, self.cfg, o.beta1 ** c, o.beta2 ** c), lr * c
        g_opt, g_lr = adam(o.lr_g, s.pl_every if s.pl_weight > 0 else 0)
        d_opt, d_lr = adam(o.lr_d, s.r1_every)
        return {"g_optimizer": (g_opt, g_lr), "d_optimizer": (d_opt, d_lr)}

    def step_groups(self, networks):
        return stylegan2_groups(networks, self.cfg, self.data.global_batch)

    def grid(self, networks) -> np.ndarray:
        """Rows = classes, columns = seeds 0..grid_seeds-1, from the EMA generator."""
        s = self.cfg.stylegan2
        rows = max(len(self.class_names), 1) if s.conditional else 1
        seeds = np.tile(np.arange(s.grid_seeds), rows)
        classes = np.repeat(np.arange(rows), s.grid_seeds)
        return generate(networks["generator_ema"], seeds, classes, s.truncation)

    def preview(self, networks) -> np.ndarray:
        return tile_images(self.grid(networks), self.cfg.stylegan2.grid_seeds)

    def validate(self, networks) -> dict[str, float]:
        """KID of EMA samples (seeds 0..metric_samples-1, classes as the training distribution) vs the held-out faces."""
        s = self.cfg.stylegan2
        if s.metric_embedder == "none" or len(self.held_out) < 2:
            return {}
        from reface_tf.serve.source import classes_for_seeds
        from reface_tf.tasks.dcgan.scores import validation_kid

        seeds = np.arange(s.metric_samples)
        samples = generate(networks["generator_ema"], seeds, classes_for_seeds(seeds, self.counts))
        return validation_kid(samples, self.held_out, s.metric_embedder, self)

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]):
        return {}, None


def decoded_with_classes(files: list[Path], classes: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces of ``files`` and the classes of the ones that decoded."""
    f = cfg.faces
    images, kept, skipped = decode_faces(files, f.image_size, False, f.max_pixels)
    if skipped:
        log.warning("%d image(s) skipped (first: %s: %s)", len(skipped), *skipped[0])
    index_of = {str(p): i for i, p in enumerate(files)}
    return images, np.asarray(classes, np.int32)[[index_of[str(p)] for p in kept]].reshape(-1)


def _write_text_atomic(path: Path, text: str) -> None:
    from reface_tf.faces.prepare import write_text_atomic  # the faces package is heavy; only when writing

    write_text_atomic(path, text)


def class_names_of(cfg: Config, run_dir: Path | None = None) -> tuple[str, ...]:
    """The run's class names: recorded in ``classes.json`` of the run, else read from the labels (and recorded)."""
    saved = run_dir / "classes.json" if run_dir is not None else None
    if saved is not None and saved.is_file():
        return tuple(json.loads(saved.read_text())["class_names"])
    if cfg.faces.root is None:
        raise DataError("--data: no folder of labelled face images given")
    _, _, names, _ = read_labelled_faces(cfg)
    if saved is not None:
        _write_text_atomic(saved, json.dumps({"class_names": list(names)}))
    return names


def record_train_counts(run_dir: Path, counts: np.ndarray) -> None:
    """Training images per class, kept in the run's ``classes.json`` (samples and exports draw classes by them)."""
    path = run_dir / "classes.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    if data.get("train_counts") != [int(c) for c in counts]:
        _write_text_atomic(path, json.dumps(data | {"train_counts": [int(c) for c in counts]}))


def train_counts_of(run_dir: Path, num_classes: int) -> list[int]:
    """The recorded training images per class (equal counts for a run that recorded none)."""
    path = Path(run_dir) / "classes.json"
    counts = json.loads(path.read_text()).get("train_counts") if path.is_file() else None
    return counts or [1] * max(num_classes, 1)


class StyleGAN2Task:
    name = NAME

    def __init__(self):
        self._names: dict[str, tuple[str, ...]] = {}

    def build_networks(self, cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        run_dir = Path(cfg.runtime.run_dir)
        class_names = self._names.get(str(run_dir)) or class_names_of(cfg, run_dir if run_dir.is_dir() else None)
        return build_networks(cfg, num_classes_of(cfg, class_names), names)

    def start(self, cfg: Config, run_dir: Path, tb) -> StyleGAN2Run:
        names = class_names_of(cfg, run_dir)
        self._names[str(run_dir)] = names
        return StyleGAN2Run(cfg, run_dir, tb, names)

    def seed_source(self, run_dir: str | os.PathLike, checkpoint: int | None = None):
        """The run's EMA generator as a ``SeedSource``: by seed (classes as the training distribution) or by class."""
        from reface_tf.serve.source import SeedSource, classes_for_seeds
        from reface_tf.tasks import load_run

        loaded = load_run(run_dir, checkpoint, names=("generator_ema",))
        g, cfg = loaded.networks["generator_ema"], loaded.cfg
        counts = train_counts_of(Path(run_dir), g.num_classes)
        psi = cfg.stylegan2.truncation
        names = class_names_of(cfg, Path(run_dir)) if g.num_classes else ()
        return SeedSource(lambda seeds: generate(g, seeds, classes_for_seeds(seeds, counts), psi), cfg.faces.image_size,
                          Path(loaded.checkpoint).name, loaded.checkpoint, NAME, Path(run_dir), class_names=names,
                          generate_class=(lambda seeds, cls: generate(g, seeds, cls, psi)) if g.num_classes else None)

    def labelled_faces(self, run_dir: str | os.PathLike):
        """(held-out faces, their classes, training faces, their classes) of the run's split."""
        from reface_tf.tasks import run_config

        cfg = run_config(run_dir)
        split = labelled_split(cfg, Path(run_dir))
        held, held_cls = decoded_with_classes(split.held_out, split.held_out_classes, cfg)
        train, train_cls = decoded_with_classes(split.train, split.train_classes, cfg)
        return held, held_cls, train, train_cls

    def real_faces(self, run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """(held-out, training) faces of the run's split, decoded as training decodes them."""
        held, _, train, _ = self.labelled_faces(run_dir)
        return held, train

    def export(self, run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike,
               precision: str = "fp32", tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
        from reface_tf.errors import ConfigError
        from reface_tf.tasks.stylegan2.export import export_stylegan2

        if precision != "fp32" or tflite or onnx:
            raise ConfigError("--precision/--tflite/--onnx: a stylegan2 run exports an fp32 SavedModel only; drop those options")
        return export_stylegan2(run_dir, checkpoint, base)
