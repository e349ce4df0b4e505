"""Paired augmentation: pairs stay registered, draws are reproducible, offline copies keep groups."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from reface_tf.data.augment import AugmentConfig, augment_folder, build_paired_augmentation
from reface_tf.data.images import load_rgb, save_png_atomic
from reface_tf.errors import ConfigError, DataError


def _textured(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 % 256, y * 4 % 256, (x + y) * 2 % 256], axis=-1).astype(np.int32)
    return np.clip(base + rng.integers(-20, 20, size=base.shape), 0, 255).astype(np.uint8)


def test_geometric_only_keeps_identical_pair_identical():
    aug = build_paired_augmentation(AugmentConfig.geometric_only(hflip=0.5, affine_p=1.0))
    img = _textured()
    moved = 0
    for seed in range(12):
        a, b = aug(img, img.copy(), seed)
        assert a.shape == b.shape == img.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        moved += not np.array_equal(a, img)
    assert moved >= 10  # the transform really did something


def test_shared_photometric_keeps_pair_identical_but_input_only_does_not():
    img = _textured()
    strong = dict(brightness_contrast=1.0, brightness_limit=0.3, hue_saturation=1.0, noise=0.0, blur=0.0)
    shared = build_paired_augmentation(AugmentConfig(photometric_sides="both", **strong))
    a, b = shared(img, img.copy(), 3)
    np.testing.assert_array_equal(a, b)
    input_only = build_paired_augmentation(AugmentConfig(photometric_sides="input", hflip=0.0, affine_p=0.0, **strong))
    a, b = input_only(img, img.copy(), 3)
    np.testing.assert_array_equal(b, img)  # target untouched: no geometry, no photometric on its side
    assert not np.array_equal(a, img)


def test_deterministic_given_seed_and_seeds_differ():
    aug = build_paired_augmentation(AugmentConfig(noise=0.5, blur=0.5))
    a_in, b_in = _textured(seed=1), _textured(seed=2)
    first = aug(a_in, b_in, 1234)
    second = build_paired_augmentation(AugmentConfig(noise=0.5, blur=0.5))(a_in, b_in, 1234)
    again = aug(a_in, b_in, 1234)
    for x, y, z in zip(first, second, again):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    outputs = {aug(a_in, b_in, s)[0].tobytes() for s in range(8)}
    assert len(outputs) >= 7
    np.testing.assert_array_equal(a_in, _textured(seed=1))  # inputs not modified in place


def test_threads_give_the_same_results_as_serial():
    from concurrent.futures import ThreadPoolExecutor

    aug = build_paired_augmentation(AugmentConfig())
    img = _textured()
    serial = [aug(img, img, s)[0] for s in range(16)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda s: aug(img, img, s)[0], range(16)))
    for x, y in zip(serial, parallel):
        np.testing.assert_array_equal(x, y)


def test_rejects_bad_inputs_and_config():
    aug = build_paired_augmentation(AugmentConfig())
    with pytest.raises(ValueError, match="shapes differ"):
        aug(_textured(64, 80), _textured(64, 64), 0)
    with pytest.raises(ValueError, match="uint8"):
        aug(_textured().astype(np.float32), _textured(), 0)
    with pytest.raises(ConfigError, match="photometric_sides"):
        build_paired_augmentation(AugmentConfig(photometric_sides="left"))
    with pytest.raises(ConfigError, match="probability"):
        build_paired_augmentation(AugmentConfig(hflip=1.5))


def test_offline_copies_layout_and_groups(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        save_png_atomic(data / "A" / f"p{i}.png", _textured(seed=i))
        save_png_atomic(data / "B" / f"p{i}.png", _textured(seed=10 + i))
    (data / "groups.csv").write_text("stem,group\np0,g1\np1,g1\np2,g2\n")
    out = tmp_path / "out"
    assert augment_folder(data, out, copies=2, progress=False) == 6
    names = sorted(p.name for p in (out / "A").iterdir())
    assert names == sorted(p.name for p in (out / "B").iterdir())
    assert names == [f"p{i}_aug{k}.png" for i in range(3) for k in range(2)]
    assert not list(out.rglob(".*.tmp"))
    with open(out / "groups.csv", newline="") as fh:
        groups = {r["stem"]: r["group"] for r in csv.DictReader(fh)}
    assert groups == {"p0_aug0": "g1", "p0_aug1": "g1", "p1_aug0": "g1", "p1_aug1": "g1", "p2_aug0": "g2", "p2_aug1": "g2"}
    assert load_rgb(out / "A" / "p0_aug0.png").shape == (64, 80, 3)
    # Re-running reproduces the same bytes.
    out2 = tmp_path / "out2"
    augment_folder(data, out2, copies=2, progress=False)
    np.testing.assert_array_equal(load_rgb(out / "B" / "p2_aug1.png"), load_rgb(out2 / "B" / "p2_aug1.png"))


def test_offline_cli_errors(tmp_path):
    from reface_tf.cli import run_cli
    from reface_tf.data.augment import main

    assert run_cli(main, ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--copies", "1"]) == 2
    with pytest.raises(DataError):
        augment_folder(tmp_path / "missing", tmp_path / "o", 1)


def test_offline_copies_name_every_file_left_out_and_go_on(tmp_path, caplog):
    """A damaged pair, a file without a partner, a non-image and a hidden file are each named with the reason;
    the other pairs are still augmented (a damaged file used to stop the whole run)."""
    import logging

    from PIL import Image

    data = tmp_path / "data"
    for i in range(2):
        save_png_atomic(data / "A" / f"p{i}.png", _textured(seed=i))
    save_png_atomic(data / "B" / "p0.png", _textured(seed=10))
    Image.fromarray(_textured(seed=11)).save(data / "B" / "p1.tif")  # TIFF: read like every other command does
    save_png_atomic(data / "A" / "bad.png", _textured(seed=2))
    (data / "B" / "bad.png").write_bytes(b"")
    save_png_atomic(data / "A" / "lonely.png", _textured(seed=3))
    (data / "A" / "notes.txt").write_text("x")
    (data / "B" / ".DS_Store").write_bytes(b"\0")
    caplog.set_level(logging.INFO)
    assert augment_folder(data, tmp_path / "out", copies=1, progress=False) == 2
    assert sorted(p.name for p in (tmp_path / "out" / "A").iterdir()) == ["p0_aug0.png", "p1_aug0.png"]
    text = caplog.text
    for name, phrase in (("bad.png", "zero-byte"), ("lonely.png", "unmatched"), ("notes.txt", "not an image file"),
                         (".DS_Store", "hidden file")):
        assert any(name in line and phrase in line for line in text.splitlines()), name
