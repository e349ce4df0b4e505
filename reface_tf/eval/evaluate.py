"""Evaluate a generator (a run's checkpoint or an exported SavedModel) on held-out pairs.

Per pair: PSNR, SSIM and L1 of the generated image against the target, identity cosine (SFace, see
:mod:`reface_tf.eval.identity`) of output vs target and output vs input, and the same numbers for the
"output = input" baseline. Pairs with a ``regions/<stem>.png`` mask (procedure-simulated pairs: the pixels the
simulation may change) also get the same metrics inside that face region (``face_*`` keys). Images are compared as the uint8 pictures a user gets (the generator's output
rounded to uint8), with the fixed data range 255; L1 is reported in the [-1, 1] units of training's
``val_l1``.

Everything is deterministic: inputs are resized straight to the model size (no crop or flip), and the
generator runs with ``inference_training_flag(cfg)`` (moving BN statistics, no dropout by default).

Example::

    source = source_from_run("runs/reface")
    pairs = evaluation_pairs(source, data=None)
    result = evaluate(source, pairs)
    out_dir = write_evaluation(result, "runs/reface/eval/ckpt-4500")
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from reface_tf.config import Config
from reface_tf.data.pairs import Pair, read_split, region_path, scan_dataset
from reface_tf.data.pipeline import DecodedPairs, to_uint8
from reface_tf.errors import DataError
from reface_tf.eval.identity import IdentityModel, load_identity_model, pair_identity
from reface_tf.metrics import UINT8_RANGE, mae, psnr, region_metrics, ssim

log = logging.getLogger(__name__)

Translate = Callable[[np.ndarray], np.ndarray]  # uint8 [N, S, S, 3] -> uint8 [N, S, S, C]


@dataclass
class ModelSource:
    """What is evaluated: a uint8 → uint8 translation at ``cfg.data.image_size``, and where it came from."""

    translate: Translate
    cfg: Config
    checkpoint: str   # a short name: "ckpt-4500" or "reface-1"
    description: str  # full path of the checkpoint or SavedModel
    run_dir: Path | None = None


def source_from_run(run_dir: str | os.PathLike, checkpoint: int | None = None) -> ModelSource:
    import tensorflow as tf

    from reface_tf.models import inference_training_flag
    from reface_tf.tasks.pix2pix.task import load_generator

    generator, cfg, path = load_generator(run_dir, checkpoint)
    training = inference_training_flag(cfg)
    gray = cfg.data.input_channels == 1

    @tf.function(reduce_retracing=True)
    def run(x: tf.Tensor) -> tf.Tensor:
        x = tf.cast(x, tf.float32) / 127.5 - 1.0
        if gray:
            x = tf.image.rgb_to_grayscale(x)
        return generator(x, training=training)

    return ModelSource(lambda images: to_uint8(run(images).numpy()), cfg, Path(path).name, str(path), Path(run_dir))


def source_from_export(path: str | os.PathLike) -> ModelSource:
    from reface_tf.serve.export import load_exported

    model = load_exported(path)
    ckpt = model.meta.get("checkpoint")
    # An export remembers its checkpoint; when that run is still here, its test split is the default data.
    run_dir = Path(ckpt).parents[1] if ckpt else None
    return ModelSource(model.translate_uint8, model.config, f"{model.path.parent.name}-{model.path.name}",
                       str(model.path), run_dir if run_dir and (run_dir / "splits.json").is_file() else None)


def evaluation_pairs(source: ModelSource, data: str | os.PathLike | None) -> tuple[list[Pair], str]:
    """The pairs to evaluate and a description: all of ``data``, else the run's held-out test split."""
    if data is not None:
        scan = scan_dataset(data, source.cfg.data)
        return scan.pairs, f"{data} (all {len(scan.pairs)} pairs)"
    if source.run_dir is None:
        raise DataError(f"--data: {source.description} is not linked to a training run with splits.json; "
                        "pass --data DIR with the pairs to evaluate")
    pairs = read_split(source.run_dir, "test")
    if not pairs:
        raise DataError(f"{source.run_dir}/splits.json has an empty test split (test_ratio 0 or a tiny dataset); "
                        "pass --data DIR with the pairs to evaluate")
    return pairs, f"test split of {source.run_dir} ({len(pairs)} pairs)"


@dataclass
class EvalResult:
    rows: list[dict]                 # one per pair, the columns of per_image.csv
    summary: dict                    # metrics.json
    examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)  # (input, output, target)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _std(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.std(values)) if values else None


REGION_KEYS = ("face_psnr", "face_ssim", "face_l1", "baseline_face_psnr", "baseline_face_ssim", "baseline_face_l1")


def load_region(pair: Pair, size: int) -> np.ndarray | None:
    """The pair's ``regions/<stem>.png`` mask at the model size (nearest neighbour), or None."""
    import cv2

    from reface_tf.data.images import load_rgb

    path = region_path(pair)
    if path is None:
        return None
    mask = load_rgb(path).max(axis=-1)
    if not mask.any():
        raise DataError(f"{path}: the region mask is empty; delete it or draw the region (non-zero pixels)")
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) > 0


