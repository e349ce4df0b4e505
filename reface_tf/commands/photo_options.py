"""The options every command that edits faces in photos shares (``predict.py``, ``edit.py``): which model, where
to write, and how the face is aligned and blended back."""

from __future__ import annotations

import argparse

from reface_tf.errors import ConfigError


def check_photo_options(args: argparse.Namespace) -> None:
    """One-line errors for ``--checkpoint`` without ``--run-dir`` and out-of-range ``--margin`` / ``--feather``."""
    if args.checkpoint is not None and args.model:
        raise ConfigError("--checkpoint: only with --run-dir (an export holds one checkpoint)")
    if args.margin is not None and not 0.0 <= args.margin < 0.5:
        raise ConfigError(f"--margin {args.margin}: must be in [0, 0.5)")
    if args.feather is not None and args.feather < 0:
        raise ConfigError(f"--feather {args.feather}: must be >= 0")
