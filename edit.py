#!/usr/bin/env python
"""Edit the age of the face in photos: ``python edit.py photo.jpg --model export/age_editor --age 61-70 --out results/``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.edit import edit_main

if __name__ == "__main__":
    sys.exit(run_cli(edit_main))
