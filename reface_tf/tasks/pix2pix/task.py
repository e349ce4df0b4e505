"""The Pix2Pix task: paired ``input → target`` batches, U-Net G + PatchGAN D trained in one step group.

One forward pass per step feeds both phases (the generated image is shared, as in the TF tutorial): the G
phase minimises ``lambda_adv * adversarial + sum(term.weight * term)`` (L1, perceptual, identity), the D phase
the adversarial real + fake loss. When the norm is not batch norm and the per-replica batch is small, the
discriminator sees real and fake pairs in ONE batched call (same result, larger and more efficient
convolutions). From a per-replica batch of ``FUSE_MAX_BATCH + 1`` on the calls stay separate: the generator's
gradient then flows back through the discriminator for the fake half only, whereas the fused call also
back-propagates zeros through the real half, about one discriminator pass per image wasted (measured at batch 8,
bfloat16: separate calls ~9% less CPU time per image). With batch norm the two calls are always separate so
real and fake statistics never mix, as in the tutorial.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import keras
import numpy as np
import tensorflow as tf

from reface_tf.config import Config, collapse_warning
from reface_tf.data.pairs import Pair, read_splits, scan_dataset, split_dataset_root, split_pairs, write_splits
from reface_tf.data.pipeline import DecodedPairs, eval_dataset, label_inputs, training_batches
from reface_tf.errors import DataError
from reface_tf.faces.alignment_settings import record_run_alignment
from reface_tf.losses import adversarial, build_generator_terms
from reface_tf.losses.terms import LossContext
from reface_tf.metrics import SIGNED_UNIT_RANGE, get_metric
from reface_tf.models import discriminator_from_config, generator_from_config, inference_training_flag
from reface_tf.tasks.pix2pix.floors import FloorWatch, Floors, compute_floors, load_floors, mean_target, save_floors
from reface_tf.train.monitor import TensorBoard, sample_grid
from reface_tf.tasks.common import training_split
from reface_tf.train.step import make_optimizer
from reface_tf.train.task import Phase, StepContext, StepGroup, TaskData

log = logging.getLogger(__name__)

NAME = "pix2pix"
# Largest per-replica batch at which real and fake pairs share one discriminator call (see the module doc).
FUSE_MAX_BATCH = 2
# Step outputs that describe the discriminator's decisions rather than a loss, with their TensorBoard tags.
DISCRIMINATOR_SCALARS = {"d_real": "D/real", "d_fake": "D/fake", "d_accuracy": "D/accuracy"}
PREVIEW_TAG = "samples/input_output_target"


def splits_for_run(cfg: Config, run_dir: Path) -> dict[str, list[Pair]]:
    """The run's split: read back on resume, otherwise made now (after validating every pair) and saved.

    A resumed run whose ``--data`` names another folder than the one the split was made from reads the same
    pairs there (a moved dataset); a folder that lacks them is refused with one line.
    """
    if (run_dir / "splits.json").is_file():
        recorded = split_dataset_root(run_dir)
        moved = cfg.data.root is not None and recorded is not None and Path(cfg.data.root).resolve() != Path(recorded)
        splits = read_splits(run_dir, cfg.data.root if moved else None)
        missing = [p for pairs in splits.values() for p in pairs for f in (p.input_path, p.target_path)
                   if not Path(f).is_file()]
        if missing:
            first = missing[0]
            where = f"--data {cfg.data.root}" if moved else f"the run's dataset {recorded or cfg.data.root}"
            raise DataError(f"{where} lacks {len(missing)} pair(s) of this run's split (first: {first.id}, "
                            f"{first.input_path}); pass --data with the folder the dataset moved to")
        if moved:
            log.info("dataset moved: reading this run's split from %s (was %s)", cfg.data.root, recorded)
        return splits
    if cfg.data.root is None:
        raise DataError("--data: no dataset given")
    scan = scan_dataset(cfg.data.root, cfg.data)
    scan.write_report(run_dir / "data_report.json")
    log.info("%s%s", scan.summary(), f"; each named in {run_dir / 'data_report.json'}" if scan.problems else "")
    splits = split_pairs(scan.pairs, cfg.data.val_ratio, cfg.data.test_ratio, cfg.runtime.seed)
    write_splits(run_dir, splits, scan.root, cfg.runtime.seed)
    record_run_alignment(scan.root, run_dir)  # how the pairs were aligned, for export and predict.py
    log.info("split: %s", ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return splits


def augmentation(cfg: Config):
    """The online albumentations augmentation of ``--augment``, or None."""
    if not cfg.data.augment:
        return None
    from reface_tf.data.augment import AugmentConfig, build_paired_augmentation

    return build_paired_augmentation(AugmentConfig())


# Validation metrics by their registry names (reface_tf.metrics.registry): logged as val_<name>, ranked by tune.py.
VALIDATION_METRICS = ("l1", "psnr", "ssim")


def mean_metrics(batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """``val_<metric>``: mean per-image L1, PSNR and SSIM (float64, data range 2) of (outputs, targets) batches in
    [-1, 1]."""
    metrics = [get_metric(name) for name in VALIDATION_METRICS]
    rows: dict[str, list[float]] = defaultdict(list)
    for outputs, targets in batches:
        for out, tgt in zip(np.asarray(outputs, np.float64), np.asarray(targets, np.float64)):
            for metric in metrics:
                rows[metric.name].append(metric.fn(out, tgt, SIGNED_UNIT_RANGE))
    return {f"val_{k}": float(np.mean(v)) for k, v in rows.items()}


def validation_metrics(generator: keras.Model, dataset: tf.data.Dataset, training_flag: bool) -> dict[str, float]:
    """Mean per-image L1, PSNR and SSIM of G(input) against the target."""
    return mean_metrics((generator(inputs, training=training_flag).numpy(), targets.numpy()) for inputs, targets in dataset)


def run_floors(run_dir: Path, store: DecodedPairs, val_ds: tf.data.Dataset, image_size: int, tb: TensorBoard) -> Floors:
    """The run's floors: read back on resume, otherwise computed once before the first epoch and logged."""
    floors = load_floors(run_dir)
    if floors is None:
        floors = compute_floors(mean_target(store, image_size), ((x.numpy(), y.numpy()) for x, y in val_ds))
        save_floors(floors, run_dir)
        tb.scalars({"floor/mean_face_psnr": floors.mean_face_psnr, "floor/mean_face_ssim": floors.mean_face_ssim,
                    "floor/identity_psnr": floors.identity_psnr, "floor/identity_ssim": floors.identity_ssim}, 0)
    log.info("validation floors: %s", floors.describe())
    return floors


