import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from reface_tf.errors import ConfigError
from reface_tf.metrics import (METRICS, Metric, batch_metrics, face_region_scores, get_metric, l1, mae, metric_names,
                               psnr, region_metrics, register, ssim)


def rand_uint8(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_the_registered_metrics_and_their_directions():
    distribution = ("fd_facenet", "kid_facenet", "fd_sface", "kid_sface", "fd_inception", "kid_inception")
    assert metric_names() == ("psnr", "ssim", "l1", "face_psnr", "face_ssim", "face_l1", "identity_cosine",
                              "identity_cosine_input", *distribution)
    better = {name: get_metric(name).higher_is_better for name in metric_names()}
    assert [n for n, up in better.items() if not up] == ["l1", "face_l1", *distribution]
    assert get_metric("ssim").arrow == "↑" and get_metric("l1").arrow == "↓"
    assert get_metric("face_ssim").needs == ("output", "target", "region")
    assert get_metric("identity_cosine").needs == ("output", "target", "identity_model")
    assert get_metric("identity_cosine").fn is None  # measured with the input together: pair_identity
    assert all(m.description for m in METRICS.values()) and all(n == m.name for n, m in METRICS.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_metric("psnr").higher_is_better = False


def test_unknown_metric_is_one_line_naming_the_known_ones():
    with pytest.raises(ConfigError) as err:
        get_metric("fid")
    message = str(err.value)
    assert "\n" not in message and "'fid'" in message and "psnr, ssim, l1" in message
    with pytest.raises(ValueError, match="already registered"):
        register(Metric("psnr", True, ("output", "target"), "again"))


def test_what_can_be_computed_from_given_inputs():
    pair = metric_names(("output", "target"))
    assert pair == ("psnr", "ssim", "l1")
    assert set(batch_metrics(rand_uint8((1, 16, 16, 3), 0), rand_uint8((1, 16, 16, 3), 1))) == set(pair)  # val_<name>
    region = tuple(n for n in metric_names(("output", "target", "region")) if n not in pair)
    assert region == ("face_psnr", "face_ssim", "face_l1")
    a, b = rand_uint8((32, 32, 3), 2), rand_uint8((32, 32, 3), 3)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    assert tuple(face_region_scores(a, b, mask)) == region
    per_pair = metric_names(("output", "target", "input", "region", "identity_model"))
    assert not any(n.startswith(("fd_", "kid_")) for n in per_pair)  # sets of images, not pairs
    assert metric_names(("generated", "real", "embedder"))[:2] == ("fd_facenet", "kid_facenet")
    assert all(get_metric(n).fn is None and "distribution_report" in get_metric(n).description
               for n in metric_names(("generated", "real", "embedder")))


def test_functions_give_the_numbers_of_the_image_metrics():
    a, b = rand_uint8((32, 32, 3), 4), rand_uint8((32, 32, 3), 5)
    assert get_metric("psnr").fn(a, b) == psnr(a, b) and get_metric("ssim").fn(a, b) == ssim(a, b)
    assert get_metric("l1").fn(a, b) == l1(a, b) == mae(a, b) / 127.5  # [-1, 1] units, as training's val_l1
    fa, fb = a.astype(np.float64) / 127.5 - 1, b.astype(np.float64) / 127.5 - 1
    assert l1(fa, fb) == pytest.approx(l1(a, b), abs=1e-12) and l1(fa, fb) == mae(fa, fb)
    mask = np.zeros((32, 32), bool)
    mask[6:26, 6:26] = True
    whole = region_metrics(a, b, mask)
    scores = face_region_scores(a, b, mask)
    assert scores == {"face_psnr": whole["psnr"], "face_ssim": whole["ssim"], "face_l1": whole["l1"] / 127.5}
    assert all(get_metric(name).fn(a, b, mask) == value for name, value in scores.items())


def test_importing_the_registry_does_not_import_tensorflow():
    code = "import sys, reface_tf.metrics, reface_tf.metrics.registry; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
