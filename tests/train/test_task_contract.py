"""The engine is not Pix2Pix-shaped: a toy task defined only in this file trains, resumes exactly and exports.

The toy is what the unconditional and style-based families need and Pix2Pix does not: no targets, a latent z
drawn in the data pipeline, an EMA copy of its generator, a discriminator with two output scales, a lazy
regulariser (R1 on real images) every 4 steps, and an export whose signature samples from seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reface_tf import tasks
from reface_tf.config import Config, _opt, register_task
from reface_tf.errors import ConfigError
from reface_tf.losses import adversarial
from reface_tf.metrics import SIGNED_UNIT_RANGE, psnr
from reface_tf.serve.archive import write_versioned_export
from reface_tf.serve.export import read_meta
from reface_tf.train.step import make_optimizer
from reface_tf.train.task import EMA, Phase, StepGroup, TaskData

SIZE, LATENT, REG_EVERY = 8, 4, 4


@dataclass
class ToyConfig:
    examples: int = _opt(16, "training images")
    ema_decay: float = _opt(0.9, "EMA decay of the generator copy")
    r1_gamma: float = _opt(1.0, "R1 weight")
    disc_filters: int = _opt(1, "filters of the full-scale discriminator output")


def validate_toy(cfg: Config, check_paths: bool) -> None:
    if cfg.toy.examples < cfg.optim.batch_size:
        raise ConfigError(f"--examples (toy.examples): {cfg.toy.examples} is fewer than --batch-size")


register_task("toy", {"toy": ToyConfig}, validate_toy)


def real_images(count: int) -> np.ndarray:
    """A fixed 'dataset': smooth colour ramps in [-1, 1]."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, SIZE, dtype=np.float32)
    colours = rng.uniform(-0.8, 0.8, (count, 1, 1, 3)).astype(np.float32)
    return np.clip(colours + 0.1 * (ramp[None, :, None, None] + ramp[None, None, :, None]), -1, 1)


def latent(seed: int, epoch, index) -> tf.Tensor:
    return tf.random.stateless_normal([LATENT], tf.stack([tf.cast(seed * 1000 + epoch, tf.int64), tf.cast(index, tf.int64)]))


def sample_from_seeds(generator: keras.Model, seeds: tf.Tensor) -> tf.Tensor:
    z = tf.map_fn(lambda s: tf.random.stateless_normal([LATENT], tf.stack([s, tf.constant(0, tf.int64)])),
                  tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)
    return generator(z, training=False)


class ToyRun:
    preview_tag = "samples/ema"
    step_scalars = {"d_accuracy": "D/accuracy"}

    def __init__(self, cfg: Config):
        self.cfg = cfg
        images = real_images(cfg.toy.examples)
        batch, seed = cfg.optim.batch_size, cfg.runtime.seed
        steps = cfg.optim.steps_per_epoch or len(images) // batch
        self.ema = {"generator_ema": EMA("generator", cfg.toy.ema_decay)}
        self.mean_real = images.mean(axis=0)

        def batches(first_epoch: int, epochs: int, first_skip: int) -> tf.data.Dataset:
            items = []
            for epoch in range(first_epoch, epochs):
                order = np.random.default_rng([seed, epoch]).permutation(len(images))[: steps * batch]
                items += [(epoch, i) for i in order[(first_skip if epoch == first_epoch else 0) * batch:]]
            epochs_of, index = (np.array(v, np.int64) for v in zip(*items)) if items else (np.zeros(0, np.int64),) * 2
            ds = tf.data.Dataset.from_tensor_slices((epochs_of, index))
            ds = ds.map(lambda e, i: {"real": tf.gather(images, i), "z": latent(seed, e, i)})
            return ds.batch(batch, drop_remainder=True)

        self.data = TaskData(steps, batch, batches)

    def build_optimizers(self, networks):
        return {"g_optimizer": (make_optimizer(1e-3, self.cfg), 1e-3), "d_optimizer": (make_optimizer(1e-3, self.cfg), 1e-3)}

    def step_groups(self, networks):
        G, D = networks["generator"], networks["discriminator"]

        def gan(batch, ctx):
            fake = G(batch["z"], training=True)
            real_logits, fake_logits = D(batch["real"], training=True), D(fake, training=True)  # two scales each
            g_adv = ctx.average(adversarial.generator_loss("bce", fake_logits))
            d_adv = ctx.average(adversarial.discriminator_loss("bce", real_logits, fake_logits))
            stats = adversarial.decision_stats("bce", real_logits, fake_logits)
            n = tf.shape(fake)[0]
            return {"g_total": g_adv, "d_total": d_adv}, {"d_accuracy": ctx.share(tf.reduce_mean(stats["d_accuracy"]), n)}

        def r1(batch, ctx):
            real = batch["real"]
            with tf.GradientTape() as tape:
                tape.watch(real)
                score = tf.add_n([tf.reduce_sum(x) for x in D(real, training=True)])
            penalty = tf.reduce_sum(tf.square(tape.gradient(score, real)), axis=[1, 2, 3])
            # Lazy regularisation: applied every REG_EVERY steps with REG_EVERY times the weight.
            loss = ctx.average(0.5 * self.cfg.toy.r1_gamma * REG_EVERY * penalty)
            return {"d_r1": loss}, {}

        return [StepGroup("gan", (Phase("d_total", "d_optimizer", ("discriminator",)),
                                  Phase("g_total", "g_optimizer", ("generator",))), gan),
                StepGroup("r1", (Phase("d_r1", "d_optimizer", ("discriminator",)),), r1, every=REG_EVERY)]

    def preview(self, networks) -> np.ndarray:
        images = sample_from_seeds(networks["generator_ema"], tf.range(4, dtype=tf.int64)).numpy()
        return ((np.concatenate(list(images), axis=1) + 1) * 127.5).round().clip(0, 255).astype(np.uint8)

    def validate(self, networks) -> dict[str, float]:
        samples = sample_from_seeds(networks["generator_ema"], tf.range(16, dtype=tf.int64)).numpy()
        return {"val_psnr": psnr(samples.mean(axis=0).astype(np.float64), self.mean_real.astype(np.float64), SIGNED_UNIT_RANGE)}

    def end_epoch(self, epoch, val, history):
        return {}, None