def pix2pix_losses(generator: keras.Model, discriminator: keras.Model, cfg: Config, per_replica_batch: int):
    """The loss function of the one step group (``reface_tf.train.task.LossFn``)."""
    kind, lambda_adv = cfg.loss.adversarial, cfg.loss.lambda_adv
    fuse_discriminator = cfg.model.norm != "batch" and per_replica_batch <= FUSE_MAX_BATCH
    terms = build_generator_terms(cfg)

    def losses(batch: dict[str, tf.Tensor], ctx: StepContext):
        inputs, targets = batch["input"], batch["target"]
        fake = generator(inputs, training=True)
        if fuse_discriminator:
            logits = discriminator([tf.concat([inputs, inputs], 0), tf.concat([targets, tf.cast(fake, targets.dtype)], 0)], training=True)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
        else:
            real_logits = discriminator([inputs, targets], training=True)
            fake_logits = discriminator([inputs, fake], training=True)
        logs = {"g_adv": ctx.average(adversarial.generator_loss(kind, fake_logits))}
        g_total = lambda_adv * logs["g_adv"]
        term_ctx = LossContext(batch, {"fake": fake})
        for term in terms:
            logs[term.name] = ctx.average(term(term_ctx))
            g_total += term.weight * logs[term.name]
        d_total = ctx.average(adversarial.discriminator_loss(kind, real_logits, fake_logits))
        n = tf.shape(inputs)[0]
        logs.update({k: ctx.share(tf.reduce_mean(v), n)
                     for k, v in adversarial.decision_stats(kind, real_logits, fake_logits).items()})
        return {"g_total": g_total, "d_total": d_total}, logs

    return losses


def gan_group(generator: keras.Model, discriminator: keras.Model, cfg: Config, per_replica_batch: int) -> StepGroup:
    """G and D phases from one forward pass; G's update is applied first, both from the same gradients' point."""
    return StepGroup("gan", (Phase("g_total", "g_optimizer", ("generator",)), Phase("d_total", "d_optimizer", ("discriminator",))),
                     pix2pix_losses(generator, discriminator, cfg, per_replica_batch))