def _region_row(inp: np.ndarray, out: np.ndarray, tgt: np.ndarray, region: np.ndarray | None) -> dict:
    if region is None:
        return dict.fromkeys(REGION_KEYS)
    model, base = region_metrics(out, tgt, region, UINT8_RANGE), region_metrics(inp, tgt, region, UINT8_RANGE)
    return {"face_psnr": model["psnr"], "face_ssim": model["ssim"], "face_l1": model["l1"] / 127.5,
            "baseline_face_psnr": base["psnr"], "baseline_face_ssim": base["ssim"], "baseline_face_l1": base["l1"] / 127.5}


def evaluate(source: ModelSource, pairs: list[Pair], data_description: str = "", batch_size: int = 8,
             identity: bool = True, progress: bool = True, max_examples: int = 8) -> EvalResult:
    """Translate every pair and measure it; deterministic for a given source and pair list."""
    from tqdm import tqdm

    if not pairs:
        raise DataError("no pairs to evaluate")
    size = source.cfg.data.image_size
    model: IdentityModel | None = None
    identity_description = "not requested (--no-identity)"
    if identity:
        model, identity_description = load_identity_model()
        if model is None:
            log.warning("identity similarity %s", identity_description)
    store = DecodedPairs(pairs, size, source.cfg.data.max_pixels, cache=False)
    rows: list[dict] = []
    examples = []
    with tqdm(total=len(pairs), desc="evaluate", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(pairs), batch_size):
            batch = [store.get(i) for i in range(start, min(start + batch_size, len(pairs)))]
            inputs = np.stack([a for a, _ in batch])
            targets = np.stack([b for _, b in batch])
            outputs = _as_rgb(np.asarray(source.translate(inputs)))
            for k, (inp, out, tgt) in enumerate(zip(inputs, outputs, targets)):
                pair = pairs[start + k]
                row = {"id": pair.id, "input": pair.input_path, "target": pair.target_path,
                       "psnr": psnr(out, tgt, UINT8_RANGE), "ssim": ssim(out, tgt, UINT8_RANGE),
                       "l1": mae(out, tgt) / 127.5,
                       "baseline_psnr": psnr(inp, tgt, UINT8_RANGE), "baseline_ssim": ssim(inp, tgt, UINT8_RANGE),
                       "baseline_l1": mae(inp, tgt) / 127.5}
                row.update(_region_row(inp, out, tgt, load_region(pair, size)))
                ident = pair_identity(model, inp, out, tgt) if model is not None else None
                row.update({"identity_output_target": ident.output_target if ident else None,
                            "identity_output_input": ident.output_input if ident else None,
                            "baseline_identity": ident.input_target if ident else None,
                            "identity_crop": ident.crop if ident else ""})
                rows.append(row)
                if len(examples) < max_examples:
                    examples.append((inp, out, tgt))
            bar.update(len(batch))

    col = lambda key: [r[key] for r in rows]  # noqa: E731
    summary = {
        "n": len(rows),
        "checkpoint": source.checkpoint,
        "model": source.description,
        "data": data_description,
        "image_size": size,
        "inference_mode": source.cfg.model.inference_mode,
        "psnr": _mean(col("psnr")), "psnr_std": _std(col("psnr")),
        "ssim": _mean(col("ssim")), "ssim_std": _std(col("ssim")),
        "l1": _mean(col("l1")), "l1_std": _std(col("l1")),
        "identity_cosine": _mean(col("identity_output_target")),
        "identity_cosine_std": _std(col("identity_output_target")),
        "identity_cosine_input": _mean(col("identity_output_input")),
        "baseline_psnr": _mean(col("baseline_psnr")), "baseline_ssim": _mean(col("baseline_ssim")),
        "baseline_l1": _mean(col("baseline_l1")), "baseline_identity_cosine": _mean(col("baseline_identity")),
        "n_face_region": sum(r["face_psnr"] is not None for r in rows),
        **{key: _mean(col(key)) for key in REGION_KEYS},
        "identity_model": identity_description,
        "identity_crops": {kind: sum(r["identity_crop"] == kind for r in rows) for kind in ("landmarks", "whole")}
        if model is not None else {},
    }
    log.info("evaluated %d pairs: PSNR %.2f dB, SSIM %.4f (baseline %.2f dB, %.4f)", len(rows), summary["psnr"],
             summary["ssim"], summary["baseline_psnr"], summary["baseline_ssim"])
    return EvalResult(rows, summary, examples)


def default_out_dir(source: ModelSource) -> Path:
    if source.run_dir is not None and source.checkpoint.startswith("ckpt-"):
        return source.run_dir / "eval" / source.checkpoint
    return Path("eval") / source.checkpoint
