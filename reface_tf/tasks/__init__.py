"""The task registry: what ``train.py --task NAME`` trains.

A task is a package ``reface_tf/tasks/<name>/``: its ``__init__.py`` is light (config sections and
``config.register_task``, no TensorFlow) so the command line can validate options and print ``--help`` before
TensorFlow starts, and its ``make_task()`` returns the object that implements ``reface_tf.train.task.Task``. Tasks
defined elsewhere (an experiment, a test) call ``register(name, factory)``. docs/architecture.md has a worked
example.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reface_tf.config import Config, TASK_SECTIONS, load_yaml, yaml_task
from reface_tf.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

_FACTORIES: dict[str, Callable[[], Any]] = {}
_DEFAULT_DATA: dict[str, Callable[[Config], None]] = {}


def register(name: str, factory: Callable[[], Any]) -> None:
    """Make ``factory()`` (returning a Task) the task called ``name``; its config must be declared with
    ``reface_tf.config.register_task`` first."""
    if name not in TASK_SECTIONS:
        raise ValueError(f"task {name!r}: declare its config sections with reface_tf.config.register_task first")
    _FACTORIES[name] = factory


def task_names() -> list[str]:
    packaged = [m.name for m in pkgutil.iter_modules(__path__) if m.ispkg]
    return sorted(set(packaged) | set(_FACTORIES))


def declare(name: str) -> None:
    """Import task ``name``'s light module, which registers its config sections; ConfigError if unknown."""
    if name in _FACTORIES:
        return
    if name not in [m.name for m in pkgutil.iter_modules(__path__) if m.ispkg]:
        raise ConfigError(f"--task: unknown task {name!r}; known tasks: {', '.join(task_names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    _FACTORIES[name] = module.make_task
    if hasattr(module, "fill_default_data"):
        _DEFAULT_DATA[name] = module.fill_default_data


def fill_default_data(cfg: Config) -> None:
    """Point a config that names no dataset at its task's demo data (built once, cached), if the task has one;
    the task module's ``fill_default_data(cfg)`` knows which section holds its dataset."""
    declare(cfg.task.name)
    if cfg.task.name in _DEFAULT_DATA:
        _DEFAULT_DATA[cfg.task.name](cfg)


def get_task(name: str):
    """The Task object called ``name``."""
    declare(name)
    return _FACTORIES[name]()


def train(cfg: Config):
    """Train (or resume) ``cfg``'s run with its task (``cfg.task.name``)."""
    from reface_tf.train.loop import train as engine_train

    return engine_train(cfg, get_task(cfg.task.name))


@dataclass
class LoadedRun:
    """Networks of a run restored from one of its checkpoints."""

    task: Any
    networks: dict[str, Any]
    cfg: Config
    checkpoint: str  # full checkpoint path
    run_dir: Path


def run_config(run_dir: str | os.PathLike) -> Config:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ModelError(f"--run-dir: {run_dir}/config.yaml not found; pass the run directory written by train.py")
    declare(yaml_task(run_dir / "config.yaml"))  # its sections must be known before the file is parsed
    cfg = load_yaml(run_dir / "config.yaml")
    cfg.runtime.run_dir = str(run_dir)  # where the run is now, should it have been moved since training
    return cfg


def load_run(run_dir: str | os.PathLike, checkpoint: int | None = None, policy: str = "float32",
             names: tuple[str, ...] | None = None) -> LoadedRun:
    """Rebuild a run's networks (all, or ``names``) from its ``config.yaml`` and restore them from its latest
    checkpoint or ``ckpt-<checkpoint>``. ``policy`` is the Keras dtype policy the layers compute in; the
    weights are float32 under every policy, so any run's checkpoint restores into either."""
    import keras

    from reface_tf.train.checkpoints import checkpoint_path, restore

    cfg = run_config(run_dir)
    task = get_task(cfg.task.name)
    path = checkpoint_path(run_dir, checkpoint)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        networks = task.build_networks(cfg, names)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    restore(networks, path, " and ".join(networks))
    log.info("restored %s from %s", ", ".join(networks), path)
    return LoadedRun(task, networks, cfg, path, Path(run_dir))


def source_from_run(run_dir: str | os.PathLike, checkpoint: int | None = None):
    """A run's model as an image translation (``reface_tf.serve.source.ModelSource``), by its task."""
    cfg = run_config(run_dir)
    task = get_task(cfg.task.name)
    if not hasattr(task, "source"):
        hint = getattr(task, "no_source_hint", "sample from it with sample.py instead")
        raise ConfigError(f"--run-dir {run_dir}: task {cfg.task.name!r} does not translate images; {hint}")
    return task.source(run_dir, checkpoint)
