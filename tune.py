#!/usr/bin/env python
"""Grid search with grouped K-fold cross-validation: ``python tune.py --grid grid.yaml --folds 3 --data DIR``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.tune import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
