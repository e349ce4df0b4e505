"""Label-map data: CelebAMask-HQ part masks merged as the dataset's g_mask.py merges them, nearest-neighbour
resizing and one-hot encoding that keep class ids exact, flips that swap left and right classes, and one-line
errors naming the file for ids past --num-classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reface_tf.config import Config
from reface_tf.data.celebamask import CLASS_NAMES, PARTS, convert_celebamask, main, merge_parts, part_path
from reface_tf.data.labels import (LabelStore, label_training_batches, mirror_table, read_label_map,
                                   scan_label_dataset)
from reface_tf.errors import DataError

MASK, PHOTO = 16, 32  # the download's masks are half the photos' size, as here
ID = {name: i for i, name in enumerate(CLASS_NAMES)}


def write_mask(root, face_id: int, part: str, box: tuple[int, int, int, int], rgb: bool = False) -> None:
    mask = np.zeros((MASK, MASK), np.uint8)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = 255
    path = part_path(root, face_id, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([mask] * 3, -1) if rgb else mask).save(path)


def write_photo(root, face_id: int) -> None:
    (root / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    photo = np.full((PHOTO, PHOTO, 3), 40 + face_id % 200, np.uint8)
    Image.fromarray(photo).save(root / "CelebA-HQ-img" / f"{face_id}.jpg", quality=95)


@pytest.fixture
def celebamask(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    # Face 0: skin everywhere, hair over its top rows, nose in the middle, cloth over neck at the bottom.
    write_photo(root, 0)
    write_mask(root, 0, "skin", (0, 16, 0, 16))
    write_mask(root, 0, "hair", (0, 4, 0, 16), rgb=True)  # masks saved as RGB, as some of the download's are
    write_mask(root, 0, "nose", (6, 10, 6, 10))
    write_mask(root, 0, "neck", (12, 16, 0, 16))
    write_mask(root, 0, "cloth", (14, 16, 0, 16))
    # Face 2001 lives in folder 1 (id // 2000): only skin and l_eye.
    write_photo(root, 2001)
    write_mask(root, 2001, "skin", (2, 14, 2, 14))
    write_mask(root, 2001, "l_eye", (4, 6, 8, 12))
    # Face 7 has a photo and no part mask at all.
    write_photo(root, 7)
    return root


def test_parts_merge_in_the_datasets_order_later_over_earlier(celebamask, tmp_path):
    out = tmp_path / "converted"
    report = convert_celebamask(celebamask, out, size=MASK, progress="none")
    assert (report.faces, report.converted, len(report.skipped)) == (3, 2, 1)
    assert "no part mask" in report.skipped[0][1] and report.skipped[0][0].endswith("CelebAMask-HQ-mask-anno/0")

    labels = np.asarray(Image.open(out / "labels" / "0.png"))
    assert labels.dtype == np.uint8 and labels.shape == (MASK, MASK)
    assert (labels[0:4] == ID["hair"]).all()                       # hair (13) over skin (1)
    assert (labels[6:10, 6:10] == ID["nose"]).all()
    assert (labels[4:6] == ID["skin"]).all() and labels[4, 0] == 1
    assert (labels[12:14] == ID["neck"]).all() and (labels[14:16] == ID["cloth"]).all()  # cloth (18) over neck (17)
    other = np.asarray(Image.open(out / "labels" / "2001.png"))
    assert other[0, 0] == 0 and other[2, 2] == ID["skin"] and (other[4:6, 8:12] == ID["l_eye"]).all()
    photo = np.asarray(Image.open(out / "B" / "0.jpg"))
    assert photo.shape == (MASK, MASK, 3)

    saved = json.loads((out / "report.json").read_text())
    # Every part face 0 lacks, and those face 2001 lacks, counted once per face.
    assert saved["missing_parts"]["hat"] == 2 and saved["missing_parts"]["nose"] == 1 and "skin" not in saved["missing_parts"]
    assert not list(out.rglob(".*.tmp"))                            # atomic writes leave no temporary file

    again = convert_celebamask(celebamask, out, size=MASK, progress="none")
    assert (again.already, again.converted) == (2, 0)              # converted faces are skipped; face 7 is retried


def test_merge_matches_a_direct_reading_of_g_mask():
    rng = np.random.default_rng(0)
    masks = {part: (rng.uniform(size=(8, 8)) < 0.3).astype(np.uint8) * 255 for part in PARTS}
    expected = np.zeros((8, 8), np.uint8)
    for idx, part in enumerate(PARTS):
        expected[masks[part] != 0] = idx + 1
    np.testing.assert_array_equal(merge_parts(masks), expected)


def test_converter_cli_resizes_by_nearest_and_prints_the_report(celebamask, tmp_path, capsys):
    assert main(["--celebamask-hq", str(celebamask), "--out", str(tmp_path / "c"), "--size", "48", "--progress", "none"]) == 0
    labels = np.asarray(Image.open(tmp_path / "c" / "labels" / "0.png"))
    assert labels.shape == (48, 48) and set(np.unique(labels)) == {ID["skin"], ID["nose"], ID["hair"], ID["neck"], ID["cloth"]}
    assert "2 faces converted" in capsys.readouterr().out
    with pytest.raises(DataError, match=r"^--celebamask-hq: .* needs CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/"):
        convert_celebamask(tmp_path, tmp_path / "d")


def write_label_dataset(root, count: int = 4, size: int = 24, bad: dict[int, int] | None = None) -> None:
    """Maps with a tall l_eye on the picture's left half and a short r_eye on its right; photos whose columns are
    numbered."""
    for i in range(count):
        ids = np.zeros((size, size), np.uint8)
        ids[4:20, 2:10], ids[8:12, 14:22], ids[20:, :] = ID["l_eye"], ID["r_eye"], ID["skin"]
        if bad and i in bad:
            ids[0, 0] = bad[i]
        photo = np.zeros((size, size, 3), np.uint8)
        photo[..., 0] = np.arange(size, dtype=np.uint8)[None, :] * 10
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "B").mkdir(parents=True, exist_ok=True)
        Image.fromarray(ids).save(root / "labels" / f"p{i}.png")
        Image.fromarray(photo).save(root / "B" / f"p{i}.png")


def test_nearest_resizing_one_hot_and_mirrored_flips_keep_class_ids_exact(tmp_path):
    write_label_dataset(tmp_path, count=4)
    cfg = Config()
    cfg.data.image_size, cfg.data.load_size = 32, 37  # 24 -> 37: a non-integer scale, then a random crop
    scan = scan_label_dataset(tmp_path, cfg.data, 19)
    store = LabelStore(scan.pairs, cfg.data.load_size, 19, cfg.data.max_pixels)
    ids, _ = store.get(0)
    assert set(np.unique(ids)) == {0, ID["l_eye"], ID["r_eye"], ID["skin"]}

    mirror = mirror_table(CLASS_NAMES)
    assert (mirror[ID["l_eye"]], mirror[ID["r_brow"]], mirror[ID["ear_r"]], mirror[ID["nose"]]) == (ID["r_eye"], ID["l_brow"], ID["ear_r"], ID["nose"])
    flips = set()
    for batch in label_training_batches(store, cfg.data, seed=3, z_dim=4, first_epoch=0, epochs=3, global_batch=2,
                                        steps_per_epoch=2, mirror=mirror):
        onehot = batch["labels"].numpy()
        assert onehot.shape == (2, 32, 32, 19) and set(np.unique(onehot)) == {0.0, 1.0}
        np.testing.assert_array_equal(onehot.sum(-1), 1.0)
        labels = onehot.argmax(-1)
        columns = batch["target"].numpy()[..., 0]
        for lab, col in zip(labels, columns):
            assert set(np.unique(lab)) <= {0, ID["l_eye"], ID["r_eye"], ID["skin"]}
            flipped = col[0, 0] > col[0, -1]  # the photo's column numbers run backwards
            flips.add(bool(flipped))
            left, right = lab[:, :16], lab[:, 16:]
            # Flipped or not, the eye on the picture's left is l_eye: a flip moves the eyes and swaps their names.
            assert ID["l_eye"] in left and ID["r_eye"] not in left and ID["r_eye"] in right and ID["l_eye"] not in right
            # The tall eye drawn at the left moved to the right with the flip.
            tall_on_left = (lab == ID["l_eye"]).sum() > (lab == ID["r_eye"]).sum()
            assert tall_on_left != flipped
    assert flips == {True, False}


def test_an_id_past_the_class_count_is_one_line_naming_the_file(tmp_path):
    write_label_dataset(tmp_path, count=3, bad={1: 25})
    with pytest.raises(DataError, match=r"^\S+/labels/p1\.png: class id 25 is not below --num-classes 19; raise "
                                        r"--num-classes to at least 26 or fix the map$"):
        scan_label_dataset(tmp_path, Config().data, 19)
    assert len(scan_label_dataset(tmp_path, Config().data, 26).pairs) == 3


def test_a_colour_map_or_a_missing_folder_is_refused_with_the_fix(tmp_path, celebamask):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: a label map must be a one-channel PNG of class ids, got PNG RGB"):
        read_label_map(tmp_path / "rgb.png", 19)
    with pytest.raises(DataError, match=r"is the CelebAMask-HQ download .*python prepare_segmaps\.py --celebamask-hq"):
        scan_label_dataset(celebamask, Config().data, 19)
    with pytest.raises(DataError, match=r"needs labels/ \(class-id PNGs\) and B/ \(photos\)"):
        scan_label_dataset(tmp_path, Config().data, 19)


def test_a_resumed_stream_replays_the_same_batches_latents_included(tmp_path):
    write_label_dataset(tmp_path, count=4)
    cfg = Config()
    cfg.data.image_size, cfg.data.load_size = 16, 20
    store = LabelStore(scan_label_dataset(tmp_path, cfg.data, 19).pairs, 20, 19, cfg.data.max_pixels)
    full = list(label_training_batches(store, cfg.data, 5, 4, 0, 2, global_batch=2, steps_per_epoch=2))
    resumed = list(label_training_batches(store, cfg.data, 5, 4, 1, 2, global_batch=2, steps_per_epoch=2, skip_batches=1))
    assert len(full) == 4 and len(resumed) == 1
    for key in ("labels", "target", "z"):
        np.testing.assert_array_equal(resumed[0][key].numpy(), full[3][key].numpy())
    assert not np.array_equal(full[0]["z"].numpy(), full[2]["z"].numpy())  # each epoch draws new latents
