#!/usr/bin/env python
"""Convert CelebAMask-HQ into label maps for the SPADE task: ``python prepare_segmaps.py --celebamask-hq ROOT --out DIR``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.data.celebamask import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
