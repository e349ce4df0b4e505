#!/usr/bin/env python
"""The web app over the exported models: ``python app.py [--models export]`` serves on http://127.0.0.1:7860."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.app import app_main

if __name__ == "__main__":
    sys.exit(run_cli(app_main))
