#!/usr/bin/env python
"""Export a trained generator as a SavedModel: ``python export.py --run-dir runs/reface --out export/reface``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.export import export_main

if __name__ == "__main__":
    sys.exit(run_cli(export_main))
