"""Evaluate a generator (a run's checkpoint or an exported SavedModel) on held-out pairs.

Per pair: PSNR, SSIM and L1 of the generated image against the target, identity cosine (SFace, see
:mod:`reface_tf.metrics.identity`) of output vs target and output vs input, and the same numbers for the
"output = input" baseline; the names and meanings are those of :mod:`reface_tf.metrics.registry`. Pairs with a
``regions/<stem>.png`` mask (procedure-simulated pairs: the pixels the simulation may change) also get the same
metrics inside that face region (``face_*`` keys). Images are compared as the uint8 pictures a user gets (the
generator's output rounded to uint8), with the fixed data range 255; L1 is reported in the [-1, 1] units of
training's ``val_l1``.

Everything is deterministic: inputs are resized straight to the model size (no crop or flip), and the
generator runs with ``inference_training_flag(cfg)`` (moving BN statistics, no dropout by default).

Example::

    from reface_tf.tasks import source_from_run

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

import numpy as np

from reface_tf.data.pairs import Pair, read_split, region_path, scan_dataset
from reface_tf.data.pipeline import DecodedPairs, label_inputs
from reface_tf.errors import DataError
from reface_tf.metrics import UINT8_RANGE, face_region_scores, get_metric, metric_names
from reface_tf.metrics.identity import IdentityModel, load_identity_model, pair_identity
from reface_tf.serve.source import ModelSource

log = logging.getLogger(__name__)

# The registered metrics measured here: whole-image ones on every pair, face-region ones where a pair has a mask.
PAIR_METRICS = metric_names(("output", "target"))                                                # psnr, ssim, l1
REGION_METRICS = tuple(n for n in metric_names(("output", "target", "region")) if n not in PAIR_METRICS)  # face_*


def evaluation_pairs(source: ModelSource, data: str | os.PathLike | None) -> tuple[list[Pair], str]:
    """The pairs to evaluate and a description: all of ``data``, else the run's held-out test split."""
    if data is not None:
        if source.cfg.task.name == "spade":  # a label-map run: labels/ + B/ (or the CelebAMask-HQ layout), as it trained on
            from reface_tf.data.labels import scan_label_dataset

            scan = scan_label_dataset(data, source.cfg.data, source.cfg.spade.num_classes)
        else:
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


REGION_KEYS = (*REGION_METRICS, *(f"baseline_{name}" for name in REGION_METRICS))


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
    model, base = face_region_scores(out, tgt, region, UINT8_RANGE), face_region_scores(inp, tgt, region, UINT8_RANGE)
    return {**{name: model[name] for name in REGION_METRICS}, **{f"baseline_{name}": base[name] for name in REGION_METRICS}}


def _pair_row(inp: np.ndarray, out: np.ndarray, tgt: np.ndarray) -> dict:
    row = {name: get_metric(name).fn(out, tgt, UINT8_RANGE) for name in PAIR_METRICS}
    row.update({f"baseline_{name}": get_metric(name).fn(inp, tgt, UINT8_RANGE) for name in PAIR_METRICS})
    return row


# Pairs whose images are kept for the distribution distance (uint8: 256x256 x 3 images x 2,000 = 1.2 GB at most).
DISTRIBUTION_MAX_PAIRS = 2000
_EMBEDDERS: dict = {}


