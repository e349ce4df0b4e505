#!/usr/bin/env python
"""Estimate ages for a folder of faces without labels: ``python prepare_ages.py --data DIR`` writes DIR/labels.csv."""

import sys

from reface_tf.cli import run_cli
from reface_tf.faces.pseudo_ages import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
