import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.data.pipeline import to_uint8
from reface_tf.errors import ModelError
from reface_tf.commands.export import export_main
from reface_tf.serve.export import META_FILE, export_saved_model, load_exported, next_version

ROOT = Path(__file__).resolve().parents[2]


def faces(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.slow
def test_fresh_process_matches_the_in_memory_generator(exported, tmp_path):
    version_dir, generator, cfg = exported
    x = faces(2).astype(np.float32) / 127.5 - 1.0
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(version_dir)!r})
        x = np.load({str(tmp_path / 'x.npy')!r})
        np.save({str(tmp_path / 'y.npy')!r}, m.signatures["float_tensor"](images=tf.constant(x))["images"].numpy())
        u = ((x + 1) * 127.5).round().astype(np.uint8)
        np.save({str(tmp_path / 'u.npy')!r}, m.signatures["serving_default"](images=tf.constant(u))["images"].numpy())
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    expected = generator(x, training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)
    u8 = np.load(tmp_path / "u.npy")
    assert u8.dtype == np.uint8 and u8.shape == (2, 64, 64, 3)
    # the uint8 signature quantises the same output; a float32 half-way tie may round either way
    assert np.abs(u8.astype(int) - to_uint8(expected).astype(int)).max() <= 1


def _variables_bytes(version_dir: Path) -> int:
    return sum(f.stat().st_size for f in (version_dir / "variables").glob("variables.data-*"))


