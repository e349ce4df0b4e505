import numpy as np
import pytest
import tensorflow as tf

from reface_tf.metrics import PSNR_CAP_DB, batch_metrics, mae, psnr, ssim


def rand_uint8(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_psnr_known_values():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)  # MSE 100 -> 10 log10(255^2 / 100)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 / 100.0), abs=1e-12)
    assert psnr(a, b) == pytest.approx(28.1308036, abs=1e-6)
    # [-1, 1] floats use the range 2.0: the same pictures give the same PSNR
    fa, fb = a.astype(np.float32) / 127.5 - 1, b.astype(np.float32) / 127.5 - 1
    assert psnr(fa, fb) == pytest.approx(psnr(a, b), abs=1e-4)


def test_uint8_differences_do_not_wrap_around():
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4), 255, np.uint8)  # in uint8 arithmetic 0 - 255 would wrap to 1
    assert mae(a, b) == 255.0
    assert psnr(a, b) == pytest.approx(0.0, abs=1e-12)
    assert mae(b, a) == 255.0


def test_identical_images_score_perfect():
    a = rand_uint8((32, 32, 3), 0)
    assert psnr(a, a) == PSNR_CAP_DB
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert mae(a, a) == 0.0
    rows = batch_metrics(a[None], a[None])
    assert rows == {"l1": [0.0], "psnr": [PSNR_CAP_DB], "ssim": [pytest.approx(1.0)]}


def test_ssim_matches_tf_image_ssim():
    a = rand_uint8((2, 48, 48, 3), 1)
    noise = np.random.default_rng(2).normal(0, 20, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    expected = tf.image.ssim(tf.constant(a), tf.constant(b), max_val=255, filter_size=11, filter_sigma=1.5).numpy()
    ours = [ssim(x, y) for x, y in zip(a, b)]
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    expected_psnr = tf.image.psnr(tf.constant(a), tf.constant(b), max_val=255).numpy()
    np.testing.assert_allclose([psnr(x, y) for x, y in zip(a, b)], expected_psnr, atol=1e-3)


def test_ssim_falls_with_distortion_and_shapes_must_match():
    a = rand_uint8((32, 32, 3), 3)
    mild = np.clip(a.astype(int) + 5, 0, 255).astype(np.uint8)
    assert 1.0 > ssim(a, mild) > ssim(a, rand_uint8((32, 32, 3), 4))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[:16])


def test_region_metrics_see_only_the_region():
    from reface_tf.metrics import region_metrics

    a = rand_uint8((64, 64, 3), 5)
    b = a.copy()
    b[20:40, 20:40] = 255 - b[20:40, 20:40]  # the only change
    whole = np.ones((64, 64), bool)
    full = region_metrics(a, b, whole)
    assert full["psnr"] == pytest.approx(psnr(a, b)) and full["ssim"] == pytest.approx(ssim(a, b))
    assert full["l1"] == pytest.approx(mae(a, b))
    inside = np.zeros((64, 64), bool)
    inside[20:40, 20:40] = True
    changed = region_metrics(a, b, inside)
    assert changed["psnr"] < full["psnr"] - 5 and changed["ssim"] < full["ssim"] and changed["l1"] > full["l1"]
    outside = np.zeros((64, 64), bool)
    outside[50:60, 5:15] = True
    assert region_metrics(a, b, outside)["psnr"] == PSNR_CAP_DB
    with pytest.raises(ValueError, match="empty"):
        region_metrics(a, b, np.zeros((64, 64), bool))
    with pytest.raises(ValueError, match="does not match"):
        region_metrics(a, b, np.ones((32, 32), bool))