def toy_generator(name: str) -> keras.Model:
    z = keras.Input((LATENT,))
    x = keras.layers.Dense(SIZE * SIZE * 3, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(1), name="dense")(z)
    return keras.Model(z, keras.layers.Reshape((SIZE, SIZE, 3))(x), name=name)


def toy_discriminator(filters: int = 1) -> keras.Model:
    image = keras.Input((SIZE, SIZE, 3))
    full = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=keras.initializers.GlorotUniform(2), name="full")(image)
    half = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=keras.initializers.GlorotUniform(3), name="half")(
        keras.layers.AveragePooling2D(2)(image))
    return keras.Model(image, [full, half], name="discriminator")


class ToyTask:
    name = "toy"

    def build_networks(self, cfg, names=None):
        builders = {"generator": lambda: toy_generator("generator"), "generator_ema": lambda: toy_generator("generator_ema"),
                    "discriminator": lambda: toy_discriminator(cfg.toy.disc_filters)}
        return {k: build() for k, build in builders.items() if names is None or k in names}

    def start(self, cfg, run_dir, tb):
        return ToyRun(cfg)

    def export(self, run_dir, checkpoint, base):
        loaded = tasks.load_run(run_dir, checkpoint, names=("generator_ema",))
        generator = loaded.networks["generator_ema"]
        as_uint8 = lambda x: tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
        sample = tf.function(lambda seeds: {"images": as_uint8(sample_from_seeds(generator, seeds))},
                             input_signature=[tf.TensorSpec([None], tf.int64, name="seeds")])
        return write_versioned_export({"serving_default": sample, "sample": sample},
                                      {"task": self.name, "input_domain": "latent", "checkpoint": loaded.checkpoint}, base), "toy"


tasks.register("toy", ToyTask)


def toy_config(run_dir: Path, epochs: int) -> Config:
    cfg = Config()
    cfg.task.name = "toy"
    cfg.optim.epochs, cfg.optim.batch_size = epochs, 4
    cfg.runtime.run_dir, cfg.runtime.progress, cfg.runtime.log_every, cfg.runtime.image_every = str(run_dir), "none", 2, 3
    return cfg


def weights(run_dir: Path) -> dict[str, list[np.ndarray]]:
    loaded = tasks.load_run(run_dir)
    return {name: [w.numpy() for w in net.weights] for name, net in loaded.networks.items()}


def test_toy_config_sections_validate_and_save_only_its_own(tmp_path):
    from reface_tf.config import save_yaml, load_yaml, validate

    cfg = toy_config(tmp_path / "run", 1)
    validate(cfg)
    assert list(cfg.to_dict()) == ["task", "toy", "optim", "runtime"]  # no Pix2Pix sections in its config.yaml
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(tmp_path / "c.yaml") == cfg
    with pytest.raises(ConfigError, match=r"^--examples \(toy.examples\): 2 is fewer than --batch-size$"):
        validate(cfg.replace(toy={"examples": 2}))
    with pytest.raises(ConfigError, match="unknown task 'nope'; known tasks: .*pix2pix.*toy"):
        tasks.get_task("nope")