def test_each_weight_is_saved_once(exported):
    version_dir, generator, _ = exported
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in generator.weights)
    assert weight_bytes <= _variables_bytes(version_dir) < 1.05 * weight_bytes


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures_and_runs_it(exported, tmp_path):
    version_dir, generator, _ = exported
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(["saved_model_cli", "show", "--dir", str(version_dir), "--all"], capture_output=True,
                         text=True, check=True, env=env).stdout
    assert "signature_def['serving_default']" in out and "signature_def['image_bytes']" in out
    assert "DT_UINT8" in out and "DT_STRING" in out
    # `run` restores through the TF1 loader that TF Serving uses: every variable must be found there
    x = faces(1, seed=3)
    np.save(tmp_path / "x.npy", x)
    subprocess.run(["saved_model_cli", "run", "--dir", str(version_dir), "--tag_set", "serve", "--signature_def",
                    "serving_default", "--inputs", f"images={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "o")],
                   capture_output=True, text=True, check=True, env=env)
    expected = to_uint8(generator(x.astype(np.float32) / 127.5 - 1.0, training=False).numpy())
    assert np.abs(np.load(tmp_path / "o" / "images.npy").astype(int) - expected.astype(int)).max() <= 1


def test_wrong_size_input_gives_a_clear_error(exported):
    model = load_exported(exported[0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be 64x64"):
        model.loaded.signatures["serving_default"](images=tf.constant(faces(1, size=48)))
    with pytest.raises(ModelError, match=r"\[N, 64, 64, 3\]"):
        model.translate_uint8(faces(1, size=48))


def test_image_bytes_returns_png_of_the_original_size(exported):
    model = load_exported(exported[0])
    encoded = []
    for fmt, (w, h) in (("PNG", (100, 80)), ("JPEG", (64, 64)), ("PNG", (64, 64))):
        buf = io.BytesIO()
        Image.fromarray(faces(1, size=max(w, h))[0][:h, :w]).save(buf, format=fmt)
        encoded.append(buf.getvalue())
    out = model.loaded.signatures["image_bytes"](image_bytes=tf.constant(encoded))["png_bytes"].numpy()
    sizes = [Image.open(io.BytesIO(b)).size for b in out]
    assert [Image.open(io.BytesIO(b)).format for b in out] == ["PNG", "PNG", "PNG"]
    assert sizes == [(100, 80), (64, 64), (64, 64)]
    # a model-sized PNG goes through unresized: same pixels as the tensor signature (a JPEG would not compare:
    # PIL's and TensorFlow's JPEG decoders round the inverse DCT differently)
    direct = model.translate_uint8(np.asarray(Image.open(io.BytesIO(encoded[2])).convert("RGB"))[None])[0]
    via_bytes = np.asarray(Image.open(io.BytesIO(out[2])))
    assert np.abs(direct.astype(int) - via_bytes.astype(int)).max() <= 1


def test_versions_are_numbered_and_never_overwritten(trained_run, tmp_path, capsys):
    base = tmp_path / "reface"
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--out", str(base), "--onnx"]) == 0
    first = (base / "1" / "saved_model.pb").read_bytes()
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--out", str(base)]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # no temporary folder left behind
    assert (base / "1" / "saved_model.pb").read_bytes() == first
    assert next_version(base) == 3
    meta = json.loads((base / "2" / META_FILE).read_text())
    assert meta["image_size"] == 64 and meta["config"]["model"]["generator_depth"] == 6
    # What the export is, read by predict.py, sample.py and the app: the synthetic pairs' README says SIMULATED.
    assert (meta["task"], meta["input_domain"], meta["simulated"], meta["class_names"]) == ("pix2pix", "photo", True, None)
    assert meta["signatures"] == ["serving_default", "image_bytes", "float_tensor"]
    from reface_tf.commands.sample import sample_main
    from reface_tf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"this export \(task pix2pix\) has no generate or sample signature; it translates images: "
                                          r"use predict.py"):
        sample_main(["--model", str(base / "2")])
    out = capsys.readouterr().out
    onnx_file = base / "1" / "model.onnx"
    if importlib.util.find_spec("tf2onnx") is None:
        # Without tf2onnx: no file, and the line says why and how to get it.
        assert not onnx_file.exists()
        assert "onnx: unavailable (tf2onnx is not installed: pip install tf2onnx)" in out
    else:
        # With tf2onnx: the file is written, non-empty, reported, and a valid ONNX graph.
        assert onnx_file.is_file() and onnx_file.stat().st_size > 0
        assert f"onnx: {onnx_file}" in out
        onnx = pytest.importorskip("onnx")
        onnx.checker.check_model(onnx.load(str(onnx_file)))
    assert not (base / "2" / "model.onnx").exists()  # only written with --onnx


def test_missing_run_and_corrupt_checkpoint_are_one_line_errors(trained_run, tmp_path, capsys):
    assert run_cli(export_main, ["--run-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "config.yaml not found" in capsys.readouterr().err
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--checkpoint", "999999", "--out", str(tmp_path / "x")]) == 2
    assert "not found; available" in capsys.readouterr().err
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    for f in (trained_run / "checkpoints").iterdir():
        data = f.read_bytes()
        (broken / "checkpoints" / f.name).write_bytes(data if f.name == "checkpoint" else data[: len(data) // 3])
    assert run_cli(export_main, ["--run-dir", str(broken), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_loading_bad_exports_raises_model_error(exported, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_exported(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no saved_model.pb"):
        load_exported(tmp_path / "empty")
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other" / "1"), signatures=module.f.get_concrete_function())
    with pytest.raises(ModelError, match="not a ReFace-TF generator export"):
        load_exported(tmp_path / "other")
    corrupt = tmp_path / "corrupt"
    os.makedirs(corrupt)
    for item in exported[0].iterdir():
        if item.is_file():
            (corrupt / item.name).write_bytes(item.read_bytes())
    (corrupt / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="corrupt or incomplete"):
        load_exported(corrupt)


def test_export_refuses_a_file_as_base(exported, tmp_path):
    _, generator, cfg = exported
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        export_saved_model(generator, cfg, tmp_path / "file")


@pytest.mark.slow
def test_bfloat16_export_stays_within_a_few_grey_levels(trained_run, tmp_path, capsys):
    base = tmp_path / "reface"
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--out", str(base)]) == 0
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--out", str(base), "--precision", "bf16"]) == 0
    assert "bf16" in capsys.readouterr().out
    fp32, bf16 = load_exported(base / "1"), load_exported(base / "2")
    assert fp32.meta["compute_dtype"] == "float32" and bf16.meta["compute_dtype"] == "bfloat16"
    assert fp32.meta["weights_dtypes"] == ["float32"]
    assert "bfloat16" in bf16.meta["weights_dtypes"]  # kernels stored in bfloat16: no per-call cast
    stored = tf.train.load_checkpoint(str(bf16.path / "variables" / "variables")).get_variable_to_dtype_map()
    assert tf.bfloat16 in stored.values()
    assert _variables_bytes(bf16.path) < 0.6 * _variables_bytes(fp32.path)
    x = faces(4, seed=3)
    a, b = fp32.translate_uint8(x), bf16.translate_uint8(x)
    assert b.dtype == np.uint8 and b.shape == a.shape
    diff = np.abs(a.astype(int) - b.astype(int))
    assert 0 < diff.max() <= 12 and diff.mean() < 2.0  # really computed in bfloat16, and close to float32
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # the policy is restored
    assert run_cli(export_main, ["--run-dir", str(trained_run), "--out", str(base), "--precision", "bf16", "--tflite"]) == 2
    assert "--precision bf16" in capsys.readouterr().err


def _documented_layer_dtypes() -> list[tuple[list[str], str]]:
    """The ``* ``pattern``, ...: dtype`` lines of reface_tf.serve.precision's docstring."""
    import re

    from reface_tf.serve import precision

    rows = []
    for line in precision.__doc__.splitlines():
        match = re.match(r"^\* ((?:``[^`]+``(?:, )?)+): (bfloat16|float32)\b", line)
        if match:
            rows.append((re.findall(r"``([^`]+)``", match.group(1)), match.group(2)))
    return rows


def test_bfloat16_export_layer_dtypes_are_the_documented_ones():
    """Each layer of a bf16 export computes in the dtype reface_tf.serve.precision documents for it; in
    particular the output deconvolution (out_deconv) in bfloat16 and only the final tanh in float32."""
    import fnmatch

    import keras

    from reface_tf.config import Config
    from reface_tf.models import generator_from_config
    from reface_tf.serve.precision import with_bfloat16_kernels

    cfg = Config()
    cfg.data.image_size, cfg.model.generator_depth, cfg.model.generator_filters = 32, 5, 4
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = with_bfloat16_kernels(generator_from_config(cfg))
    finally:
        keras.config.set_dtype_policy(previous)
    documented = _documented_layer_dtypes()
    patterns = {pattern: dtype for names, dtype in documented for pattern in names}
    assert {"out_deconv", "out_tanh"} <= set(patterns), documented
    covered = set()
    for pattern, dtype in patterns.items():
        layers = [layer for layer in model.layers if fnmatch.fnmatchcase(layer.name, pattern)]
        assert layers, f"the docstring names {pattern}, which matches no layer"
        for layer in layers:
            assert layer.compute_dtype == dtype, f"{layer.name} computes in {layer.compute_dtype}, documented {dtype}"
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
                assert layer.kernel.dtype == dtype, f"{layer.name} stores its kernel in {layer.kernel.dtype}"
            covered.add(layer.name)
    convs = {layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))}
    assert convs <= covered  # every convolution is documented
    float32 = {layer.name for layer in model.layers[1:] if layer.compute_dtype == "float32"}
    assert float32 == {pattern for pattern, dtype in patterns.items() if dtype == "float32"} == {"out_tanh"}
    assert model(np.zeros((1, 32, 32, 3), np.float32)).dtype == "float32"


def test_tflite_file_reproduces_the_generator(exported, tmp_path):
    _, generator, cfg = exported
    version_dir = export_saved_model(generator, cfg, tmp_path / "lite", tflite=True)
    interpreter = tf.lite.Interpreter(model_path=str(version_dir / "model.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 64, 64, 3] and inp["dtype"] == np.float32
    x = faces(1, seed=3).astype(np.float32) / 127.5 - 1.0
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    # before the graph was frozen every output pixel was NaN (uninitialised resource variables)
    np.testing.assert_allclose(interpreter.get_tensor(out["index"]), generator(x, training=False).numpy(), atol=1e-4)
    assert not list(version_dir.glob(".*.tmp"))
