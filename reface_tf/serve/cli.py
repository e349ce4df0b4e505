"""``python export.py`` and ``python predict.py``: parse and validate options, then call the library."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from reface_tf.errors import ConfigError

log = logging.getLogger("reface_tf.serve")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through ConfigError instead of argparse's usage dump
        raise ConfigError(f"{message}; see --help")


EXPORT_EXAMPLES = """examples:
  python export.py --run-dir runs/reface --out export/reface           # latest checkpoint -> export/reface/<n>/
  python export.py --run-dir runs/reface --out export/reface --checkpoint 4500 --tflite
  python export.py --run-dir runs/reface --out export/reface --precision bf16    # faster on AVX-512 BF16 CPUs
  saved_model_cli show --dir export/reface/1 --all
"""


def export_main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(description="Export a trained generator as a SavedModel (TF Serving layout: OUT/<version>/).",
                     epilog=EXPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="training run directory (config.yaml + checkpoints/)")
    parser.add_argument("--out", default="export/reface", help="base folder; each export is a new numbered version")
    parser.add_argument("--checkpoint", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--tflite", action="store_true", help="also write model.tflite (float32, [1,H,W,3] in [-1,1])")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx (needs tf2onnx)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="fp32",
                        help="compute precision inside the model: bf16 is about 2.4x faster at batch 1 on CPUs with AVX-512 BF16 "
                             "(outputs within a few grey levels of fp32); inputs and outputs keep their dtypes")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    from reface_tf.cli import setup_logging

    setup_logging(args.verbose)
    if args.precision != "fp32" and (args.tflite or args.onnx):
        raise ConfigError("--precision bf16 exports the SavedModel only; drop --tflite/--onnx or export fp32")
    from reface_tf.serve.export import export_alignment, export_onnx, export_saved_model  # imports TensorFlow
    from reface_tf.serve.precision import EXPORT_POLICIES, with_bfloat16_kernels
    from reface_tf.train.checkpoints import load_generator

    generator, cfg, ckpt = load_generator(args.run_dir, args.checkpoint, policy=EXPORT_POLICIES[args.precision])
    if args.precision == "bf16":
        generator = with_bfloat16_kernels(generator)
    version_dir = export_saved_model(generator, cfg, args.out, checkpoint=ckpt, tflite=args.tflite)
    print(f"exported {ckpt} -> {version_dir} (signatures serving_default, image_bytes, float_tensor; "
          f"{cfg.data.image_size}x{cfg.data.image_size}, {args.precision})")
    alignment, _ = export_alignment(version_dir)
    print(f"alignment: {alignment.describe()} (from {args.run_dir}/alignment.json)" if alignment else
          f"alignment: none recorded ({args.run_dir} has no alignment.json); predict.py will use its defaults")
    if args.onnx:
        onnx = export_onnx(version_dir)
        print(f"onnx: {onnx}" if onnx else "onnx: unavailable (tf2onnx is not installed: pip install tf2onnx)")
    return 0


PREDICT_EXAMPLES = """examples:
  python predict.py photo.jpg --model export/reface/1 --out results/
  python predict.py photos/ --run-dir runs/reface --out results/    # a checkpoint instead of an export
writes OUT/<stem>_after.png and OUT/<stem>_before_after.png for each photo with a face.
"""


def predict_main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(description="Simulate the learned translation on ordinary photos: detect and align the face, "
                     "generate, warp back and blend (only the face changes).", epilog=PREDICT_EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", metavar="PHOTO_OR_DIR", help="a photo, or a folder of photos")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="exported SavedModel (export/reface/1, or export/reface for the newest)")
    which.add_argument("--run-dir", help="training run directory (uses a checkpoint)")
    parser.add_argument("--checkpoint", type=int, default=None, help="with --run-dir: checkpoint step (default latest)")
    parser.add_argument("--out", default="predictions", help="output folder")
    parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: pinned, cached)")
    parser.add_argument("--margin", type=float, default=None,
                        help="override the alignment margin the model records (prepare.py --margin; warns when it "
                             "differs); models that record none use this or 0.2")
    parser.add_argument("--feather", type=float, default=None,
                        help="blend feather in aligned pixels (default: model size / 32)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.checkpoint is not None and args.model:
        raise ConfigError("--checkpoint: only with --run-dir (an export holds one checkpoint)")
    if args.margin is not None and not 0.0 <= args.margin < 0.5:
        raise ConfigError(f"--margin {args.margin}: must be in [0, 0.5)")
    if args.feather is not None and args.feather < 0:
        raise ConfigError(f"--feather {args.feather}: must be >= 0")
    from reface_tf.cli import setup_logging

    setup_logging(args.verbose)
    import sys

    from reface_tf.errors import DataError
    from reface_tf.faces.alignment_settings import alignment_path, read_alignment
    from reface_tf.faces.landmarks import FaceLandmarker
    from reface_tf.registry import sha256_of
    from reface_tf.serve.predict import list_photos, no_photos_error, prediction_alignment, predict_photos

    photos, ignored = list_photos(args.photos)  # before loading anything heavy: a wrong path fails fast
    for path, reason in ignored:  # every entry of the folder that is not processed, with the reason
        print(f"skipped: {path}: {reason}", file=sys.stderr)
    if not photos:
        raise no_photos_error(args.photos, ignored)
    from reface_tf.eval.evaluate import source_from_export, source_from_run  # imports TensorFlow
    from reface_tf.serve.export import export_alignment

    # How the model's training data was aligned, checked before the model is loaded.
    recorded, origin = ((read_alignment(args.run_dir), alignment_path(args.run_dir)) if args.run_dir
                        else export_alignment(args.model))
    source = source_from_run(args.run_dir, args.checkpoint) if args.run_dir else source_from_export(args.model)
    size = source.cfg.data.image_size
    with FaceLandmarker(args.landmarker) as landmarker:
        alignment, line = prediction_alignment(recorded, origin, size, args.margin, sha256_of(landmarker.model_path))
        print(line)
        result = predict_photos(photos, source.translate, size, landmarker, args.out, feather=args.feather,
                                on_result=lambda photo, msg: print(msg, file=sys.stderr if msg.startswith("skipped") else sys.stdout),
                                alignment=alignment)
    if not result.written:
        raise DataError(f"no photo succeeded ({len(result.failed)} failed; first: {result.failed[0][1]})")
    mean = sum(result.seconds) / len(result.seconds)
    print(f"{len(result.written)} of {len(photos)} photos done in {args.out} ({mean:.2f} s per photo"
          + (f", first {result.seconds[0]:.2f} s" if len(result.seconds) > 1 else "") + ")"
          + (f"; {len(result.failed)} skipped" if result.failed else "")
          + (f"; {len(ignored)} other files in the folder not read" if ignored else ""))
    return 0
