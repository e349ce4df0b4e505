"""Sketch inputs: deterministic, gray, posterized to the requested levels, ink on edges and not on flat areas."""

from __future__ import annotations

import numpy as np
import pytest

from reface_tf.synth.sketch import make_sketch, pencil_sketch, photocopy, posterize, xdog


def _square(size: int = 128) -> np.ndarray:
    img = np.full((size, size, 3), 220, np.uint8)
    img[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 40
    return img


@pytest.mark.parametrize("style", ["pencil", "xdog"])
def test_deterministic_gray_same_shape(textured, style):
    a = make_sketch(textured, style)
    b = make_sketch(textured.copy(), style)
    np.testing.assert_array_equal(a, b)
    assert a.shape == textured.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a[..., 0], a[..., 1])
    np.testing.assert_array_equal(a[..., 0], a[..., 2])


def test_posterize_levels():
    values = posterize(np.linspace(0, 1, 1000), levels=10)
    np.testing.assert_allclose(np.unique(values), np.arange(10) / 9, atol=1e-6)
    sketch = pencil_sketch(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), levels=10)
    assert len(np.unique(sketch)) <= 10


def test_pencil_inks_edges_not_flat_areas():
    img = _square()
    sk = pencil_sketch(img)[..., 0].astype(int)
    assert sk[5, 5] == 255 and sk[64, 64 - 40] == 255  # flat light paper stays white
    edge_band = sk[34:38, 40:90]  # just inside the dark square's top edge
    assert edge_band.mean() < 170
    # More darkness gives more ink.
    assert photocopy(img, darkness=20).mean() < photocopy(img, darkness=3).mean()


def test_xdog_marks_the_edge():
    sk = xdog(_square())[..., 0].astype(int)
    assert sk[5, 5] == 255
    assert sk[30:34, 40:90].min() < 60


def test_rejects_bad_parameters(textured):
    with pytest.raises(ValueError):
        photocopy(textured, detail=30)
    with pytest.raises(ValueError):
        posterize(np.zeros(3), levels=1)
    with pytest.raises(ValueError, match="style"):
        make_sketch(textured, "charcoal")
