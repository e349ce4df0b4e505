"""Image files with known defects, written by the tests themselves."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


def gradient_rgb(h: int = 40, w: int = 60) -> np.ndarray:
    """A non-symmetric test picture: every pixel differs, so orientation and crops are checkable."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + 2 * y) % 256], axis=-1).astype(np.uint8)


@pytest.fixture
def write_image(tmp_path):
    def write(name: str, array: np.ndarray | None = None, **save_kwargs) -> "Path":
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gradient_rgb() if array is None else array).save(path, **save_kwargs)
        return path

    return write


def truncated_jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gradient_rgb(64, 64)).save(buf, format="JPEG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]
