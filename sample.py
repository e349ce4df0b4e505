#!/usr/bin/env python
"""Draw images from an exported generator: ``python sample.py --model export/faces/1 --seeds 0-15``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.sample import sample_main

if __name__ == "__main__":
    sys.exit(run_cli(sample_main))
