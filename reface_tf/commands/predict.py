"""``python predict.py``: parse and validate options, then simulate the translation on photos."""

from __future__ import annotations

import argparse
from typing import Sequence

from reface_tf.cli import ArgumentParser, setup_logging
from reface_tf.commands.photo_options import check_photo_options
from reface_tf.errors import ConfigError


PREDICT_EXAMPLES = """examples:
  python predict.py photo.jpg --model export/reface/1 --out results/
  python predict.py labels.png --model export/spade --out faces/    # a SPADE export: label map -> face
  python predict.py photos/ --run-dir runs/reface --out results/    # a checkpoint instead of an export
writes OUT/<stem>_after.png and OUT/<stem>_before_after.png for each photo with a face.
"""


def _label_map_task(args: argparse.Namespace) -> int | None:
    """Label maps → faces when the model is a SPADE export (None for an image-translation model)."""
    if args.run_dir:
        from reface_tf.tasks import run_config

        if run_config(args.run_dir).task.name == "spade":
            raise ConfigError(f"--run-dir {args.run_dir}: a spade run predicts from its export; run python export.py "
                              f"--run-dir {args.run_dir} --out export/spade, then predict.py MAP.png --model export/spade")
        return None
    from reface_tf.errors import ModelError
    from reface_tf.serve.export import read_meta, resolve_version_dir

    try:
        task = read_meta(resolve_version_dir(args.model))[0].get("task")
    except ModelError:
        return None  # not an export: reported after the photos are checked, as for every model
    if task != "spade":
        return None
    from reface_tf.tasks.spade.predict import predict_label_maps

    return predict_label_maps(args.photos, args.model, args.out)


def predict_main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Simulate the learned translation on ordinary photos: detect and align the face, "
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
    check_photo_options(args)
    setup_logging(args.verbose)
    if (task := _label_map_task(args)) is not None:
        return task
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
    from reface_tf.serve.export import export_alignment
    from reface_tf.serve.source import source_from_export
    from reface_tf.tasks import source_from_run  # loading imports TensorFlow

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
