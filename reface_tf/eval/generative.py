"""Evaluation of a generator drawn from seeds (DCGAN, StyleGAN2): distribution distances to real faces, the
real-vs-real floor, and the memorisation check.

The generated set is seeds ``0..n-1`` of the EMA generator (or of an export); the real set is the run's
held-out faces (or every image of ``--data``). ``n`` is ``--samples`` capped at the number of training images,
and the floor compares ``n`` TRAINING images with the same real set through the same embeddings, so both rows
have the same sample counts: the floor is what the training images themselves score against the real set, the
level a generator that learnt the training distribution approaches.
Fréchet distances appear only with at least 2 x dim samples per set (the report says why otherwise); KID is
reported with its standard deviation over subsets. The memorisation check lists, per embedding, the training
image nearest each sample and the closest pairs, shown side by side in ``closest_<embedder>.png``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from reface_tf.data.images import save_png_atomic, tile_images
from reface_tf.errors import DataError
from reface_tf.serve.source import SeedSource

log = logging.getLogger(__name__)

FLOOR_SEED = 0


def sample_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Up to 4 rows of ``columns`` samples."""
    return tile_images(images[: columns * 4], min(columns, len(images)))


def evaluate_generator(source: SeedSource, real: np.ndarray, training: np.ndarray | None, embedder_names,
                       samples: int = 1000, inception_weights: str | None = None, kid_subsets: int = 100,
                       kid_subset_size: int = 1000, progress: bool = True) -> tuple[dict, np.ndarray]:
    """The report (JSON types) and the generated images."""
    from reface_tf.metrics.embeddings import distribution_report, get_embedder

    if len(real) < 2:
        raise DataError(f"evaluation needs at least 2 real faces, got {len(real)}; pass --data with a folder of faces")
    n = samples if training is None else min(samples, len(training))
    generated = source.generate(np.arange(n, dtype=np.int64))
    embedders = [get_embedder(name, inception_weights) for name in embedder_names]
    report = {"task": source.task, "checkpoint": source.checkpoint, "model": source.description, "seeds": f"0-{n - 1}",
              "resolution": source.resolution,
              "generated": distribution_report(generated, real, embedders, training=training, kid_subsets=kid_subsets,
                                               kid_subset_size=kid_subset_size, progress=progress)}
    if training is not None:
        pick = np.random.default_rng(FLOOR_SEED).choice(len(training), n, replace=False)
        report["floor_real_vs_real"] = distribution_report(training[np.sort(pick)], real, embedders, kid_subsets=kid_subsets,
                                                           kid_subset_size=kid_subset_size, progress=progress)
    return report, generated


def summary_line(report: dict) -> str:
    gen, floor = report["generated"], report.get("floor_real_vs_real")
    parts = []
    for name in gen["embedders"]:
        kid = gen[f"kid_{name}"]
        text = f"kid_{name} {kid:.4f} ± {gen[f'kid_{name}_std']:.4f}" if kid is not None else f"kid_{name} omitted"
        if floor is not None and floor.get(f"kid_{name}") is not None:
            text += f" (real-vs-real {floor[f'kid_{name}']:.4f})"
        fd = gen.get(f"fd_{name}")
        text += f", fd_{name} {fd:.2f}" if fd is not None else f", fd_{name} omitted ({gen['notes'].get(f'fd_{name}', '')})"
        parts.append(text)
    return f"{report['checkpoint']}: {gen['n_generated']} samples vs {gen['n_real']} real faces; " + "; ".join(parts)


def _markdown(report: dict) -> str:
    gen, floor = report["generated"], report.get("floor_real_vs_real")
    lines = [f"# Generator evaluation: {report['task']} {report['checkpoint']}", "",
             f"Model: `{report['model']}`; samples: seeds {report['seeds']} ({gen['n_generated']}); real faces: "
             f"{gen['n_real']}; resize: {gen['resize']}; KID: {gen['kid_subsets']} subsets of up to "
             f"{gen['kid_subset_size']}.", "", "| metric | generated | floor: real vs real |", "|---|---|---|"]
    for name in gen["embedders"]:
        for key in (f"fd_{name}", f"kid_{name}"):
            def cell(r):
                if r is None:
                    return "—"
                value = r.get(key)
                if value is None:
                    return r["notes"].get(key, "omitted")
                return f"{value:.4f}" + (f" ± {r[f'{key}_std']:.4f}" if key.startswith("kid") else "")
            lines.append(f"| {key} ↓ | {cell(gen)} | {cell(floor)} |")
    for name, mem in gen.get("memorisation", {}).items():
        lines += ["", f"Memorisation ({name}, {mem['distance']}): nearest training image per sample, min "
                  f"{mem['min']:.4f}, median {mem['median']:.4f}; closest pairs in closest_{name}.png"]
    ages = report.get("class_ages")
    if ages and "classes" in ages:
        from reface_tf.eval.class_ages import markdown_lines

        lines += markdown_lines(ages)
    elif ages:
        lines += ["", f"Estimated age per class: skipped ({ages['skipped']})"]
    return "\n".join(lines) + "\n"


def write_generator_report(report: dict, generated: np.ndarray, training: np.ndarray | None,
                           out_dir: str | os.PathLike) -> Path:
    """report.json, report.md, samples.png and (with training images) closest_<embedder>.png, written atomically."""
    from reface_tf.metrics.embeddings import save_closest_pairs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", _markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
    save_png_atomic(out / "samples.png", sample_grid(generated))
    if training is not None:
        for name, mem in report["generated"].get("memorisation", {}).items():
            save_closest_pairs(out / f"closest_{name}.png", generated, training, mem["closest"])
    return out
