"""Unpaired face folders: recursive scan, group-aware split, CelebA's crop and partition file, bad files reported."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reface_tf.data.image_folder import CELEBA_CROP, decode_faces, scan_face_images, square_face
from reface_tf.errors import DataError


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def test_folder_is_searched_recursively_split_by_group_and_bad_files_reported(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(12):
        _write(tmp_path / ("sub" if i % 2 else "") / f"p{i // 4}_{i}.png", rng.integers(0, 255, (20, 30, 3), np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "groups.csv").write_text("stem,group\n" + "".join(f"p{i // 4}_{i},person{i // 4}\n" for i in range(12)))
    faces = scan_face_images(tmp_path, held_out_ratio=0.3, seed=0)
    assert len(faces.train) + len(faces.held_out) == 13  # the 12 PNGs and the broken JPEG (found by suffix)
    # A whole person (4 images) is held out, never part of one.
    people = lambda paths: {p.stem.split("_")[0] for p in paths if p.suffix == ".png"}
    assert people(faces.train).isdisjoint(people(faces.held_out)) and people(faces.held_out)
    assert [r for _, r in faces.skipped if "suffix .txt" in r]
    images, kept, skipped = decode_faces(faces.train + faces.held_out, 16)
    assert images.shape == (12, 16, 16, 3) and images.dtype == np.uint8
    assert [p for p, _ in skipped] == [str(tmp_path / "broken.jpg")]
    assert scan_face_images(tmp_path, held_out_ratio=0.3, seed=0).train == faces.train  # deterministic


def test_celeba_layout_crops_20px_and_follows_the_partition_file(tmp_path):
    folder = tmp_path / "img_align_celeba"
    for i in range(1, 7):
        rgb = np.zeros((218, 178, 3), np.uint8)
        rgb[:CELEBA_CROP] = 255  # the bands the crop removes
        rgb[-CELEBA_CROP:] = 255
        rgb[CELEBA_CROP:-CELEBA_CROP] = i * 10
        _write(folder / f"{i:06d}.jpg", rgb)
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {0 if i <= 4 else 1 if i == 5 else 2}\n" for i in range(1, 7)))
    faces = scan_face_images(tmp_path, max_images=3)
    assert faces.layout == "celeba"
    assert [p.name for p in faces.train] == ["000001.jpg", "000002.jpg", "000003.jpg"]  # the first N of partition 0
    assert [p.name for p in faces.held_out] == ["000005.jpg"]
    images, _, _ = decode_faces(faces.train, 32, celeba_crop=True)
    # 178x178 after the crop, no white band left: every pixel is the image's grey (JPEG error aside).
    assert np.abs(images[1].astype(int) - 20).max() <= 3


def test_square_face_takes_the_centre_square():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, 5:15] = 200
    assert (square_face(rgb, 10, celeba_crop=False) == 200).all()


def test_no_images_and_missing_folders_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"^--data .*: not a folder"):
        scan_face_images(tmp_path / "nope")
    with pytest.raises(DataError, match=r"^--data .*: no images found"):
        scan_face_images(tmp_path)
    with pytest.raises(DataError, match=r"no img_align_celeba/ folder for --layout celeba"):
        scan_face_images(tmp_path, layout="celeba")
