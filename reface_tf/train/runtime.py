"""Process-wide TensorFlow set-up for a run: threads, virtual CPUs, precision policy, strategy, seeds."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from reface_tf.config import Config
from reface_tf.errors import ConfigError

log = logging.getLogger(__name__)


def configure_threads(intra: int, inter: int) -> None:
    """Thread pools can only be sized before TensorFlow runs its first op; later calls are ignored."""
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        log.warning("TensorFlow is already initialised; --intra-threads/--inter-threads ignored in this process")


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"--strategy: unknown strategy {name!r}")


def set_precision(policy: str) -> None:
    keras.mixed_precision.set_global_policy("float32" if policy == "fp32" else policy)


def setup(cfg: Config) -> tf.distribute.Strategy:
    """Apply the runtime section; returns the distribution strategy to build models under."""
    r = cfg.runtime
    configure_threads(r.intra_threads, r.inter_threads)
    keras.utils.set_random_seed(r.seed)
    set_precision(r.precision)
    strategy = make_strategy(r.strategy)
    if r.jit and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        raise ConfigError("--jit with several CPU replicas is not supported (XLA compiles every replica onto the first "
                          "CPU device); drop --jit or use --strategy default")
    if cfg.optim.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"--batch-size ({cfg.optim.batch_size}) must be a multiple of the {strategy.num_replicas_in_sync} "
                          "replicas of the strategy")
    return strategy
