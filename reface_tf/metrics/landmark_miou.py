"""Landmark mIoU: how well a face generated from a segmentation map keeps that map's layout.

The face is given back to the project's MediaPipe landmarker (:mod:`reface_tf.faces.landmarks`), its
segmentation map is rebuilt from the detected landmarks by the very builder that drew the demo maps
(:func:`reface_tf.synth.segmaps.landmark_segmap`), and the rebuilt map is compared with the input map class by
class (intersection over union). Only the classes the builder draws (skin, nose, eyes, brows, mouth, lips) and
that are present in the input map count; a face the landmarker does not find scores IoU 0 on every such class
and is counted in ``landmark_undetected``.

This is the *landmark* mIoU of this project, not the SPADE paper's protocol, which segments the generated face
with a trained face parser: landmarks see no hair, ears, neck or clothes, and a map rebuilt from the real
photo itself scores below 1 (the landmarker is not pixel-exact on a re-aligned photo).

>>> from reface_tf.metrics.landmark_miou import LandmarkMIoU, summarize
>>> with LandmarkMIoU() as scorer:                         # doctest: +SKIP
...     results = [scorer.score(face, ids) for face, ids in zip(faces, maps)]
>>> summarize(results)["landmark_miou"]                     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reface_tf.synth.segmaps import CLASS_NAMES, DRAWN_CLASSES, landmark_segmap

# Faces smaller than this are enlarged before detection: the face mesh is run on a 256 px crop internally,
# and a 64 px picture gives it too few pixels to place the landmarks (measured: fewer detections).
DETECT_SIZE = 256


def class_ious(predicted: np.ndarray, target: np.ndarray, classes=DRAWN_CLASSES) -> dict[int, float]:
    """IoU of each class of ``classes`` present in ``target`` (absent ones are left out), float64."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"label maps differ in shape: {predicted.shape} vs {target.shape}")
    ious = {}
    for c in classes:
        t = target == c
        if not t.any():
            continue
        p = predicted == c
        ious[int(c)] = float(np.logical_and(p, t).sum(dtype=np.float64) / np.logical_or(p, t).sum(dtype=np.float64))
    return ious


@dataclass(frozen=True)
class LandmarkIoU:
    """One generated face: IoU per present drawn class (0 for all when undetected) and their mean."""

    ious: dict[int, float]
    detected: bool

    @property
    def miou(self) -> float:
        return float(np.mean(list(self.ious.values()))) if self.ious else float("nan")


def undetected(target: np.ndarray, classes=DRAWN_CLASSES) -> LandmarkIoU:
    present = [int(c) for c in classes if (np.asarray(target) == c).any()]
    return LandmarkIoU(dict.fromkeys(present, 0.0), detected=False)


class LandmarkMIoU:
    """Scores generated faces against their input maps with one landmarker (create once, close after)."""

    def __init__(self, landmarker=None, classes=DRAWN_CLASSES):
        if landmarker is None:
            from reface_tf.faces.landmarks import FaceLandmarker

            landmarker = FaceLandmarker(max_faces=1)
        self.landmarker = landmarker
        self.classes = tuple(classes)

    def rebuild(self, face: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
        """The map ``landmark_segmap`` draws from the landmarks found on ``face``, at ``shape``; None if no face."""
        face = np.asarray(face)
        if face.dtype != np.uint8 or face.ndim != 3 or face.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 face, got {face.dtype} {face.shape}")
        scale = max(1.0, DETECT_SIZE / max(face.shape[:2]))
        big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else face
        faces = self.landmarker.detect(big)
        if not faces:
            return None
        h, w = face.shape[:2]
        # Landmarks are pixel positions in ``big``; the map is drawn in the frame of ``shape``.
        points = faces[0].landmarks.astype(np.float64) * np.array([shape[1] / (w * scale), shape[0] / (h * scale)])
        return landmark_segmap(points, shape)

    def score(self, face: np.ndarray, target: np.ndarray) -> LandmarkIoU:
        target = np.asarray(target)
        rebuilt = self.rebuild(face, target.shape[:2])
        if rebuilt is None:
            return undetected(target, self.classes)
        return LandmarkIoU(class_ious(rebuilt, target, self.classes), detected=True)

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self) -> "LandmarkMIoU":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summarize(results: list[LandmarkIoU]) -> dict:
    """``landmark_miou`` (mean over faces of each face's mean IoU, undetected = 0), its std, the mean IoU per
    class over the faces whose input has it (``landmark_iou`` by class name), and the undetected count."""
    scored = [r for r in results if r.ious]
    per_class: dict[str, float] = {}
    for c in DRAWN_CLASSES:
        values = [r.ious[c] for r in scored if c in r.ious]
        if values:
            per_class[CLASS_NAMES[c]] = float(np.mean(values))
    mious = [r.miou for r in scored]
    return {"landmark_miou": float(np.mean(mious)) if mious else None,
            "landmark_miou_std": float(np.std(mious)) if mious else None,
            "landmark_iou": per_class,
            "landmark_undetected": sum(not r.detected for r in results),
            "landmark_n": len(results)}
