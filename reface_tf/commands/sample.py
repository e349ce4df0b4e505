"""``python sample.py --model EXPORT --seeds 0-15``: draw images from an exported unconditional or
class-conditional generator (any export whose task gave it a ``sample`` signature)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from reface_tf.cli import ArgumentParser, setup_logging
from reface_tf.errors import ConfigError, ModelError

EXAMPLES = """examples:
  python sample.py --model export/faces/1 --seeds 0-15 --out samples/        # 16 images + grid.png
  python sample.py --model export/faces --seeds 3,7,42                          # the newest version
  python sample.py --model export/stylegan2 --seeds 0-15 --class 1           # a class-conditional export
  python sample.py --model export/faces --interpolate 3 7 --steps 10 --out strip.png   # from seed 3's face to 7's
The same seed always gives the same image (the latent is drawn from the seed inside the model).
"""

MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """``0-15``, ``3,7,42`` or a mix (``0-3,10``) -> the seeds in order; ConfigError naming --seeds otherwise."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                first, last = (int(v) for v in part.split("-", 1)) if not part.startswith("-") else (None, None)
                if first is None or last < first:
                    raise ValueError(part)
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected non-negative integers and ranges such as 0-15 or 3,7,42") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: expected non-negative integers and ranges such as 0-15 or 3,7,42")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds {text!r}: {len(seeds)} seeds; at most {MAX_SEEDS} at a time")
    return seeds


def sample_main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Draw images from an exported generator, one per seed.", epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exported SavedModel (export/NAME/1, or export/NAME for the newest)")
    parser.add_argument("--seeds", default="0-15", help="seeds: ranges and lists, e.g. 0-15 or 3,7,42")
    parser.add_argument("--out", default="samples", help="output folder: seed<N>.png per seed and grid.png")
    parser.add_argument("--batch-size", type=int, default=16, help="seeds per call of the model")
    parser.add_argument("--interpolate", nargs=2, type=int, metavar=("SEED_A", "SEED_B"),
                        help="write one strip along the straight line between two seeds' latents instead (needs an "
                             "export with latent and generate_from_latent signatures); --out is then the PNG file")
    parser.add_argument("--class", dest="class_index", type=int, default=None,
                        help="class of every face, for class-conditional exports (stylegan2; default 0)")
    parser.add_argument("--truncation", type=float, default=1.0, help="truncation psi toward the average w (stylegan2)")
    parser.add_argument("--steps", type=int, default=8, help="--interpolate: faces in the strip")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: must be at least 1")
    setup_logging(args.verbose)
    from reface_tf.serve.export import read_meta, resolve_version_dir

    version = resolve_version_dir(args.model)
    meta, _ = read_meta(version)
    signatures = meta.get("signatures", [])
    name = next((s for s in ("generate", "sample") if s in signatures), None)
    if name is None:
        raise ConfigError(f"--model {version}: this export (task {meta.get('task', 'pix2pix')}) has no generate or sample "
                          "signature; it translates images: use predict.py")
    if args.interpolate and not {"latent", "generate_from_latent"} <= set(signatures):
        raise ConfigError(f"--interpolate: the export {version} has no latent / generate_from_latent signatures; "
                          "re-export the run with this version's export.py")
    if args.steps < 2:
        raise ConfigError(f"--steps {args.steps}: an interpolation needs at least 2 faces")
    import numpy as np
    import tensorflow as tf

    from reface_tf.data.images import save_png_atomic, tile_images

    model = tf.saved_model.load(str(version))
    if args.interpolate:
        z = model.signatures["latent"](seeds=tf.constant(args.interpolate, tf.int64))["z"].numpy()
        t = np.linspace(0.0, 1.0, args.steps, dtype=np.float32)[:, None]
        strip = model.signatures["generate_from_latent"](z=tf.constant((1 - t) * z[0] + t * z[1]))["images"].numpy()
        out = Path(args.out) if Path(args.out).suffix.lower() == ".png" else Path(args.out) / "interpolation.png"
        save_png_atomic(out, np.concatenate(list(strip), axis=1))
        print(f"{args.steps} faces from seed {args.interpolate[0]} to seed {args.interpolate[1]} in {out}", file=sys.stdout)
        return 0
    sample = model.signatures[name]
    conditional = "classes" in sample.structured_input_signature[1]
    if args.class_index is not None and not conditional:
        raise ConfigError(f"--class: the export {version} (task {meta.get('task')}) is not class-conditional; drop --class")
    if conditional:
        count = int(meta.get("num_classes") or 0)
        cls = args.class_index or 0
        if count and not 0 <= cls < count:
            names = ", ".join(f"{i}={n}" for i, n in enumerate(meta.get("class_names") or []))
            raise ConfigError(f"--class {cls}: this export has {count} classes ({names})")
        inner = sample
        sample = lambda seeds: inner(seeds=seeds, classes=tf.fill(tf.shape(seeds), tf.constant(cls, tf.int32)),
                                     truncation=tf.constant(args.truncation, tf.float32))
    images = []
    for i in range(0, len(seeds), args.batch_size):
        chunk = tf.constant(seeds[i:i + args.batch_size], tf.int64)
        out = (sample(chunk) if conditional else sample(seeds=chunk))["images"].numpy()
        if out.dtype != np.uint8:
            raise ModelError(f"--model {version}: its {name} signature returned {out.dtype}, not uint8 images")
        images.extend(out)
    out_dir = Path(args.out)
    for seed, image in zip(seeds, images):
        save_png_atomic(out_dir / f"seed{seed:04d}.png", image)
    save_png_atomic(out_dir / "grid.png", tile_images(images, min(8, len(images))))
    print(f"{len(images)} images from {version} (task {meta.get('task')}) in {out_dir}", file=sys.stdout)
    return 0
