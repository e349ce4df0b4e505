"""Pencil-sketch inputs made from aligned photos (for the sketch → face translation).

Two deterministic looks, both returning ``HxWx3`` uint8 gray images:

* :func:`pencil_sketch` — the "photocopy (detail 15, darkness 3) + posterize (level 10)" edit used to build
  sketch → face pairs. The photocopy filter is approximated as a local-mean threshold: a pixel is inked in
  proportion to how much darker it is than its neighbourhood; ``detail`` shrinks the neighbourhood (finer
  lines), ``darkness`` deepens the ink and lowers the threshold. Posterizing then quantises to ``levels`` grays.
* :func:`xdog` — eXtended Difference-of-Gaussians edges (Winnemöller et al. 2012), a cleaner line drawing.

>>> sketch = make_sketch(aligned_rgb, style="pencil")     # doctest: +SKIP
"""

from __future__ import annotations

import cv2
import numpy as np

STYLES = ("pencil", "xdog")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Float32 luminance in [0, 1] from an RGB (or already gray) uint8 image."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
    return arr.astype(np.float32) / 255.0


def _gray3(gray01: np.ndarray) -> np.ndarray:
    g = np.clip(np.rint(gray01 * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def photocopy(rgb: np.ndarray, detail: float = 15, darkness: float = 3) -> np.ndarray:
    """Photocopy-like ink (float32 HxW in [0, 1], 1 = paper) from a local-mean threshold.

    ``detail`` (1–24) sets the neighbourhood: sigma = (25 − detail) × 0.4 px at 256 px, scaled with the
    image, so the look does not change with resolution. ``darkness`` (1–50) sets ink gain and threshold.
    """
    if not 1 <= detail <= 24:
        raise ValueError(f"detail must be in [1, 24], got {detail}")
    if not 1 <= darkness <= 50:
        raise ValueError(f"darkness must be in [1, 50], got {darkness}")
    gray = to_gray(rgb)
    scale = max(gray.shape[:2]) / 256.0
    sigma = max(0.5, (25.0 - detail) * 0.4 * scale)
    local_mean = cv2.GaussianBlur(gray, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT_101)
    # How much darker than the surroundings, relative to them (a ratio is steadier across lighting than a
    # plain difference: a shadowed cheek and a lit one give similar strokes).
    contrast = (local_mean - gray) / (local_mean + 0.05)
    threshold = 0.03 / (1.0 + darkness / 5.0)
    gain = 6.0 + 2.0 * darkness
    ink = np.clip((contrast - threshold) * gain, 0.0, 1.0)
    # Photocopies keep a trace of the darkest masses (hair, pupils), not only their edges.
    mass = np.clip((0.25 - gray) * 2.0, 0.0, 0.5) * min(1.0, darkness / 3.0)
    return np.clip(1.0 - np.maximum(ink, mass), 0.0, 1.0).astype(np.float32)


def posterize(gray01: np.ndarray, levels: int = 10) -> np.ndarray:
    """Quantise [0, 1] values to ``levels`` evenly spaced grays (including pure black and white)."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    return (np.round(np.clip(gray01, 0.0, 1.0) * (levels - 1)) / (levels - 1)).astype(np.float32)


def pencil_sketch(rgb: np.ndarray, detail: float = 15, darkness: float = 3, levels: int = 10) -> np.ndarray:
    """Photocopy + posterize, as an ``HxWx3`` uint8 gray image."""
    return _gray3(posterize(photocopy(rgb, detail, darkness), levels))


def xdog(rgb: np.ndarray, sigma: float = 0.8, k: float = 1.6, p: float = 20.0, epsilon: float = 0.4,
         phi: float = 40.0) -> np.ndarray:
    """XDoG line drawing as an ``HxWx3`` uint8 gray image.

    ``D = (1 + p)·G_σ − p·G_kσ`` sharpens edges; values above ``epsilon`` become paper, the rest fall off
    as ``1 + tanh(φ (D − ε))``. ``sigma`` is in pixels at 256 px and scales with the image.
    """
    gray = to_gray(rgb)
    scale = max(gray.shape[:2]) / 256.0
    s = sigma * scale
    g1 = cv2.GaussianBlur(gray, (0, 0), sigmaX=s, borderType=cv2.BORDER_REFLECT_101)
    g2 = cv2.GaussianBlur(gray, (0, 0), sigmaX=s * k, borderType=cv2.BORDER_REFLECT_101)
    d = (1.0 + p) * g1 - p * g2
    out = np.where(d >= epsilon, 1.0, 1.0 + np.tanh(phi * (d - epsilon)))
    return _gray3(np.clip(out, 0.0, 1.0))


def make_sketch(rgb: np.ndarray, style: str = "pencil") -> np.ndarray:
    """The sketch input for ``rgb`` in the named style (``"pencil"`` or ``"xdog"``)."""
    if style == "pencil":
        return pencil_sketch(rgb)
    if style == "xdog":
        return xdog(rgb)
    raise ValueError(f"unknown sketch style {style!r}; use one of {', '.join(STYLES)}")
