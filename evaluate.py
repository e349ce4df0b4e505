#!/usr/bin/env python
"""Evaluate a trained generator: ``python evaluate.py --run-dir runs/reface`` (see --help)."""

import sys

from reface_tf.cli import run_cli
from reface_tf.eval.cli import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
