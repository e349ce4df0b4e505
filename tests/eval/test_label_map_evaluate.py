"""evaluate.py on a model that draws faces from segmentation maps: a SPADE run and its export are scored on
class-id maps, with the palette picture as the "output = input" baseline, the mean training face as a floor,
and the landmark mIoU (here on blob maps whose photos hold no face: every output counted as undetected)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reface_tf.synth.segmaps import PALETTE
from reface_tf.tasks.spade.source import ids_of_pictures
from tests.train.test_spade_task import label_root, tiny  # noqa: F401 (label_root is a fixture)


def test_class_id_and_palette_pictures_give_the_same_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 19, (2, 8, 8)).astype(np.uint8)
    as_ids = np.repeat(ids[..., None], 3, axis=-1)
    np.testing.assert_array_equal(ids_of_pictures(as_ids, PALETTE), ids)
    np.testing.assert_array_equal(ids_of_pictures(PALETTE[ids], PALETTE), ids)
    noisy = np.clip(PALETTE[ids].astype(int) + rng.integers(-20, 21, (2, 8, 8, 3)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ids_of_pictures(noisy, PALETTE), ids)  # JPEG-ish colours: nearest palette colour


@pytest.mark.slow
@pytest.mark.network  # the landmarker and the identity model come from the package registry
def test_spade_run_and_export_are_evaluated_with_landmark_miou(label_root, tmp_path):  # noqa: F811
    from reface_tf import tasks
    from reface_tf.eval.cli import main

    run = tmp_path / "run"
    small = dict(num_upsampling=1, disc_layers=2, disc_scales=1, spectral_norm=False)
    tasks.train(tiny(label_root, run, epochs=1, **small))
    assert main(["--run-dir", str(run), "--no-progress", "--no-identity", "--no-distribution",
                 "--out", str(tmp_path / "eval")]) == 0
    s = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    n = s["n"]
    assert n >= 1 and (s["landmark_n"], s["landmark_undetected"], s["landmark_miou"]) == (n, n, 0.0)
    assert set(s["landmark_iou"]) == {"skin", "nose", "l_eye", "r_eye"}  # the drawn classes of the blob maps
    assert 0 < s["baseline_psnr"] < 60 and 0 < s["floor_mean_face_psnr"] < 60 and 0 < s["psnr"] < 60
    # The baseline is the palette picture, not the class ids shown as a (near-black) picture.
    from reface_tf.data.pairs import read_split
    from reface_tf.metrics.image import psnr
    from reface_tf.synth.segmaps import load_label_png
    from PIL import Image

    pair = read_split(run, "test")[0]
    target = np.asarray(Image.open(pair.target_path).convert("RGB"))
    palette = PALETTE[load_label_png(pair.input_path)]
    if n == 1:
        assert s["baseline_psnr"] == pytest.approx(psnr(palette, target, 255.0))

    version, _ = tasks.get_task("spade").export(run, None, tmp_path / "export")
    assert main(["--model", str(version), "--data", str(label_root), "--no-progress", "--no-identity",
                 "--no-distribution", "--no-landmarks", "--out", str(tmp_path / "eval_export")]) == 0
    e = json.loads((tmp_path / "eval_export" / "metrics.json").read_text())
    assert e["n"] == 10 and "landmark_miou" not in e and 0 < e["psnr"] < 60
