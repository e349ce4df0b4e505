"""A small synthetic paired dataset, generated on the fly: cartoon faces before / after a simulated change.

It needs no download, so it backs tests and the offline fallback of the demo. Each "before" face is a
random cartoon (skin tone, head shape, eyes, brows, nose, mouth); its "after" is the same face with a
narrower nose, lifted brows and a tighter jaw — a learnable, known ground truth, not real data.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

from reface_tf.data.images import save_png_atomic


def draw_face(rng: np.random.Generator, size: int, after: bool, params: dict | None = None) -> tuple[np.ndarray, dict]:
    """Draw one cartoon face; the same ``params`` with ``after=True`` gives its simulated "after" image."""
    p = params or {
        "bg": rng.integers(40, 200, 3).tolist(),
        "skin": [int(v) for v in rng.integers([150, 110, 90], [255, 200, 170])],
        "cx": size / 2 + rng.uniform(-0.05, 0.05) * size,
        "cy": size / 2 + rng.uniform(-0.04, 0.04) * size,
        "rx": rng.uniform(0.27, 0.33) * size,
        "ry": rng.uniform(0.36, 0.42) * size,
        "eye": rng.uniform(0.025, 0.04) * size,
        "nose": rng.uniform(0.05, 0.08) * size,
        "mouth": rng.uniform(0.08, 0.12) * size,
        "iris": rng.integers(20, 140, 3).tolist(),
    }
    img = np.empty((size, size, 3), np.uint8)
    img[:] = p["bg"]
    cx, cy, rx, ry = p["cx"], p["cy"], p["rx"], p["ry"]
    jaw = 0.9 if after else 1.0
    cv2.ellipse(img, (int(cx), int(cy)), (int(rx * jaw), int(ry)), 0, 0, 360, p["skin"], -1, cv2.LINE_AA)
    brow_lift = 0.04 * size if after else 0.0
    for side in (-1, 1):
        ex, ey = int(cx + side * rx * 0.42), int(cy - ry * 0.18)
        cv2.circle(img, (ex, ey), int(p["eye"] * 1.6), (245, 245, 245), -1, cv2.LINE_AA)
        cv2.circle(img, (ex, ey), int(p["eye"]), p["iris"], -1, cv2.LINE_AA)
        by = int(ey - p["eye"] * 2.6 - brow_lift)
        cv2.line(img, (ex - int(p["eye"] * 2), by), (ex + int(p["eye"] * 2), by), (60, 40, 30), max(1, size // 64), cv2.LINE_AA)
    nose_half = p["nose"] * (0.55 if after else 1.0)
    tip = np.array([[cx - nose_half, cy + ry * 0.15], [cx + nose_half, cy + ry * 0.15], [cx, cy - ry * 0.12]], np.int32)
    shade = [int(c * 0.8) for c in p["skin"]]
    cv2.fillConvexPoly(img, tip, shade, cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(cy + ry * 0.45)), (int(p["mouth"]), int(p["mouth"] * 0.35)), 0, 0, 180, (150, 50, 60), -1, cv2.LINE_AA)
    return img, p


def make_synthetic_dataset(root: str | os.PathLike, count: int = 24, size: int = 128, seed: int = 0) -> Path:
    """Write ``count`` pairs into ``root/A`` and ``root/B`` (PNG) plus ``groups.csv``; returns ``root``.

    Existing complete datasets are left as they are, so calling it twice is cheap.
    """
    root = Path(root)
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == f"{count} {size} {seed}":
        return root
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        before, params = draw_face(rng, size, after=False)
        after, _ = draw_face(rng, size, after=True, params=params)
        stem = f"face{i:04d}"
        save_png_atomic(root / "A" / f"{stem}.png", before)
        save_png_atomic(root / "B" / f"{stem}.png", after)
        rows.append((stem, stem))
    tmp = root / ".groups.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["stem", "group"])
        writer.writerows(rows)
    os.replace(tmp, root / "groups.csv")
    (root / "README.md").write_text(
        f"# Synthetic cartoon pairs\n\n{count} generated pairs at {size}x{size} (seed {seed}). A = cartoon face, "
        "B = the same face after a SIMULATED change (narrower nose, lifted brows, tighter jaw). Not real data.\n")
    marker.write_text(f"{count} {size} {seed}")
    return root
