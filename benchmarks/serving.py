"""Serving speed of the exported Pix2Pix generator, variant by variant, each behind the same quality gate.

Variants, all made from the SAME weights (a trained run's with ``--run-dir``, else a seeded random init, which
times the same arithmetic but makes the quality numbers meaningless, and the result says so):

* ``savedmodel_fp32`` / ``savedmodel_bf16`` — what ``export.py`` and ``export.py --precision bf16`` write
  (``reface_tf.serve.export.export_saved_model``), loaded back and called through ``float_tensor``;
* ``tflite_fp32`` — the ``model.tflite`` that ``export.py --tflite`` writes (frozen float32), run by
  ``tf.lite.Interpreter`` with the XNNPACK delegate and one thread per core;
* ``tflite_fp16`` — the same with float16 weights (``supported_types=[float16]``; XNNPACK computes in fp32);
* ``tflite_int8_dynamic`` — dynamic-range quantisation (int8 weights, activations quantised per call);
* ``tflite_int8_full`` — full-integer quantisation calibrated on ``--calibration`` aligned faces (float in/out).

Each is timed at batch 1 (median and p95 over ``--repeats`` calls after warm-up) and at batch 8 (images/s; a
TFLite model has a fixed batch, so batch 8 is eight invokes), and compared with ``savedmodel_fp32`` on every
demo face (the aligned A/ photos of the procedure demo, video frames included): the 99th percentile and maximum of
the absolute difference in grey levels and the PSNR. Accepted = p99 ≤ 3 grey levels and PSNR ≥ 40 dB.

The TF tutorial's generator (batch norm, ``training=True``) is timed in the same process as the yardstick:
ratios to it stay comparable across machines and loads, milliseconds do not.

    python -m benchmarks.serving --run-dir bench_runs/quality/procedure/default-seed0 --repeats 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TFLITE_VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_int8_dynamic", "tflite_int8_full")
VARIANTS = ("savedmodel_fp32", "savedmodel_bf16", *TFLITE_VARIANTS)
GATE_P99_GREY, GATE_PSNR_DB = 3.0, 40.0


def _timings(call_one, call_eight, repeats: int) -> dict:
    for _ in range(3):  # warm-up: tracing, oneDNN/XNNPACK primitive caches
        call_one()
    call_eight()
    lat = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call_one()
        lat.append(time.perf_counter() - t0)
    thr = []
    for _ in range(max(3, repeats // 10)):
        t0 = time.perf_counter()
        call_eight()
        thr.append(time.perf_counter() - t0)
    lat_ms = sorted(1000 * t for t in lat)
    return {"latency_b1_median_ms": round(statistics.median(lat_ms), 2),
            "latency_b1_p95_ms": round(lat_ms[int(round(0.95 * (len(lat_ms) - 1)))], 2),
            "throughput_b8_img_per_s": round(8 / statistics.median(thr), 2)}


def _gate(out: np.ndarray, ref: np.ndarray) -> dict:
    """Grey-level agreement of [-1, 1] outputs, as the uint8 images a user sees (float64 arithmetic)."""
    a = np.clip(np.round((out.astype(np.float64) + 1.0) * 127.5), 0, 255)
    b = np.clip(np.round((ref.astype(np.float64) + 1.0) * 127.5), 0, 255)
    diff = np.abs(a - b)
    mse = float(np.mean(diff ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
    p99 = float(np.percentile(diff, 99))
    return {"p99_abs_diff_grey": round(p99, 2), "max_abs_diff_grey": int(diff.max()),
            "psnr_vs_fp32_db": round(psnr, 2) if np.isfinite(psnr) else "inf",
            "accepted": bool(p99 <= GATE_P99_GREY and psnr >= GATE_PSNR_DB)}


def _tflite_blob(generator, size: int, variant: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([1, size, size, 3], tf.float32, name="images")
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda x: tf.cast(generator(x, training=False), tf.float32)).get_concrete_function(spec))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if variant != "tflite_fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "tflite_fp16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "tflite_int8_full":
        converter.representative_dataset = lambda: ([face[None]] for face in calibration)
    return converter.convert()


def _tflite_runner(blob: bytes):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=blob, num_threads=os.cpu_count())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        outs = []
        for image in x:  # the model's batch is fixed at 1
            interpreter.set_tensor(inp, image[None])
            interpreter.invoke()
            outs.append(interpreter.get_tensor(out)[0].copy())
        return np.stack(outs)

    return run


def _demo_faces(size: int) -> np.ndarray:
    from PIL import Image

    from reface_tf.samples import demo_faces

    paths = sorted(Path(demo_faces()).glob("*.png"))
    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)) for p in paths]
    return np.stack(images).astype(np.float32) / 127.5 - 1.0


def _tutorial_forward_ms(cfg, repeats: int) -> float:
    """The TF pix2pix tutorial's generator (batch norm, called with training=True) at batch 1, fp32 graph."""
    import tensorflow as tf

    from reface_tf.models import generator_from_config

    tutorial = generator_from_config(cfg.replace(model={"norm": "batch"}))
    fn = tf.function(lambda x: tutorial(x, training=True))
    x = tf.constant(np.zeros((1, cfg.data.image_size, cfg.data.image_size, 3), np.float32))
    return _timings(lambda: fn(x).numpy(), lambda: fn(x).numpy(), repeats)["latency_b1_median_ms"]