def simulated_targets(root: str | None) -> bool:
    """Whether the dataset's targets are SIMULATED (the demo and synthetic builders say so in their README.md):
    an export of such a run must not be presented as predicting real outcomes."""
    readme = Path(root) / "README.md" if root else None
    return bool(readme and readme.is_file() and "SIMULATED" in readme.read_text(errors="replace"))


def as_dict(inputs: tf.Tensor, targets: tf.Tensor) -> dict[str, tf.Tensor]:
    return {"input": inputs, "target": targets}


class Pix2PixRun:
    """One Pix2Pix run: its split, pipelines, fixed preview batch and floors."""

    ema: dict = {}
    step_scalars = DISCRIMINATOR_SCALARS
    progress_keys = ("g_total", "l1", "d_total")
    preview_tag = PREVIEW_TAG

    def __init__(self, cfg: Config, run_dir: Path, tb: TensorBoard):
        self.cfg = cfg
        train_pairs, val_pairs, steps_per_epoch = training_split(splits_for_run(cfg, run_dir), cfg)
        global_batch = cfg.optim.batch_size
        nearest = label_inputs(cfg)
        store = DecodedPairs(train_pairs, cfg.data.load_size, cfg.data.max_pixels, cache=cfg.data.cache, nearest_inputs=nearest)
        val_store = DecodedPairs(val_pairs, cfg.data.image_size, cfg.data.max_pixels, cache=True, nearest_inputs=nearest)
        self.val_ds = eval_dataset(val_pairs, cfg, batch_size=min(8, len(val_pairs)), store=val_store)
        fixed_ds = eval_dataset(val_pairs[: cfg.runtime.sample_count], cfg, batch_size=cfg.runtime.sample_count, store=val_store)
        self.fixed_inputs, self.fixed_targets = next(iter(fixed_ds))
        augment = augmentation(cfg)
        self.floors = run_floors(run_dir, store, self.val_ds, cfg.data.image_size, tb)
        self.training_flag = inference_training_flag(cfg)

        def batches(first_epoch: int, epochs: int, first_skip: int) -> tf.data.Dataset:
            return training_batches(store, cfg, first_epoch, epochs, global_batch, steps_per_epoch, first_skip,
                                    augment).map(as_dict)

        self.data = TaskData(steps_per_epoch, global_batch, batches)

    def build_optimizers(self, networks):
        # Inside the strategy scope: the replica count is known (config validation warned for one replica).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if self.cfg.runtime.strategy != "default" and (warning := collapse_warning(self.cfg, replicas)):
            log.warning(warning)
        o = self.cfg.optim
        return {"g_optimizer": (make_optimizer(o.lr_g, self.cfg), o.lr_g),
                "d_optimizer": (make_optimizer(o.lr_d, self.cfg), o.lr_d)}

    def step_groups(self, networks):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        per_replica = max(1, self.data.global_batch // replicas)
        return [gan_group(networks["generator"], networks["discriminator"], self.cfg, per_replica)]

    def preview(self, networks) -> np.ndarray:
        outputs = networks["generator"](self.fixed_inputs, training=self.training_flag).numpy()
        return sample_grid(self.fixed_inputs.numpy(), outputs, self.fixed_targets.numpy())

    def validate(self, networks) -> dict[str, float]:
        return validation_metrics(networks["generator"], self.val_ds, self.training_flag)

    def end_epoch(self, epoch: int, val: dict[str, float], history: list[dict]):
        watch = FloorWatch(self.floors, [bool(r.get("below_floors")) for r in history])
        below = watch.below(val["val_psnr"], val["val_ssim"])
        return {"below_floors": below}, watch.update(epoch, val["val_psnr"], val["val_ssim"])


class Pix2PixTask:
    name = NAME
    input_domain = "image"

    def build_networks(self, cfg: Config, names: tuple[str, ...] | None = None) -> dict[str, keras.Model]:
        builders = {"generator": generator_from_config, "discriminator": discriminator_from_config}
        return {name: build(cfg) for name, build in builders.items() if names is None or name in names}

    def start(self, cfg: Config, run_dir: Path, tb: TensorBoard) -> Pix2PixRun:
        return Pix2PixRun(cfg, run_dir, tb)

    def export_metadata(self, cfg: Config) -> dict:
        """What reface_meta.json says of a Pix2Pix export beyond the image signatures."""
        return {"task": NAME, "input_domain": cfg.data.input_domain, "simulated": simulated_targets(cfg.data.root),
                "class_names": None}

    def source(self, run_dir: str | os.PathLike, checkpoint: int | None = None):
        return source_from_run(run_dir, checkpoint)

    def export(self, run_dir: str | os.PathLike, checkpoint: int | None, base: str | os.PathLike,
               precision: str = "fp32", tflite: bool = False, onnx: bool = False) -> tuple[Path, str]:
        """The generator as a SavedModel with the image signatures (serving_default: uint8 images,
        image_bytes: encoded images of any size, float_tensor: [-1, 1]); returns the folder and a summary line."""
        from reface_tf.errors import ConfigError
        from reface_tf.serve.export import export_alignment, export_onnx, export_saved_model
        from reface_tf.serve.precision import EXPORT_POLICIES, with_bfloat16_kernels

        if precision != "fp32" and (tflite or onnx):
            raise ConfigError("--precision bf16 exports the SavedModel only; drop --tflite/--onnx or export fp32")
        generator, cfg, ckpt = load_generator(run_dir, checkpoint, policy=EXPORT_POLICIES[precision])
        if precision == "bf16":
            generator = with_bfloat16_kernels(generator)
        version_dir = export_saved_model(generator, cfg, base, checkpoint=ckpt, tflite=tflite,
                                         extra_meta=self.export_metadata(cfg), run_dir=run_dir)
        summary = (f"{ckpt} -> {version_dir} (signatures serving_default, image_bytes, float_tensor; "
                   f"{cfg.data.image_size}x{cfg.data.image_size}, {precision})")
        alignment, _ = export_alignment(version_dir)
        summary += (f"\nalignment: {alignment.describe()} (from {run_dir}/alignment.json)" if alignment else
                    f"\nalignment: none recorded ({run_dir} has no alignment.json); predict.py will use its defaults")
        if onnx:
            path = export_onnx(version_dir)
            summary += f"; onnx: {path}" if path else "; onnx: unavailable (tf2onnx is not installed: pip install tf2onnx)"
        return version_dir, summary


def load_generator(run_dir: str | os.PathLike, checkpoint: int | None = None,
                   policy: str = "float32") -> tuple[keras.Model, Config, str]:
    """The generator of a Pix2Pix run restored from its latest checkpoint (or ``ckpt-<checkpoint>``), with the
    run's config and the checkpoint path. ``policy``: the Keras dtype policy the layers compute in."""
    from reface_tf.tasks import load_run

    loaded = load_run(run_dir, checkpoint, policy, names=("generator",))
    return loaded.networks["generator"], loaded.cfg, loaded.checkpoint


def make_train_step(generator: keras.Model, discriminator: keras.Model, g_opt, d_opt, cfg: Config,
                    strategy: tf.distribute.Strategy, global_batch: int):
    """The Pix2Pix step over an ``(inputs, targets)`` batch, through the engine's step, for code that drives
    the step itself (benchmarks, tests); build the networks and optimisers inside ``strategy.scope()``."""
    from reface_tf.train.step import make_group_step

    networks = {"generator": generator, "discriminator": discriminator}
    with strategy.scope():
        group = gan_group(generator, discriminator, cfg, max(1, global_batch // strategy.num_replicas_in_sync))
    step = make_group_step(group, networks, {"g_optimizer": g_opt, "d_optimizer": d_opt}, cfg, strategy, global_batch)
    count = tf.constant(0, tf.int64)
    return lambda batch: step(as_dict(*batch) if isinstance(batch, (tuple, list)) else batch, count)


def source_from_run(run_dir: str | os.PathLike, checkpoint: int | None = None):
    """A run's generator as a ``reface_tf.serve.source.ModelSource`` (uint8 → uint8), for evaluation and prediction."""
    from reface_tf.serve.source import source_from_generator

    generator, cfg, path = load_generator(run_dir, checkpoint)
    return source_from_generator(generator, cfg, path, run_dir)
