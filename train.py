#!/usr/bin/env python
"""Train a Pix2Pix face-to-face model: ``python train.py --data DIR --epochs 450`` (see --help)."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.train import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