def measure(run_dir: str | None, variants: list[str], repeats: int, calibration_count: int) -> dict:
    import tensorflow as tf

    from benchmarks.inference import _build_generator
    from reface_tf.config import Config
    from reface_tf.models import generator_from_config
    from reface_tf.serve.export import export_saved_model
    from reface_tf.serve.precision import EXPORT_POLICIES, with_bfloat16_kernels

    if run_dir:
        from reface_tf.tasks.pix2pix.task import load_generator

        generator, cfg, checkpoint = load_generator(run_dir)
    else:
        cfg, checkpoint = Config(), None
        tf.keras.utils.set_random_seed(0)
        generator = generator_from_config(cfg)
    size = cfg.data.image_size
    faces = _demo_faces(size)
    calibration = faces[:calibration_count]
    result: dict = {"run_dir": run_dir, "checkpoint": checkpoint, "weights": "trained" if run_dir else "random init",
                    "image_size": size, "depth": cfg.model.generator_depth, "norm": cfg.model.norm,
                    "gate_faces": int(len(faces)), "calibration_faces": int(len(calibration)),
                    "gate": f"p99 <= {GATE_P99_GREY} grey levels and PSNR >= {GATE_PSNR_DB} dB vs savedmodel_fp32",
                    "threads": os.cpu_count(), "variants": {}}
    one, eight = faces[:1], faces[:8]
    reference = None
    with tempfile.TemporaryDirectory(prefix="reface_serving_") as tmp:
        for variant in ["savedmodel_fp32", *[v for v in variants if v != "savedmodel_fp32"]]:
            print(f"serving: {variant} ...", file=sys.stderr, flush=True)
            try:
                if variant.startswith("savedmodel"):
                    model = generator
                    if variant == "savedmodel_bf16":  # exactly what export.py --precision bf16 builds
                        model = _build_generator(cfg, EXPORT_POLICIES["bf16"])
                        model.set_weights(generator.get_weights())
                        model = with_bfloat16_kernels(model)
                    version = export_saved_model(model, cfg, Path(tmp) / variant)
                    fn = tf.saved_model.load(str(version)).signatures["float_tensor"]

                    def run(x, fn=fn):
                        return fn(images=tf.constant(x))["images"].numpy()
                else:
                    blob = _tflite_blob(generator, size, variant, calibration)
                    run = _tflite_runner(blob)
                entry = _timings(lambda: run(one), lambda: run(eight), repeats)
                outputs = np.concatenate([run(faces[i:i + 8]) for i in range(0, len(faces), 8)])
                if reference is None:
                    reference = outputs
                entry.update(_gate(outputs, reference))
                if variant.startswith("tflite"):
                    entry["file_mib"] = round(len(blob) / 2 ** 20, 1)
                result["variants"][variant] = entry
            except Exception as err:  # one variant failing to convert must not lose the others' numbers
                result["variants"][variant] = {"error": f"{type(err).__name__}: {str(err).strip()[:300]}"}
    result["tutorial_forward_b1_ms"] = _tutorial_forward_ms(cfg, repeats)
    for entry in result["variants"].values():
        if "latency_b1_median_ms" in entry:
            entry["ratio_to_tutorial"] = round(entry["latency_b1_median_ms"] / result["tutorial_forward_b1_ms"], 3)
    accepted = {k: v for k, v in result["variants"].items() if v.get("accepted")}
    result["fastest_accepted"] = min(accepted, key=lambda k: accepted[k]["latency_b1_median_ms"]) if accepted else None
    return result


def markdown(result: dict) -> str:
    rows = ["| variant | b1 median ms | b1 p95 ms | ratio to tutorial | b8 img/s | p99 / max grey | PSNR vs fp32 | "
            "accepted |", "|---|---|---|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        if "error" in v:
            rows.append(f"| {name} | error: {v['error']} |||||||")
            continue
        rows.append(f"| {name} | {v['latency_b1_median_ms']} | {v['latency_b1_p95_ms']} | {v['ratio_to_tutorial']} | "
                    f"{v['throughput_b8_img_per_s']} | {v['p99_abs_diff_grey']} / {v['max_abs_diff_grey']} | "
                    f"{v['psnr_vs_fp32_db']} | {'yes' if v['accepted'] else 'no'} |")
    rows.append(f"\nTF tutorial generator forward (batch 1, same process): {result['tutorial_forward_b1_ms']} ms; "
                f"fastest accepted: {result['fastest_accepted']}; weights: {result['weights']}; "
                f"load average before/after: {result.get('loadavg_before')} / {result.get('loadavg_after')}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="a trained Pix2Pix run whose generator is exported (default: random init)")
    parser.add_argument("--repeats", type=int, default=60, help="batch-1 calls timed per variant (at least 50)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--calibration", type=int, default=16, help="faces that calibrate full-integer quantisation")
    parser.add_argument("--no-save", action="store_true", help="print only; write no results file")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    before = [round(x, 2) for x in os.getloadavg()]
    result = measure(args.run_dir, args.variants, args.repeats, args.calibration)
    result.update(started=started.isoformat(timespec="seconds"), loadavg_before=before,
                  loadavg_after=[round(x, 2) for x in os.getloadavg()], command=" ".join(sys.argv))
    print(markdown(result))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{started.strftime('%Y-%m-%dT%H%MZ')}-serving.json"
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        print(f"\nresults: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
