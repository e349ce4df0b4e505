"""The app's models, each loaded once per process and shared by every browser session.

Gradio runs handlers in a thread pool, so two requests may ask for the same export at once: :class:`ModelStore`
loads each under a lock and keeps it. MediaPipe's landmarker is not safe to call from two threads, so
:class:`SharedLandmarker` serialises its ``detect``. Each model class wraps one export kind with the plain
numpy calls the tabs need (:mod:`reface_tf.app.actions`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from reface_tf.app.catalog import AGE, FACES, OUTCOME, SEGMAP, SKETCH, ExportEntry, training_root
from reface_tf.errors import ConfigError, ModelError

log = logging.getLogger(__name__)


class SharedLandmarker:
    """One MediaPipe face landmarker for the process, created on first use; ``detect`` holds a lock."""

    def __init__(self, model_path: str | os.PathLike | None = None):
        self.model_path = model_path
        self._lock = threading.Lock()
        self._landmarker = None

    def _get(self):
        if self._landmarker is None:
            from reface_tf.faces.landmarks import FaceLandmarker

            self._landmarker = FaceLandmarker(self.model_path)
        return self._landmarker

    def detect(self, rgb: np.ndarray):
        with self._lock:
            return self._get().detect(rgb)

    @property
    def sha256(self) -> str | None:
        from reface_tf.registry import sha256_of

        with self._lock:
            return sha256_of(self._get().model_path)

    def close(self) -> None:
        with self._lock:
            if self._landmarker is not None:
                self._landmarker.close()
                self._landmarker = None


# ---------------------------------------------------------------------------------------------- model kinds


@dataclass
class TranslatorModel:
    """A Pix2Pix export (photo or sketch inputs): uint8 [N, S, S, 3] -> uint8 [N, S, S, 3]."""

    entry: ExportEntry
    translate: Callable[[np.ndarray], np.ndarray]
    size: int
    alignment: Any  # AlignmentSettings used for photos

    @property
    def simulated(self) -> bool:
        return bool(self.entry.meta.get("simulated"))


@dataclass
class SpadeModel:
    """A SPADE export: class-id map [S, S] and a style seed -> uint8 face [S, S, 3]."""

    entry: ExportEntry
    signature: Any
    size: int
    class_names: tuple[str, ...]
    palette: np.ndarray        # uint8 [num_classes, 3]
    maps_dir: Path | None      # the training data's labels/ folder, when it is still on disk
    alignment: Any             # how a photo's face is aligned before its landmark map is drawn
    loaded: Any = None         # the SavedModel object: the signature's variables live as long as it does

    def render(self, ids: np.ndarray, seed: int) -> np.ndarray:
        import tensorflow as tf

        ids = np.asarray(ids, np.uint8)
        out = self.signature(labels=tf.constant(ids[None]), seeds=tf.constant([int(seed)], tf.int64))
        return out["images"].numpy()[0]


@dataclass
class FacesModel:
    """A DCGAN or StyleGAN2 export: seeds (and a class, a truncation) -> faces; interpolation between two seeds."""

    entry: ExportEntry
    loaded: Any
    size: int
    class_names: tuple[str, ...]   # empty: not class-conditional
    truncates: bool                 # StyleGAN2: truncation toward the average w

    def faces(self, seeds, cls: int = 0, truncation: float = 1.0) -> np.ndarray:
        import tensorflow as tf

        seeds = tf.constant(np.asarray(seeds, np.int64))
        if self.truncates:
            classes = tf.fill(tf.shape(seeds), tf.constant(int(cls), tf.int32))
            return self.loaded.signatures["generate"](seeds=seeds, classes=classes,
                                                      truncation=tf.constant(float(truncation)))["images"].numpy()
        return self.loaded.signatures["generate"](seeds=seeds)["images"].numpy()

    def interpolate(self, first: int, last: int, steps: int, cls: int = 0, truncation: float = 1.0) -> np.ndarray:
        """``steps`` faces along the straight line between the two seeds' latents (w for StyleGAN2, z for DCGAN)."""
        import tensorflow as tf

        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
        seeds = tf.constant([first, last], tf.int64)
        if self.truncates:
            w = self.loaded.signatures["mapping"](seeds=seeds, classes=tf.constant([cls, cls], tf.int32),
                                                  truncation=tf.constant(float(truncation)))["w"].numpy()
            line = (1 - t)[:, None, None] * w[0] + t[:, None, None] * w[1]
            return self.loaded.signatures["generate_from_w"](w=tf.constant(line))["images"].numpy()
        z = self.loaded.signatures["latent"](seeds=seeds)["z"].numpy()
        line = (1 - t)[:, None] * z[0] + t[:, None] * z[1]
        return self.loaded.signatures["generate_from_latent"](z=tf.constant(line))["images"].numpy()


