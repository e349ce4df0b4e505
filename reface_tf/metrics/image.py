"""Image-quality metrics, computed right: float64, a FIXED data range, no uint8 wrap-around.

The data range is a property of the encoding (255 for uint8, 2.0 for [-1, 1]), never the per-image
max - min. SSIM is computed per channel on RGB (Gaussian window, sigma 1.5, as in Wang et al. 2004 and
``tf.image.ssim``) and averaged over channels.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

UINT8_RANGE = 255.0
SIGNED_UNIT_RANGE = 2.0  # images in [-1, 1]
PSNR_CAP_DB = 100.0      # identical images: report a finite cap instead of +inf so means stay finite


def data_range_of(image: np.ndarray) -> float:
    """255 for uint8 arrays, 2.0 for float arrays (the project's [-1, 1] convention)."""
    return UINT8_RANGE if np.asarray(image).dtype == np.uint8 else SIGNED_UNIT_RANGE


def _as_float64_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute error in the images' own units."""
    x, y = _as_float64_pair(a, b)
    return float(np.mean(np.abs(x - y)))


def l1(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Mean absolute error in [-1, 1] units (the unit of training's ``val_l1``): uint8 errors are divided by 127.5."""
    data_range = data_range_of(a) if data_range is None else data_range
    return mae(a, b) / (data_range / SIGNED_UNIT_RANGE)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB of one image pair (HxW or HxWxC)."""
    data_range = data_range_of(a) if data_range is None else data_range
    x, y = _as_float64_pair(a, b)
    mse = np.mean((x - y) ** 2)
    if mse == 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mse)))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float:
    """Mean SSIM of one image pair, Gaussian 11x11 window (sigma 1.5), averaged over channels."""
    data_range = data_range_of(a) if data_range is None else data_range
    x, y = _as_float64_pair(a, b)
    channel_axis = -1 if x.ndim == 3 else None
    return float(structural_similarity(x, y, data_range=data_range, channel_axis=channel_axis,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def batch_metrics(outputs: np.ndarray, targets: np.ndarray, data_range: float | None = None) -> dict[str, list[float]]:
    """Per-image L1, PSNR and SSIM for batches ``[N, H, W, C]``."""
    rows: dict[str, list[float]] = {"l1": [], "psnr": [], "ssim": []}
    for out, tgt in zip(outputs, targets):
        rows["l1"].append(mae(out, tgt))
        rows["psnr"].append(psnr(out, tgt, data_range))
        rows["ssim"].append(ssim(out, tgt, data_range))
    return rows


def _region(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    region = np.asarray(mask).astype(bool)
    if region.shape != tuple(shape[:2]):
        raise ValueError(f"region mask shape {region.shape} does not match the images' {tuple(shape[:2])}")
    if not region.any():
        raise ValueError("region mask is empty")
    return region


def region_metrics(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float | None = None) -> dict[str, float]:
    """L1 (images' units), PSNR and SSIM of one pair restricted to the pixels where ``mask`` (HxW) is set.

    PSNR uses the mean squared error over the region's pixels and channels; SSIM is the full-image SSIM map
    (same window as :func:`ssim`, so neighbours outside the region still enter each local window) averaged
    over the region (less the 5-pixel border skimage also leaves out) and the channels.
    """
    data_range = data_range_of(a) if data_range is None else data_range
    x, y = _as_float64_pair(a, b)
    region = _region(mask, x.shape)
    diff = (x - y)[region]
    mse = float(np.mean(diff**2))
    channel_axis = -1 if x.ndim == 3 else None
    _, ssim_map = structural_similarity(x, y, data_range=data_range, channel_axis=channel_axis, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False, full=True)
    # As skimage's mean SSIM, leave out the border where the window would reach past the image.
    pad = (2 * int(3.5 * 1.5 + 0.5) + 1 - 1) // 2
    inner = np.zeros_like(region)
    inner[pad:-pad, pad:-pad] = region[pad:-pad, pad:-pad]
    if not inner.any():
        raise ValueError(f"region mask lies entirely within {pad} pixels of the border")
    return {"l1": float(np.mean(np.abs(diff))),
            "psnr": PSNR_CAP_DB if mse == 0 else float(min(PSNR_CAP_DB, 10.0 * np.log10(data_range**2 / mse))),
            "ssim": float(np.mean(ssim_map[inner]))}
