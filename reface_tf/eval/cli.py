"""``python evaluate.py``: parse and validate options, then evaluate and write the report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from reface_tf.cli import ArgumentParser
from reface_tf.errors import ConfigError

log = logging.getLogger("reface_tf.eval")

EXAMPLES = """examples:
  python evaluate.py --run-dir runs/reface                     # latest checkpoint, the run's test split
  python evaluate.py --run-dir runs/reface --checkpoint 4500 --data data/other_pairs
  python evaluate.py --model export/reface/1 --data data/pairs --out eval/reface-1
  python evaluate.py --run-dir runs/dcgan --samples 1000          # a generator: KID / FD vs held-out faces
  python evaluate.py --run-dir runs/stylegan2 --class-samples 64  # and the estimated age of each class
  python evaluate.py --model export/dcgan/1 --data faces/ --inception-weights inception_v3_notop.weights.h5
  python evaluate.py --run-dir runs/age_encoder                # age edits of the generator run's held-out faces
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Evaluate a trained generator: PSNR, SSIM, L1, identity similarity, "
                            "against the output = input baseline.", epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-dir", help="training run directory (evaluates a checkpoint)")
    which.add_argument("--model", help="exported SavedModel folder (export/reface/1, or export/reface for the newest)")
    parser.add_argument("--checkpoint", type=int, default=None, help="with --run-dir: checkpoint step (default latest)")
    parser.add_argument("--data", default=None, help="evaluate all pairs of this dataset instead of the run's test split")
    parser.add_argument("--out", default=None, help="report folder (default RUN/eval/<checkpoint>, or eval/<model>)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per generator call")
    parser.add_argument("--no-identity", action="store_true", help="skip the identity similarity (no model download)")
    parser.add_argument("--no-distribution", action="store_true", help="translations: skip the KID of all outputs "
                        "against all targets on FaceNet embeddings")
    parser.add_argument("--no-landmarks", action="store_true", help="pairs drawn from class-id maps (labels/): skip the "
                        "landmark mIoU (faces re-detected with MediaPipe, their maps rebuilt and compared)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    gen = parser.add_argument_group("generators drawn from seeds (dcgan)")
    gen.add_argument("--samples", type=int, default=1000, help="generated faces (seeds 0..N-1), at most the number of "
                     "training images, which the real-vs-real floor uses as many of")
    gen.add_argument("--embedders", default=None, help="comma-separated: facenet, sface, and inception with "
                     "--inception-weights (default: all available)")
    gen.add_argument("--inception-weights", default=None, help="weights file of keras.applications.InceptionV3("
                     "include_top=False, pooling='avg') for fd_inception / kid_inception (not downloaded)")
    gen.add_argument("--kid-subsets", type=int, default=100, help="KID subsets")
    gen.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (capped at the set sizes)")
    gen.add_argument("--class-samples", type=int, default=64, help="class-conditional generators (stylegan2): faces per "
                     "class scored by the offline age estimator against the held-out faces of the class (0 = skip)")
    gen.add_argument("--age-model", default=None, help="a local age-v1.onnx for --class-samples (default: the pinned "
                     "registry file)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.checkpoint is not None and args.model:
        raise ConfigError("--checkpoint: only with --run-dir (an export holds one checkpoint)")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: {args.batch_size} must be at least 1")
    from reface_tf.cli import setup_logging

    setup_logging(args.verbose)
    if _is_age_editor(args):
        return _evaluate_age_editor(args)
    if _draws_from_seeds(args):
        return _evaluate_generator(args)
    from reface_tf.eval.evaluate import default_out_dir, evaluate, evaluation_pairs
    from reface_tf.eval.report import write_evaluation
    source = _translation_source(args)
    pairs, description = evaluation_pairs(source, args.data)
    result = evaluate(source, pairs, description, batch_size=args.batch_size, identity=not args.no_identity,
                      progress=not args.no_progress, distribution=not args.no_distribution,
                      landmarks=not args.no_landmarks)
    out = write_evaluation(result, args.out or default_out_dir(source))
    s = result.summary
    ident = f"{s['identity_cosine']:.4f}" if s["identity_cosine"] is not None else "unavailable"
    print(f"{s['checkpoint']} on {s['n']} pairs: PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}, L1 {s['l1']:.4f}, "
          f"identity {ident} (baseline output=input: PSNR {s['baseline_psnr']:.2f} dB, SSIM {s['baseline_ssim']:.4f})"
          f"{_landmark_note(s)}; report: {out}/report.html")
    return 0


def _landmark_note(s: dict) -> str:
    if s.get("landmark_miou") is None:
        return ""
    return f", landmark mIoU {s['landmark_miou']:.4f} ({s['landmark_undetected']} of {s['landmark_n']} faces not re-detected)"


def _translation_source(args):
    """The run or export as a translation: a label-map task's own evaluation source, else the task's source."""
    from reface_tf.serve.export import read_meta, resolve_version_dir
    from reface_tf.serve.source import source_from_export
    from reface_tf.tasks import get_task, run_config, source_from_run

    if args.run_dir:
        task = get_task(run_config(args.run_dir).task.name)
        if hasattr(task, "evaluation_source"):
            return task.evaluation_source(args.run_dir, args.checkpoint)
        return source_from_run(args.run_dir, args.checkpoint)
    version_dir = resolve_version_dir(args.model)
    meta, _ = read_meta(version_dir)
    if meta.get("task") == "spade":
        from reface_tf.tasks import declare
        from reface_tf.tasks.spade.source import spade_source_from_export

        declare("spade")
        return spade_source_from_export(version_dir, meta)
    return source_from_export(args.model)


def _is_age_editor(args) -> bool:
    if args.run_dir:
        from reface_tf.tasks import run_config

        return run_config(args.run_dir).task.name == "age_encoder"
    from reface_tf.serve.export import read_meta, resolve_version_dir

    return read_meta(resolve_version_dir(args.model))[0].get("task") == "age_encoder"


def _evaluate_age_editor(args) -> int:
    """Age edits of held-out real faces: estimated age per target class, SFace identity, reconstruction."""
    from reface_tf.errors import ModelError
    from reface_tf.eval.age_edits import age_edit_report, write_age_edit_report
    from reface_tf.faces.age_estimator import AgeEstimator
    from reface_tf.metrics.identity import load_identity_model
    from reface_tf.tasks.age_encoder.task import held_out_faces

    if args.run_dir:
        from reface_tf.tasks import get_task, run_config

        editor = get_task("age_encoder").editor(args.run_dir, args.checkpoint)
        generator_run = run_config(args.run_dir).age_encoder.generator_run
        out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / editor.checkpoint
    else:
        from reface_tf.serve.age_editor import age_editor_from_export
        from reface_tf.serve.export import read_meta, resolve_version_dir

        editor = age_editor_from_export(args.model)
        generator_run = read_meta(resolve_version_dir(args.model))[0]["generator"]["run"]
        out = Path(args.out) if args.out else Path("eval") / editor.checkpoint
    if args.data:
        faces, labels, persons = _faces_of(args.data, editor.resolution), None, None
        where = f"{args.data} (all {len(faces)} images; persons unknown: each image counts as its own)"
    else:
        if not (Path(generator_run) / "config.yaml").is_file():
            raise ConfigError(f"--data: the generator run {generator_run} is not here to give its held-out faces; pass "
                              "--data with a folder of aligned faces")
        faces, labels, persons = held_out_faces(generator_run)
        where = f"held-out faces of {generator_run} ({len(faces)} faces, {len(set(persons))} persons)"
    try:
        estimator = AgeEstimator.load(args.age_model)
    except ModelError as err:
        raise ModelError(f"{err} (the age-edit evaluation needs the offline age estimator; pass --age-model PATH)") from None
    identity, description = (None, "skipped (--no-identity)") if args.no_identity else load_identity_model()
    if identity is None:
        log.warning("identity similarity left out: %s", description)
    with estimator:
        report, grids = age_edit_report(editor.edit, faces, persons, editor.class_names, estimator, identity, labels)
    report |= {"checkpoint": editor.checkpoint, "model": editor.description, "faces": where,
               "simulated": editor.simulated, "resolution": editor.resolution}
    write_age_edit_report(report, grids, out)
    ident = report.get("identity", {})
    recon = report.get("reconstruction")
    num = lambda v: "—" if v is None else f"{v:.3f}"
    print(f"{editor.checkpoint} on {len(faces)} faces: Spearman(target, estimated age) {num(report['spearman_target_age'])}"
          + (f", SFace(input, edit) {num(ident['input_edit'])} vs another person {num(ident['other_person'])}" if ident else "")
          + (f", reconstruction PSNR {recon['psnr']:.2f} dB SSIM {recon['ssim']:.4f}" if recon else "")
          + f"; report: {out}/report.md")
    return 0


def _draws_from_seeds(args) -> bool:
    """Whether the run or export is a generator sampled from seeds rather than an image translation."""
    if args.run_dir:
        from reface_tf.tasks import get_task, run_config

        return hasattr(get_task(run_config(args.run_dir).task.name), "seed_source")
    from reface_tf.serve.export import read_meta, resolve_version_dir

    meta, _ = read_meta(resolve_version_dir(args.model))
    return bool({"generate", "sample"} & set(meta.get("signatures", [])))


def _evaluate_generator(args) -> int:
    from reface_tf.eval.generative import evaluate_generator, summary_line, write_generator_report

    if args.samples < 2 or args.kid_subsets < 1 or args.kid_subset_size < 2:
        raise ConfigError("--samples and --kid-subset-size must be at least 2, --kid-subsets at least 1")
    if args.class_samples < 0:
        raise ConfigError(f"--class-samples: {args.class_samples} must be at least 0 (0 = skip the class ages)")
    from reface_tf.metrics.embeddings import available_embedders

    known = available_embedders(args.inception_weights)
    names = [n.strip() for n in (args.embedders or ",".join(known)).split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        hint = " (inception needs --inception-weights PATH)" if unknown[0] == "inception" else ""
        raise ConfigError(f"--embedders: {unknown[0]!r} is not available{hint}; choose from {', '.join(known)}")
    if args.run_dir:
        from reface_tf.tasks import get_task, run_config

        task = get_task(run_config(args.run_dir).task.name)
        source = task.seed_source(args.run_dir, args.checkpoint)
        held_classes = None
        if hasattr(task, "labelled_faces"):
            held_out, held_classes, training, _ = task.labelled_faces(args.run_dir)
        else:
            held_out, training = task.real_faces(args.run_dir)
        if args.data:
            held_out, held_classes = _faces_of(args.data, source.resolution), None
        out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / source.checkpoint
    else:
        from reface_tf.serve.source import seed_source_from_export

        if not args.data:
            raise ConfigError("--data: evaluating an exported generator needs a folder of real faces to compare with")
        source = seed_source_from_export(args.model)
        held_out, training, held_classes = _faces_of(args.data, source.resolution), None, None
        out = Path(args.out) if args.out else Path("eval") / source.checkpoint
    report, generated = evaluate_generator(source, held_out, training, names, args.samples, args.inception_weights,
                                           args.kid_subsets, args.kid_subset_size, progress=not args.no_progress)
    if source.generate_class is not None and args.class_samples:
        report["class_ages"] = _class_ages(source, args, held_out if held_classes is not None else None, held_classes)
    write_generator_report(report, generated, training, out)
    print(f"{summary_line(report)}; report: {out}/report.md")
    return 0


def _class_ages(source, args, real, real_classes) -> dict:
    from reface_tf.errors import ModelError
    from reface_tf.eval.class_ages import class_age_agreement
    from reface_tf.faces.age_estimator import AgeEstimator

    try:
        estimator = AgeEstimator.load(args.age_model)
    except ModelError as err:
        log.warning("class ages skipped: %s (or pass --class-samples 0)", err)
        return {"skipped": str(err)}
    with estimator:
        return class_age_agreement(source, estimator, args.class_samples, real, real_classes)


def _faces_of(folder: str, size: int):
    from reface_tf.data.image_folder import decode_faces, find_images

    paths, _ = find_images(Path(folder)) if Path(folder).is_dir() else ([], [])
    if not paths:
        raise ConfigError(f"--data {folder}: no face images found; pass a folder of images")
    images, _, skipped = decode_faces(paths, size)
    if skipped:
        log.warning("--data: %d image(s) skipped (first: %s: %s)", len(skipped), *skipped[0])
    return images