@dataclass
class AgeModel:
    entry: ExportEntry
    editor: Any      # reface_tf.serve.age_editor.AgeEditor
    alignment: Any


# ---------------------------------------------------------------------------------------------- loading


def _photo_alignment(recorded, origin, size: int, landmarker: SharedLandmarker):
    from reface_tf.serve.predict import prediction_alignment

    # the landmarker's hash: a model file other than the one the training faces were aligned with is warned about
    alignment, line = prediction_alignment(recorded, origin, size, landmarker_sha256=landmarker.sha256)
    log.info("%s: %s", origin, line)
    return alignment


def load_translator(entry: ExportEntry, landmarker: SharedLandmarker) -> TranslatorModel:
    from reface_tf.serve.export import load_exported

    model = load_exported(entry.path)
    return TranslatorModel(entry, model.translate_uint8, model.image_size,
                           _photo_alignment(model.alignment, entry.path, model.image_size, landmarker))


def load_spade(entry: ExportEntry, landmarker: SharedLandmarker) -> SpadeModel:
    import tensorflow as tf

    from reface_tf.faces.alignment_settings import read_alignment

    meta = entry.meta
    try:
        loaded = tf.saved_model.load(str(entry.path))
        signature = loaded.signatures["with_seeds"]
    except Exception as err:  # TF raises many types for a damaged SavedModel
        raise ModelError(f"{entry.path}: cannot load this SPADE export ({type(err).__name__}); export it again") from None
    size = int(meta["map_size"])
    root = training_root(meta)
    maps = root / "labels" if root is not None and (root / "labels").is_dir() else None
    recorded = read_alignment(root) if root is not None and root.is_dir() else None
    return SpadeModel(entry, signature, size, tuple(meta["class_names"]), np.asarray(meta["palette"], np.uint8), maps,
                      _photo_alignment(recorded, root or entry.path, size, landmarker), loaded)


def load_faces(entry: ExportEntry, landmarker: SharedLandmarker) -> FacesModel:
    import tensorflow as tf

    meta = entry.meta
    if "generate" not in meta.get("signatures", []):
        raise ModelError(f"{entry.path}: this {entry.task} export has no generate signature; export the run again")
    loaded = tf.saved_model.load(str(entry.path))
    truncates = "mapping" in loaded.signatures
    names = tuple(meta.get("class_names") or ()) if int(meta.get("num_classes") or 0) > 0 else ()
    return FacesModel(entry, loaded, int(meta["resolution"]), names, truncates)


def load_age(entry: ExportEntry, landmarker: SharedLandmarker) -> AgeModel:
    from reface_tf.serve.age_editor import age_editor_from_export

    editor = age_editor_from_export(entry.path)
    return AgeModel(entry, editor, _photo_alignment(editor.alignment, entry.path, editor.resolution, landmarker))


LOADERS: dict[str, Callable[[ExportEntry, SharedLandmarker], Any]] = {
    OUTCOME: load_translator, SKETCH: load_translator, SEGMAP: load_spade, FACES: load_faces, AGE: load_age}


class ModelStore:
    """Exports by name, each loaded on first use (under a lock) and kept for the life of the process."""

    def __init__(self, entries: list[ExportEntry], landmarker: SharedLandmarker):
        self.entries = {e.name: e for e in entries if e.tab is not None}
        self.landmarker = landmarker
        self._loaded: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {name: threading.Lock() for name in self.entries}

    def get(self, name: str | None, tab: str):
        """The loaded model ``name``, which must be an export of ``tab``; ConfigError otherwise."""
        entry = self.entries.get(name or "")
        if entry is None:
            raise ConfigError(f"no model {name!r} in this app; pick one of the list")
        if entry.tab != tab:
            raise ConfigError(f"{name} is a {entry.task} export; this tab runs {tab} models only")
        with self._locks[name]:
            if name not in self._loaded:
                log.info("loading %s (%s)", entry.path, entry.task)
                self._loaded[name] = LOADERS[tab](entry, self.landmarker)
            return self._loaded[name]
