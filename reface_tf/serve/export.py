"""Export a trained generator as a SavedModel in TF Serving's layout (``<base>/<version>/``).

Signatures (all use ``inference_training_flag(cfg)``, so exported outputs match evaluation):

* ``serving_default``: ``images`` uint8 ``[N, H, W, 3]`` aligned faces at the model size → ``images`` uint8
  ``[N, H, W, C]``. Any other H, W fails with a message naming the expected size.
* ``image_bytes``: ``image_bytes`` tf.string ``[N]`` (JPEG/PNG; TF Serving's REST API takes them as
  ``{"b64": ...}``) → ``png_bytes`` tf.string ``[N]``; each image is resized to the model size, translated and
  resized back to its own size.
* ``float_tensor``: float32 ``[N, H, W, 3]`` in [-1, 1] → float32 in [-1, 1], the generator's raw output
  (for exact comparisons and for clients that do their own quantisation).

Each version is built in a temporary folder and renamed into place, so TF Serving (which only loads
folders named by an integer) never sees a half-written model and an existing version is never overwritten.
``reface_meta.json`` inside the version folder records the image size, channels and the full config, the
``alignment`` the training data was prepared with (the run's ``alignment.json``, or null; ``predict.py`` aligns
new photos with it) and the ``provenance`` (source commit, library versions, fingerprint of the run's split;
see :mod:`reface_tf.provenance`), plus whatever the caller passes as ``extra_meta``. Exports written before
those keys existed load as before (``ExportedModel.alignment`` is then None).

Example::

    generator, cfg, ckpt = load_generator("runs/reface")
    version_dir = export_saved_model(generator, cfg, "export/reface", checkpoint=ckpt)
    model = load_exported(version_dir)
    after = model.translate_uint8(before_uint8)  # [N, 256, 256, 3] uint8
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from reface_tf.config import Config, from_dict
from reface_tf.errors import ModelError
from reface_tf.faces.alignment_settings import AlignmentSettings, read_alignment
from reface_tf.models import inference_training_flag
from reface_tf.serve.archive import META_FILE, META_FORMAT, next_version, write_versioned_export  # noqa: F401 (re-exported)
from reface_tf.serve.precision import compute_dtype, weights_dtypes

log = logging.getLogger(__name__)

SIGNATURES = ("serving_default", "image_bytes", "float_tensor")
# Keys of reface_meta.json that extra_meta may not replace: loading and predict depend on them.
RESERVED_META = frozenset({"format", "image_size", "config", "checkpoint", "alignment", "provenance"})


def _to_uint8_tf(x: tf.Tensor) -> tf.Tensor:
    # tf.round rounds half to even like np.rint in reface_tf.data.pipeline.to_uint8, so both paths agree.
    return tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


class GeneratorExport(tf.Module):
    """The generator wrapped with the serving signatures; exists only to be saved."""

    def __init__(self, generator: tf.keras.Model, cfg: Config):
        super().__init__(name="reface_generator")
        self.generator = generator
        self._training = inference_training_flag(cfg)
        self._size = int(cfg.data.image_size)
        self._gray_input = cfg.data.input_channels == 1

        size = self._size
        self.serve_uint8 = tf.function(self._serve_uint8, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
        self.serve_float = tf.function(self._serve_float, input_signature=[
            tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
        self.serve_bytes = tf.function(self._serve_bytes, input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes")])

    def _check_size(self, images: tf.Tensor) -> tf.Tensor:
        size = self._size
        shape = tf.shape(images)
        message = (f"input images must be {size}x{size} (height x width), the size this model was trained at; "
                   f"align and resize faces first, or use the image_bytes signature which resizes")
        with tf.control_dependencies([
                tf.debugging.assert_equal(shape[1:3], tf.constant([size, size]), message=message, summarize=4)]):
            images = tf.identity(images)
        return tf.ensure_shape(images, [None, size, size, 3])

    def _generate(self, x: tf.Tensor) -> tf.Tensor:
        if self._gray_input:
            x = tf.image.rgb_to_grayscale(x)
        return tf.cast(self.generator(x, training=self._training), tf.float32)

    def _serve_float(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"images": self._generate(images)}

    def _serve_uint8(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        images = self._check_size(images)
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        return {"images": _to_uint8_tf(self._generate(x))}

    def _serve_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        size = self._size

        def one(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            hw = tf.shape(image)[:2]
            # Antialiased resizing averages when shrinking, as the training pipeline does with INTER_AREA.
            x = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
            x = tf.clip_by_value(x, 0.0, 255.0) / 127.5 - 1.0
            y = self._generate(x[tf.newaxis])[0]
            y = tf.image.resize(y, hw, antialias=True)
            return tf.io.encode_png(_to_uint8_tf(y))

        return {"png_bytes": tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))}


def model_meta(cfg: Config, checkpoint: str | None) -> dict[str, Any]:
    return {
        "format": META_FORMAT,
        "image_size": int(cfg.data.image_size),
        "input_channels": 3,  # the signatures always take RGB; grayscale models convert inside
        "model_input_channels": int(cfg.data.input_channels),
        "output_channels": 3,
        "inference_mode": cfg.model.inference_mode,
        "signatures": list(SIGNATURES),
        "checkpoint": checkpoint,
        "config": cfg.to_dict(),
    }


def checkpoint_run_dir(checkpoint: str | os.PathLike | None) -> Path | None:
    """The run directory of ``RUN/checkpoints/ckpt-N`` (None without a checkpoint or for a bare name)."""
    if not checkpoint or len(Path(checkpoint).parents) < 2:
        return None
    return Path(checkpoint).parents[1]


def export_saved_model(generator: tf.keras.Model, cfg: Config, base: str | os.PathLike, checkpoint: str | None = None,
                       tflite: bool = False, extra_meta: dict[str, Any] | None = None,
                       run_dir: str | os.PathLike | None = None) -> Path:
    """Write the next version under ``base`` and return its folder.

    ``run_dir`` (default: the run of ``checkpoint``) gives the ``alignment`` (its ``alignment.json``) and the
    split fingerprint of ``reface_meta.json``; ``extra_meta`` is merged in last (JSON values; it may not replace
    :data:`RESERVED_META`). A malformed ``alignment.json`` is a DataError before anything is written.
    """
    from reface_tf.provenance import provenance

    base = Path(base)
    if base.exists() and not base.is_dir():  # before the model is traced
        raise ModelError(f"--out: {base} is a file; pass a folder (versions are written as {base}/<n>/)")
    extra_meta = dict(extra_meta or {})
    clash = sorted(RESERVED_META & set(extra_meta))
    if clash:
        raise ValueError(f"extra_meta may not replace {', '.join(clash)}")
    json.dumps(extra_meta)  # TypeError now, not after the SavedModel is written
    run_dir = Path(run_dir) if run_dir is not None else checkpoint_run_dir(checkpoint)
    alignment = read_alignment(run_dir) if run_dir is not None and run_dir.is_dir() else None
    origin = provenance(run_dir if run_dir is not None and run_dir.is_dir() else None)
    module = GeneratorExport(generator, cfg)
    meta = {**model_meta(cfg, checkpoint), "compute_dtype": compute_dtype(generator),
            "weights_dtypes": weights_dtypes(generator),
            "alignment": alignment.to_dict() if alignment is not None else None,
            "provenance": origin, **extra_meta}
    endpoints = {"serving_default": module.serve_uint8, "image_bytes": module.serve_bytes,
                 "float_tensor": module.serve_float}
    version_dir = write_versioned_export(endpoints, meta, base,
                                         extra=(lambda folder: _write_tflite(module, folder / "model.tflite")) if tflite else None)
    log.info("exported %s to %s", checkpoint or "generator", version_dir)
    return version_dir


def _write_tflite(module: GeneratorExport, path: Path) -> None:
    """A float32 TFLite model ([1, H, W, 3] in [-1, 1] → [-1, 1]), for on-device use, checked before it is kept.

    The graph is frozen first: handed the module's function directly, the converter keeps Keras 3's weights as
    resource variables (VAR_HANDLE ops) that nothing in the .tflite file initialises, and the interpreter then
    returns NaN for every pixel. The written model is run once on a fixed input and must agree with the
    SavedModel's float signature, so a broken conversion fails the export instead of reaching a device."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    size = module._size
    spec = tf.TensorSpec([1, size, size, 3], tf.float32, name="images")
    frozen = convert_variables_to_constants_v2(tf.function(module._generate).get_concrete_function(spec))
    blob = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    probe = np.random.default_rng(0).uniform(-1.0, 1.0, (1, size, size, 3)).astype(np.float32)
    interpreter = tf.lite.Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], probe)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = module._generate(tf.constant(probe)).numpy()
    gap = float(np.max(np.abs(got - want))) if np.all(np.isfinite(got)) else float("inf")
    if gap > TFLITE_TOLERANCE:
        raise ModelError(f"the TFLite conversion differs from the SavedModel by {gap:.3g} (tolerance "
                         f"{TFLITE_TOLERANCE}); export without --tflite and report this TensorFlow version")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    log.info("wrote %s (max difference from the SavedModel %.2g)", path, gap)


