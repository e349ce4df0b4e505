#!/usr/bin/env python
"""Simulate the learned translation on photos: ``python predict.py photo.jpg --model export/reface/1 --out OUT``."""

import sys

from reface_tf.cli import run_cli
from reface_tf.commands.predict import predict_main

if __name__ == "__main__":
    sys.exit(run_cli(predict_main))
