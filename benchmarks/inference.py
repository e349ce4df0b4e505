"""Latency and throughput of an exported generator SavedModel (uint8 image in, uint8 image out).

Variants, all exported from the SAME weights and loaded back with ``tf.saved_model.load`` before timing:

* ``fp32``      — float32 graph;
* ``fp32_xla``  — float32, serving function compiled with XLA (``jit_compile=True``);
* ``bf16``      — what ``export.py --precision bf16`` writes: the generator under the ``mixed_bfloat16`` policy
  with its convolution kernels stored in bfloat16 (``reface_tf.serve.precision.with_bfloat16_kernels``);
* ``bf16_xla``  — both.

Accuracy of each variant is the maximum absolute difference of its uint8 output from the float32 export's,
in grey levels (0–255), on realistic face images.

Exporter: ``reface_tf.serve.export.export_saved_model`` (its uint8 ``serving_default`` signature) when present;
it has no XLA option, so the XLA variants (and every variant without it) are ``tf.saved_model.save`` of a
``tf.function`` with a ``uint8[None, H, W, 3]`` signature. Each variant's result says which.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("fp32", "fp32_xla", "bf16", "bf16_xla")


def run_worker(config_path: str | None, repeats: int, env: dict[str, str] | None = None, timeout: float = 1800) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.inference", "--repeats", str(repeats)]
    if config_path:
        cmd += ["--config", config_path]
    child_env = dict(os.environ)
    child_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    child_env.update(env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"inference worker failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])


def _build_generator(cfg, policy: str):
    import keras

    from reface_tf.models import generator_from_config

    keras.mixed_precision.set_global_policy(policy)
    try:
        return generator_from_config(cfg)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _save_uint8_model(generator, path: Path, size: int, channels: int, training_flag: bool, jit: bool) -> None:
    """Fallback exporter: uint8 [N, H, W, C] -> uint8 [N, H, W, 3], rounding like ``to_uint8``."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, channels], tf.uint8, name="image")],
                 jit_compile=jit or None)
    def serve(image):
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        y = tf.cast(generator(x, training=training_flag), tf.float32)
        return {"image": tf.cast(tf.clip_by_value(tf.round((y + 1.0) * 127.5), 0.0, 255.0), tf.uint8)}

    module = tf.Module()
    module.generator = generator
    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def _face_batch(size: int, count: int):
    """Realistic inputs for the accuracy check: synthetic faces (no download needed)."""
    import numpy as np

    from reface_tf.data.synthetic import draw_face

    rng = np.random.default_rng(0)
    return np.stack([draw_face(rng, size, after=False)[0] for _ in range(count)])


def _worker(args: argparse.Namespace) -> dict:
    from reface_tf.config import Config, load_yaml

    cfg = load_yaml(args.config) if args.config else Config()
    import numpy as np
    import tensorflow as tf

    from reface_tf.models import inference_training_flag
    from reface_tf.serve.precision import with_bfloat16_kernels

    size, channels = cfg.data.image_size, cfg.data.input_channels
    training_flag = inference_training_flag(cfg)
    tf.keras.utils.set_random_seed(0)
    reference = _build_generator(cfg, "float32")
    weights = reference.get_weights()

    try:  # the project's exporter, when present (it has no XLA option, so the XLA variants use the fallback)
        from reface_tf.serve.export import export_saved_model
    except ImportError:
        export_saved_model = None

    faces = _face_batch(size, 8)
    results: dict[str, dict] = {}
    outputs: dict[str, np.ndarray] = {}
    exporters: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reface_bench_export_") as tmp:
        for variant in args.variants:
            policy = "mixed_bfloat16" if variant.startswith("bf16") else "float32"
            generator = reference if policy == "float32" else _build_generator(cfg, policy)
            if generator is not reference:
                generator.set_weights(weights)
                generator = with_bfloat16_kernels(generator)
            path = Path(tmp) / variant
            if export_saved_model is not None and not variant.endswith("xla"):
                path = export_saved_model(generator, cfg, path)
                exporters[variant] = "reface_tf.serve.export.export_saved_model"
            else:
                _save_uint8_model(generator, path, size, channels, training_flag, jit=variant.endswith("xla"))
                exporters[variant] = "tf.saved_model.save of a uint8 tf.function" + (" (jit_compile)" if variant.endswith("xla") else "")
            loaded = tf.saved_model.load(str(path))
            fn = loaded.signatures["serving_default"]
            arg = list(fn.structured_input_signature[1])[0]
            key = list(fn.structured_outputs)[0]

            def call(x):
                return fn(**{arg: tf.constant(x)})[key].numpy()

            one, eight = faces[:1], faces
            for _ in range(3):  # warm-up: tracing, XLA compilation, oneDNN primitive caches
                call(one)
                call(eight)
            lat = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                call(one)
                lat.append(time.perf_counter() - t0)
            thr = []
            for _ in range(max(3, args.repeats // 5)):
                t0 = time.perf_counter()
                call(eight)
                thr.append(time.perf_counter() - t0)
            outputs[variant] = call(eight)
            results[variant] = {
                "exporter": exporters[variant],
                "latency_b1_median_ms": round(1000 * statistics.median(lat), 2),
                "latency_b1_p90_ms": round(1000 * sorted(lat)[int(0.9 * (len(lat) - 1))], 2),
                "throughput_b8_img_per_s": round(8 / statistics.median(thr), 2),
            }
    base = outputs.get("fp32")
    for variant, out in outputs.items():
        if base is not None:
            diff = np.abs(out.astype(np.int16) - base.astype(np.int16))
            results[variant]["max_abs_diff_vs_fp32"] = int(diff.max())
            results[variant]["mean_abs_diff_vs_fp32"] = round(float(diff.mean()), 3)
    exporter = "; ".join(sorted(set(exporters.values())))
    return {"exporter": exporter, "image_size": size, "norm": cfg.model.norm, "depth": cfg.model.generator_depth,
            "training_flag": training_flag, "variants": results,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)
    print(json.dumps(_worker(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