# float32 in both runtimes; the kernels sum in different orders (measured 4e-7 on a 64 px U-Net)
TFLITE_TOLERANCE = 1e-3


def export_onnx(version_dir: Path) -> Path | None:
    """Convert the float signature to ONNX with tf2onnx if it is installed; None (and a log line) otherwise."""
    if importlib.util.find_spec("tf2onnx") is None:
        return None
    out = version_dir / "model.onnx"
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(version_dir), "--signature_def", "float_tensor",
           "--output", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"ONNX conversion failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return out


# ---------------------------------------------------------------------------------------------- loading


@dataclass
class ExportedModel:
    """A loaded export: its folder, metadata and callable signatures."""

    path: Path
    meta: dict[str, Any]
    loaded: Any

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def config(self) -> Config:
        return from_dict(self.meta["config"], source=str(self.path / META_FILE))

    @property
    def alignment(self) -> AlignmentSettings | None:
        """How the training data was aligned (None for a run without ``alignment.json`` or an older export)."""
        return alignment_from_meta(self.meta, self.path / META_FILE)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    def translate_uint8(self, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` at the model size → uint8 outputs, in batches."""
        images = np.asarray(images)
        size = self.image_size
        if images.ndim != 4 or images.shape[1:3] != (size, size) or images.shape[3] != 3:
            raise ModelError(f"{self.path}: expects uint8 images of shape [N, {size}, {size}, 3], got {list(images.shape)}")
        fn = self.loaded.signatures["serving_default"]
        outs = [fn(images=tf.constant(images[i:i + batch_size], tf.uint8))["images"].numpy()
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, size, size, 3), np.uint8)

    def translate_float(self, images: np.ndarray) -> np.ndarray:
        fn = self.loaded.signatures["float_tensor"]
        return fn(images=tf.constant(images, tf.float32))["images"].numpy()


def alignment_from_meta(meta: dict[str, Any], source: str | os.PathLike) -> AlignmentSettings | None:
    """The ``alignment`` entry of an export's metadata; None when null or absent (exports made before it)."""
    data = meta.get("alignment")
    return None if data is None else AlignmentSettings.from_dict(data, f"{source} (alignment)")


def export_alignment(path: str | os.PathLike) -> tuple[AlignmentSettings | None, Path]:
    """(alignment, metadata file) of an export, read without loading the SavedModel."""
    meta, meta_path = read_meta(resolve_version_dir(path))
    return alignment_from_meta(meta, meta_path), meta_path


def resolve_version_dir(path: str | os.PathLike) -> Path:
    """A version folder as given, or the highest version under a base folder."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"--model: {path} does not exist; pass a folder written by export.py (e.g. export/reface/1)")
    if not path.is_dir():
        raise ModelError(f"--model: {path} is a file; pass the SavedModel folder written by export.py")
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
    for version in versions:
        if (path / str(version) / "saved_model.pb").is_file():
            return path / str(version)
    raise ModelError(f"--model: {path} holds no saved_model.pb (nor numbered versions with one); "
                     "pass a folder written by export.py")


def read_meta(version_dir: Path) -> tuple[dict[str, Any], Path]:
    """(metadata, its path) of a version folder; ModelError if it is missing or not a generator export's."""
    meta_path = version_dir / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"--model: {version_dir} is a SavedModel but not a ReFace-TF generator export "
                         f"({META_FILE} missing); export one with python export.py --run-dir RUN")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != META_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelError(f"--model: {meta_path} is unreadable or of another format ({err})") from None
    return meta, meta_path


def load_exported(path: str | os.PathLike) -> ExportedModel:
    """Load and check an export; ModelError if it is missing, corrupt or not a ReFace generator export."""
    version_dir = resolve_version_dir(path)
    meta, meta_path = read_meta(version_dir)
    if not isinstance(meta.get("image_size"), int):
        raise ModelError(f"--model: {meta_path} records no image size: an export of task {meta.get('task')!r}, which "
                         "does not translate images" + ("; draw from it with sample.py" if "sample" in meta.get("signatures", []) else ""))
    alignment_from_meta(meta, meta_path)  # a malformed entry fails here, before the SavedModel is loaded
    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as err:  # TF raises a zoo of types for a damaged SavedModel; all mean the same here
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ModelError(f"--model: cannot load the SavedModel in {version_dir} ({type(err).__name__}: {first}); "
                         "it is corrupt or incomplete, export it again") from None
    missing = [s for s in SIGNATURES if s not in loaded.signatures]
    if missing:
        raise ModelError(f"--model: {version_dir} lacks the signature(s) {', '.join(missing)}; "
                         "it is not a ReFace-TF generator export")
    log.info("loaded exported model %s (%dx%d)", version_dir, meta["image_size"], meta["image_size"])
    return ExportedModel(version_dir, meta, loaded)