def distribution_scores(outputs: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> dict:
    """KID (and the Fréchet distance when there are enough pairs) of the outputs against the targets on FaceNet
    embeddings, and the same for output = input (``baseline_``); None with the reason when FaceNet is unavailable."""
    from reface_tf.errors import RefaceError
    from reface_tf.metrics.embeddings import distribution_report, get_embedder

    try:
        if "facenet" not in _EMBEDDERS:  # loading and tracing the graph takes seconds: once per process
            _EMBEDDERS["facenet"] = get_embedder("facenet")
        embedder = _EMBEDDERS["facenet"]
    except RefaceError as err:
        log.warning("distribution distance unavailable: %s", err)
        return {"kid_facenet": None, "distribution_notes": f"unavailable: {err}"}
    model = distribution_report(outputs, targets, [embedder])
    base = distribution_report(inputs, targets, [embedder])
    return {"kid_facenet": model["kid_facenet"], "kid_facenet_std": model["kid_facenet_std"], "fd_facenet": model["fd_facenet"],
            "baseline_kid_facenet": base["kid_facenet"], "baseline_fd_facenet": base["fd_facenet"],
            "distribution_notes": "; ".join(f"{k}: {v}" for k, v in model["notes"].items()) or None}


def label_map_of(pair: Pair) -> Path | None:
    """The class-id map a pair's input was drawn from: the input itself when it lies in ``labels/``, else the
    dataset's ``labels/<stem>.png`` (the demo ``segmap`` layout: ``A/`` palette pictures beside it); or None."""
    inp = Path(pair.input_path)
    if inp.parent.name == "labels":
        return inp
    path = inp.parent.parent / "labels" / f"{inp.stem}.png"
    return path if path.is_file() else None


def mean_face_floor(source: ModelSource, targets: list[np.ndarray]) -> dict:
    """PSNR/SSIM of the mean training photo (the run's train split) as every output; empty without a run."""
    from reface_tf.tasks.pix2pix.floors import mean_target

    train = read_split(source.run_dir, "train") if source.run_dir is not None else []
    if not train or not targets:
        return {}
    size = source.cfg.data.image_size
    store = DecodedPairs(train, size, source.cfg.data.max_pixels, cache=False, nearest_inputs=label_inputs(source.cfg))
    from reface_tf.data.pipeline import to_uint8

    mean = to_uint8(mean_target(store, size))
    rows = [{name: get_metric(name).fn(mean, t, UINT8_RANGE) for name in ("psnr", "ssim")} for t in targets]
    return {"floor_mean_face_psnr": _mean([r["psnr"] for r in rows]), "floor_mean_face_ssim": _mean([r["ssim"] for r in rows])}


def _landmark_scorer(pairs: list[Pair], wanted: bool):
    """A landmark mIoU scorer when the pairs come with class-id maps (and the landmarker loads), else None."""
    if not wanted or label_map_of(pairs[0]) is None:
        return None
    from reface_tf.errors import RefaceError
    from reface_tf.metrics.landmark_miou import LandmarkMIoU

    try:
        return LandmarkMIoU()
    except RefaceError as err:
        log.warning("landmark mIoU unavailable: %s", err)
        return None


def _landmark_row(scorer, pair: Pair, output: np.ndarray):
    from reface_tf.synth.segmaps import load_label_png

    path = label_map_of(pair)
    if scorer is None or path is None:
        return None
    # Against the map at its own resolution: rasterising the rebuilt map at a 64 px model size would lose the
    # eyes and lips to pixel rounding (measured on the real demo photos: 0.57 at 64 px vs 0.72 at 256 px).
    return scorer.score(output, load_label_png(path))


def evaluate(source: ModelSource, pairs: list[Pair], data_description: str = "", batch_size: int = 8,
             identity: bool = True, progress: bool = True, max_examples: int = 8, distribution: bool = True,
             landmarks: bool = True) -> EvalResult:
    """Translate every pair and measure it; deterministic for a given source and pair list. ``distribution``:
    also the KID of all outputs against all targets (the first ``DISTRIBUTION_MAX_PAIRS``). ``landmarks``: the
    landmark mIoU (:mod:`reface_tf.metrics.landmark_miou`) of pairs drawn from class-id maps."""
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
    store = DecodedPairs(pairs, size, source.cfg.data.max_pixels, cache=False, nearest_inputs=label_inputs(source.cfg))
    scorer = _landmark_scorer(pairs, landmarks)
    picture = source.input_picture or (lambda x: x)
    landmark_results = []
    all_targets: list[np.ndarray] = []
    rows: list[dict] = []
    examples = []
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    with tqdm(total=len(pairs), desc="evaluate", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(pairs), batch_size):
            batch = [store.get(i) for i in range(start, min(start + batch_size, len(pairs)))]
            model_inputs = np.stack([a for a, _ in batch])
            targets = np.stack([b for _, b in batch])
            outputs = _as_rgb(np.asarray(source.translate(model_inputs)))
            inputs = np.asarray(picture(model_inputs))
            for k, (inp, out, tgt) in enumerate(zip(inputs, outputs, targets)):
                pair = pairs[start + k]
                row = {"id": pair.id, "input": pair.input_path, "target": pair.target_path, **_pair_row(inp, out, tgt)}
                landmark = _landmark_row(scorer, pair, out)
                row["landmark_miou"] = landmark.miou if landmark else None
                row["landmark_detected"] = landmark.detected if landmark else None
                if landmark:
                    landmark_results.append(landmark)
                all_targets.append(tgt)
                row.update(_region_row(inp, out, tgt, load_region(pair, size)))
                ident = pair_identity(model, inp, out, tgt) if model is not None else None
                row.update({"identity_output_target": ident.output_target if ident else None,
                            "identity_output_input": ident.output_input if ident else None,
                            "baseline_identity": ident.input_target if ident else None,
                            "identity_crop": ident.crop if ident else ""})
                rows.append(row)
                if len(examples) < max_examples:
                    examples.append((inp, out, tgt))
                if distribution and len(kept) < DISTRIBUTION_MAX_PAIRS:
                    kept.append((inp, out, tgt))
            bar.update(len(batch))
    if scorer is not None:
        scorer.close()

    col = lambda key: [r[key] for r in rows]  # noqa: E731
    summary = {
        "n": len(rows),
        "checkpoint": source.checkpoint,
        "model": source.description,
        "data": data_description,
        "image_size": size,
        "inference_mode": source.cfg.model.inference_mode,
        **{key: stat(col(name)) for name in PAIR_METRICS for key, stat in ((name, _mean), (f"{name}_std", _std))},
        "identity_cosine": _mean(col("identity_output_target")),
        "identity_cosine_std": _std(col("identity_output_target")),
        "identity_cosine_input": _mean(col("identity_output_input")),
        **{f"baseline_{name}": _mean(col(f"baseline_{name}")) for name in PAIR_METRICS},
        "baseline_identity_cosine": _mean(col("baseline_identity")),
        "n_face_region": sum(r["face_psnr"] is not None for r in rows),
        **{key: _mean(col(key)) for key in REGION_KEYS},
        "identity_model": identity_description,
        "identity_crops": {kind: sum(r["identity_crop"] == kind for r in rows) for kind in ("landmarks", "whole")}
        if model is not None else {},
    }
    summary.update(mean_face_floor(source, all_targets))
    if landmark_results:
        from reface_tf.metrics.landmark_miou import summarize

        summary.update(summarize(landmark_results))
    if distribution and len(kept) >= 2:
        inputs, outputs, targets = (np.stack([k[i] for k in kept]) for i in range(3))
        summary.update(distribution_scores(outputs, inputs, targets))
    log.info("evaluated %d pairs: PSNR %.2f dB, SSIM %.4f (baseline %.2f dB, %.4f)", len(rows), summary["psnr"],
             summary["ssim"], summary["baseline_psnr"], summary["baseline_ssim"])
    return EvalResult(rows, summary, examples)


def default_out_dir(source: ModelSource) -> Path:
    if source.run_dir is not None and source.checkpoint.startswith("ckpt-"):
        return source.run_dir / "eval" / source.checkpoint
    return Path("eval") / source.checkpoint