@pytest.mark.slow
def test_toy_task_trains_resumes_exactly_and_exports(tmp_path):
    straight = tmp_path / "straight"
    result = tasks.train(toy_config(straight, 3))
    assert (result.epochs_done, result.steps_done) == (3, 12)
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    # The lazy R1 group ran on steps 0, 4, 8 only: its loss is averaged over those 3 of the 12 steps' logs.
    assert all(np.isfinite(r["loss/d_r1"]) and r["loss/d_r1"] > 0 for r in rows)
    assert {"loss/g_total", "loss/d_total", "d_accuracy", "val_psnr"} <= set(rows[-1])
    assert (straight / "samples").is_dir() and (straight / "loss_curves.png").is_file()

    final = weights(straight)
    # The EMA copy moved away from its initial value (the generator's at step 0) but is not the generator.
    ema, gen = final["generator_ema"], final["generator"]
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(ema, gen))

    # 2 epochs, stop, resume to 3: bit-identical to the straight run (data order, z, R1 schedule, EMA).
    resumed = tmp_path / "resumed"
    tasks.train(toy_config(resumed, 2))
    tasks.train(toy_config(resumed, 3))
    again = weights(resumed)
    for name in final:
        for a, b in zip(final[name], again[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    resumed_rows = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_psnr"] for r in resumed_rows] == [r["val_psnr"] for r in rows]

    # Export through the generic writer: the sample signature reproduces the EMA generator on the same seeds.
    loaded = tasks.load_run(straight)
    version, _ = tasks.get_task("toy").export(straight, None, tmp_path / "export")
    meta, _ = read_meta(version)
    assert meta["task"] == "toy" and meta["signatures"] == ["serving_default", "sample"]
    served = tf.saved_model.load(str(version)).signatures["sample"](seeds=tf.constant([3, 7], tf.int64))["images"]
    expected = sample_from_seeds(loaded.networks["generator_ema"], tf.constant([3, 7], tf.int64)).numpy()
    assert served.dtype == tf.uint8
    np.testing.assert_allclose(served.numpy(), np.round((expected + 1) * 127.5).clip(0, 255), atol=1)

    # sample.py draws from any export with a sample signature; a Pix2Pix export is refused in one line.
    from reface_tf.commands.sample import sample_main

    assert sample_main(["--model", str(tmp_path / "export"), "--seeds", "3,7", "--out", str(tmp_path / "drawn")]) == 0
    drawn = np.asarray(Image.open(tmp_path / "drawn" / "seed0007.png"))
    np.testing.assert_array_equal(drawn, served.numpy()[1])
    assert (tmp_path / "drawn" / "grid.png").is_file()


@pytest.mark.slow
def test_init_from_copies_weights_and_names_a_mismatched_layer(tmp_path):
    from reface_tf.errors import ModelError

    source = tmp_path / "source"
    tasks.train(toy_config(source, 3))  # 12 steps away from the initial weights
    start = toy_config(tmp_path / "finetune", 1)
    start.runtime.init_from = str(source)
    start.optim.steps_per_epoch = 1
    tasks.train(start)
    # One Adam step (lr 1e-3) from the source's weights: within ~1e-3 of them, and far from the initial weights
    # that 12 steps of the source moved by up to ~12e-3.
    src, tuned = weights(source)["generator"], weights(tmp_path / "finetune")["generator"]
    fresh = [w.numpy() for w in toy_generator("generator").weights]
    assert max(np.abs(a - b).max() for a, b in zip(src, tuned)) < 2e-3
    assert max(np.abs(a - b).max() for a, b in zip(fresh, tuned)) > 5e-3

    wider = toy_config(tmp_path / "wider", 1)
    wider.toy.disc_filters = 2
    wider.runtime.init_from = str(source / "checkpoints" / Path(tasks.load_run(source).checkpoint).name)
    with pytest.raises(ModelError, match=r"--init-from .*: discriminator layer 'full' weight .* has shape \(3, 3, 3, 1\) "
                                         r"there and \(3, 3, 3, 2\) here"):
        tasks.train(wider)
    assert not (tmp_path / "wider" / "checkpoints").exists()


def test_sample_seeds_parse_and_bad_ones_are_one_line():
    from reface_tf.commands.sample import parse_seeds

    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    for bad in ("3-1", "a", "", "-2"):
        with pytest.raises(ConfigError, match=r"^--seeds .*: expected non-negative integers"):
            parse_seeds(bad)


def test_help_lists_the_chosen_tasks_sections_only():
    from reface_tf.config import build_parser

    toy_help, pix_help = build_parser(task="toy").format_help(), build_parser(task="pix2pix").format_help()
    assert "--examples" in toy_help and "--generator-depth" not in toy_help and "--epochs" in toy_help
    assert "--generator-depth" in pix_help and "--examples" not in pix_help and "task (pix2pix)" in pix_help
