"""``python edit.py``: parse and validate options, then edit the age of the face in each photo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from reface_tf.cli import ArgumentParser, setup_logging
from reface_tf.commands.photo_options import check_photo_options
from reface_tf.errors import ConfigError, DataError

EXAMPLES = """examples:
  python edit.py photo.jpg --model export/age_editor --age 61-70 --out results/
  python edit.py photo.jpg --model export/age_editor --age all --out results/   # a strip over every class
  python edit.py photos/ --run-dir runs/age_encoder --age "simulated older"      # a checkpoint instead of an export
--age takes a class name, several separated by commas, all, or (classes that are age groups) an age in years.
Writes OUT/<stem>_age_<class>.png per target and OUT/<stem>_age_strip.png (the photo, then each edit).
"""


def _class_names_without_loading(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The editor's classes from its metadata (an export) or its generator run's classes.json, before TensorFlow."""
    if args.model:
        from reface_tf.serve.export import read_meta, resolve_version_dir

        meta, _ = read_meta(resolve_version_dir(args.model))
        from reface_tf.serve.age_editor import check_age_editor_meta

        check_age_editor_meta(meta, args.model)
        return tuple(meta["class_names"])
    from reface_tf.tasks import run_config

    cfg = run_config(args.run_dir)
    if cfg.task.name != "age_encoder":
        from reface_tf.errors import ModelError

        raise ModelError(f"--run-dir {args.run_dir}: a {cfg.task.name} run, not an age encoder; train one with "
                         "python train.py --task age_encoder --generator-run RUN")
    saved = Path(cfg.age_encoder.generator_run) / "classes.json"
    return tuple(json.loads(saved.read_text())["class_names"]) if saved.is_file() else None


def _one_class(spec: str, names) -> int:
    from reface_tf.serve.age_editor import target_classes

    found = target_classes(spec, names)
    if len(found) != 1:
        raise ConfigError(f"--source-class {spec!r}: name one class of: {', '.join(names)}")
    return found[0]


def _source_class(args, editor):
    """(the class or a function of the aligned face giving it, a function closing what it opened)."""
    from reface_tf.data.age_labels import class_age_groups

    if args.source_class is not None:
        return _one_class(args.source_class, editor.class_names), None
    groups = class_age_groups(editor.class_names)
    if groups is None:
        print(f"refining with source class {editor.class_names[0]!r} (the first; --source-class sets another)")
        return 0, None
    from reface_tf.eval.age_edits import estimated_classes
    from reface_tf.faces.age_estimator import AgeEstimator

    estimator = AgeEstimator.load()
    estimate = lambda face: int(estimated_classes(estimator.predict(face[None], landmarks=[None]), groups)[0])
    return estimate, estimator.close


def edit_main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Edit the age of the face in ordinary photos: detect and align it as the "
                            "generator's faces were aligned, encode, re-render with the target class, warp back and "
                            "blend (only the face changes).", epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", metavar="PHOTO_OR_DIR", help="a photo, or a folder of photos")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="an age editor export (python export.py --run-dir runs/age_encoder --out "
                       "export/age_editor)")
    which.add_argument("--run-dir", help="an age_encoder training run (uses a checkpoint)")
    parser.add_argument("--checkpoint", type=int, default=None, help="with --run-dir: checkpoint step (default latest)")
    parser.add_argument("--age", default="all", help="target class(es): a class name, a comma list, all, or an age "
                        "in years when the classes are age groups (default all)")
    parser.add_argument("--out", default="edits", help="output folder")
    parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: pinned, cached)")
    parser.add_argument("--margin", type=float, default=None, help="override the alignment margin the model records")
    parser.add_argument("--feather", type=float, default=None, help="blend feather in aligned pixels (default: size / 32)")
    parser.add_argument("--refine-steps", type=int, default=0, help="optimise each face's latent this many Adam steps "
                        "from the encoder's start (reconstruction L1; typically 100-300; default 0 = off)")
    parser.add_argument("--source-class", default=None, help="with --refine-steps: the class the photo is in, which "
                        "the refinement reconstructs with (default: the age estimator's group when the classes are "
                        "age groups, else the first class)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    check_photo_options(args)
    if args.refine_steps < 0:
        raise ConfigError(f"--refine-steps {args.refine_steps}: must be >= 0 (0 = no refinement)")
    if args.source_class is not None and not args.refine_steps:
        raise ConfigError("--source-class: only with --refine-steps N (the class the refinement reconstructs with)")
    setup_logging(args.verbose)
    from reface_tf.serve.age_editor import target_classes
    from reface_tf.serve.predict import list_photos, no_photos_error

    photos, ignored = list_photos(args.photos)  # a wrong path, model kind or --age fails before anything loads
    for path, reason in ignored:
        print(f"skipped: {path}: {reason}", file=sys.stderr)
    if not photos:
        raise no_photos_error(args.photos, ignored)
    names = _class_names_without_loading(args)
    if names is not None:
        target_classes(args.age, names)
        if args.source_class is not None:
            _one_class(args.source_class, names)

    from reface_tf.faces.alignment_settings import alignment_path, read_alignment
    from reface_tf.faces.landmarks import FaceLandmarker
    from reface_tf.registry import sha256_of
    from reface_tf.serve.age_editor import age_editor_from_export
    from reface_tf.serve.edit import edit_photos
    from reface_tf.serve.predict import prediction_alignment

    if args.model:
        editor = age_editor_from_export(args.model)
        recorded, origin = editor.alignment, Path(editor.description) / "reface_meta.json"
    else:
        from reface_tf.tasks import get_task

        editor = get_task("age_encoder").editor(args.run_dir, args.checkpoint)
        root = editor.data_root
        recorded = read_alignment(root) if root is not None and root.is_dir() else None
        origin = alignment_path(root) if root is not None else Path(args.run_dir)
    targets = target_classes(args.age, editor.class_names)
    if editor.simulated:
        print("note: this model's classes are SIMULATED (the demo's), not real ages", file=sys.stderr)
    source, closing = 0, None
    if args.refine_steps:
        source, closing = _source_class(args, editor)
    with FaceLandmarker(args.landmarker) as landmarker:
        alignment, line = prediction_alignment(recorded, origin, editor.resolution, args.margin,
                                               sha256_of(landmarker.model_path))
        print(line)
        result = edit_photos(photos, editor, targets, landmarker, args.out, alignment, args.feather,
                             on_result=lambda photo, msg: print(msg, file=sys.stderr if msg.startswith("skipped") else sys.stdout),
                             refine_steps=args.refine_steps, source_class=source)
    if closing is not None:
        closing()
    if not result.written:
        raise DataError(f"no photo succeeded ({len(result.failed)} failed; first: {result.failed[0][1]})")
    mean = sum(result.seconds) / len(result.seconds)
    print(f"{len(result.written)} of {len(photos)} photos edited to {', '.join(editor.class_names[k] for k in targets)} "
          f"in {args.out} ({mean:.2f} s per photo" + (f", first {result.seconds[0]:.2f} s" if len(result.seconds) > 1 else "")
          + ")" + (f"; {len(result.failed)} skipped" if result.failed else ""))
    return 0
