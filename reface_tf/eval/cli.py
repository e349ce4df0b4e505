"""``python evaluate.py``: parse and validate options, then evaluate and write the report."""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from reface_tf.cli import ArgumentParser
from reface_tf.errors import ConfigError

log = logging.getLogger("reface_tf.eval")

EXAMPLES = """examples:
  python evaluate.py --run-dir runs/reface                     # latest checkpoint, the run's test split
  python evaluate.py --run-dir runs/reface --checkpoint 4500 --data data/other_pairs
  python evaluate.py --model export/reface/1 --data data/pairs --out eval/reface-1
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.checkpoint is not None and args.model:
        raise ConfigError("--checkpoint: only with --run-dir (an export holds one checkpoint)")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size: {args.batch_size} must be at least 1")
    from reface_tf.cli import setup_logging

    setup_logging(args.verbose)
    from reface_tf.eval.evaluate import default_out_dir, evaluate, evaluation_pairs
    from reface_tf.eval.report import write_evaluation
    from reface_tf.serve.source import source_from_export
    from reface_tf.tasks import source_from_run

    source = source_from_run(args.run_dir, args.checkpoint) if args.run_dir else source_from_export(args.model)
    pairs, description = evaluation_pairs(source, args.data)
    result = evaluate(source, pairs, description, batch_size=args.batch_size, identity=not args.no_identity,
                      progress=not args.no_progress)
    out = write_evaluation(result, args.out or default_out_dir(source))
    s = result.summary
    ident = f"{s['identity_cosine']:.4f}" if s["identity_cosine"] is not None else "unavailable"
    print(f"{s['checkpoint']} on {s['n']} pairs: PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f}, L1 {s['l1']:.4f}, "
          f"identity {ident} (baseline output=input: PSNR {s['baseline_psnr']:.2f} dB, SSIM {s['baseline_ssim']:.4f}); "
          f"report: {out}/report.html")
    return 0
