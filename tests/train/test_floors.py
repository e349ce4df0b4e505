"""Quality floors: hand-computed scores of the two trivial predictors, the two-epoch warning, and the run's wiring."""

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reface_tf.config import Config
from reface_tf.data.pairs import scan_dataset
from reface_tf.data.pipeline import DecodedPairs
from reface_tf.tasks import train
from reface_tf.tasks.pix2pix import task as pix2pix_task
from reface_tf.tasks.pix2pix.floors import Floors, FloorWatch, compute_floors, load_floors, mean_target


def test_mean_face_is_the_pixelwise_mean_of_the_training_targets(tmp_path):
    for side, stem, value in (("A", "black", 0), ("B", "black", 0), ("A", "white", 0), ("B", "white", 255)):
        (tmp_path / "ds" / side).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(tmp_path / "ds" / side / f"{stem}.png")
    cfg = Config()
    pairs = scan_dataset(tmp_path / "ds", cfg.data).pairs
    mean = mean_target(DecodedPairs(pairs, 8, cfg.data.max_pixels), 8)
    assert mean.dtype == np.float64 and mean.shape == (8, 8, 3)
    np.testing.assert_allclose(mean, 0.0, atol=1e-12)  # (0 + 255) / 2 = 127.5 -> 0 in [-1, 1]


def test_floor_scores_match_hand_computed_psnr_and_ssim():
    """Mean face 0 against target +1 (range 2): MSE 1 -> PSNR 10 log10(4) dB; constant images -> SSIM's C1 term."""
    mean_face = np.zeros((16, 16, 3))
    targets = np.ones((1, 16, 16, 3))
    inputs = np.full((1, 16, 16, 3), 0.5)  # output = input: MSE 0.25 -> PSNR 10 log10(16)
    floors = compute_floors(mean_face, [(inputs, targets)])
    assert floors.mean_face_psnr == pytest.approx(10 * math.log10(4.0), abs=1e-9)
    assert floors.identity_psnr == pytest.approx(10 * math.log10(16.0), abs=1e-9)
    c1 = (0.01 * 2.0) ** 2  # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), the contrast term is 1
    assert floors.mean_face_ssim == pytest.approx(c1 / (1 + c1), rel=1e-6)
    assert floors.identity_ssim == pytest.approx((2 * 0.5 + c1) / (1.25 + c1), rel=1e-6)
    assert floors.psnr == floors.identity_psnr and floors.ssim == floors.identity_ssim


def test_warning_after_two_epochs_in_a_row_below_both_floors_and_not_before():
    floors = Floors(mean_face_psnr=12.0, mean_face_ssim=0.40, identity_psnr=8.0, identity_ssim=0.45)
    watch = FloorWatch(floors)
    assert watch.update(1, 11.0, 0.30) is None           # below both: first epoch
    assert watch.update(2, 13.0, 0.30) is None           # PSNR above the better floor: streak broken
    assert watch.update(3, 11.0, 0.44) is None           # below both again (SSIM floor is the better one, 0.45)
    warning = watch.update(4, 11.5, 0.20)
    assert warning and warning.startswith("epoch 4: val PSNR 11.50 dB and SSIM 0.2000 have been below both floors")
    assert "--norm" in warning and "--inference-mode" in warning
    assert watch.update(5, 11.0, 0.20) is None           # one warning per streak
    resumed = FloorWatch(floors, history=[False, True])  # a resumed run continues the streak it logged
    assert resumed.update(3, 1.0, 0.0) is not None


@pytest.mark.slow
def test_a_run_logs_its_floors_once_and_warns_in_the_second_epoch_below_them(tiny_config, monkeypatch, caplog):
    cfg = tiny_config(optim={"epochs": 3})
    real_floors = pix2pix_task.run_floors
    unbeatable = Floors(mean_face_psnr=99.0, mean_face_ssim=0.999, identity_psnr=0.0, identity_ssim=0.0)

    def floors_then_unbeatable(run_dir, *args):
        real_floors(run_dir, *args)  # computes and writes floors.json as a run does
        return unbeatable

    monkeypatch.setattr(pix2pix_task, "run_floors", floors_then_unbeatable)
    with caplog.at_level(logging.WARNING, logger="reface_tf.train.loop"):
        train(cfg)
    run = Path(cfg.runtime.run_dir)
    saved = load_floors(run)
    assert saved is not None and 0 < saved.mean_face_psnr < 99 and 0 < saved.identity_ssim <= 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["below_floors"] for r in rows] == [True, True, True]
    warnings = [r.getMessage() for r in caplog.records if "below both floors" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("epoch 2:")
