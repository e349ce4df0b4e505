#!/usr/bin/env python
"""Align raw before/after photo pairs into a training dataset: ``python prepare.py --src RAW --dst OUT`` (see --help)."""

import sys

from reface_tf.cli import run_cli
from reface_tf.faces.prepare import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
