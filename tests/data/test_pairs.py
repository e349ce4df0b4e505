import json

import numpy as np
import pytest

from reface_tf.config import DataConfig
from reface_tf.data.pairs import Pair, load_pair_rgb, read_split, scan_dataset, split_pairs, write_splits
from reface_tf.errors import DataError

from .conftest import gradient_rgb, truncated_jpeg_bytes


@pytest.fixture
def messy_folders(tmp_path, write_image):
    for stem in ("p1", "p2", "p3"):
        write_image(f"ds/A/{stem}.png")
        write_image(f"ds/B/{stem}.jpg", quality=95)
    write_image("ds/A/only_input.png")
    write_image("ds/B/only_target.png")
    (tmp_path / "ds/A/zero.png").write_bytes(b"")
    write_image("ds/B/zero.png")
    (tmp_path / "ds/A/text.png").write_text("not an image")
    write_image("ds/B/text.png")
    (tmp_path / "ds/A/trunc.jpg").write_bytes(truncated_jpeg_bytes())
    write_image("ds/B/trunc.png")
    write_image("ds/A/small.png", gradient_rgb(20, 30))
    write_image("ds/B/small.png")
    return tmp_path / "ds"


def test_folders_layout_reports_every_problem_and_keeps_valid_pairs(messy_folders, tmp_path):
    scan = scan_dataset(messy_folders, DataConfig())
    assert scan.layout == "folders"
    assert [p.id for p in scan.pairs] == ["p1", "p2", "p3"]
    reasons = {p.path.split("/")[-1]: p.reason for p in scan.problems}
    assert "unmatched" in reasons["only_input.png"] and "unmatched" in reasons["only_target.png"]
    assert "zero-byte" in reasons["zero.png"]
    assert "not an image" in reasons["text.png"]
    assert "corrupt or truncated" in reasons["trunc.jpg"]
    assert "size mismatch" in reasons["small.png"]
    assert len(scan.problems) == 6
    assert scan.summary().startswith("3 valid pairs") and "skipped 6" in scan.summary()
    scan.write_report(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["skipped"] == 6


def test_hidden_files_and_sub_folders_are_named_but_do_not_trip_strict(tmp_path, write_image):
    for side in ("A", "B"):
        write_image(f"ds/{side}/p1.png")
        (tmp_path / f"ds/{side}/.DS_Store").write_bytes(b"\0")
    (tmp_path / "ds/A/old").mkdir()
    scan = scan_dataset(tmp_path / "ds", DataConfig(strict=True))
    assert [p.id for p in scan.pairs] == ["p1"]
    named = {p.path.split("/ds/")[-1]: p.reason for p in scan.problems}
    assert set(named) == {"A/.DS_Store", "B/.DS_Store", "A/old"}
    assert named["A/.DS_Store"].startswith("hidden file") and named["A/old"].startswith("a sub-folder")


def test_tiff_and_gif_pairs_are_read_and_other_suffixes_named_as_not_images(tmp_path, write_image):
    """train.py / evaluate.py read the formats prepare.py and predict.py read: TIFF and GIF pairs are used in
    both layouts, and a file of another suffix is named as not an image (not as an unmatched stem)."""
    write_image("ds/A/p1.tif")
    write_image("ds/B/p1.gif")
    write_image("ds/A/p2.TIFF")
    write_image("ds/B/p2.png")
    (tmp_path / "ds/A/notes.txt").write_text("x")
    scan = scan_dataset(tmp_path / "ds", DataConfig())
    assert [p.id for p in scan.pairs] == ["p1", "p2"]
    (problem,) = scan.problems
    assert problem.path.endswith("A/notes.txt") and problem.reason.startswith("not an image file")
    assert ".tif" in problem.reason and problem.invalid
    with pytest.raises(DataError, match=r"--strict: 1 invalid file\(s\).*notes.txt"):
        scan_dataset(tmp_path / "ds", DataConfig(strict=True))

    sbs = tmp_path / "sbs"
    write_image("sbs/x.tif", np.concatenate([gradient_rgb(), 255 - gradient_rgb()], axis=1))
    write_image("sbs/y.gif", np.concatenate([gradient_rgb(), 255 - gradient_rgb()], axis=1))
    scan = scan_dataset(sbs, DataConfig())  # found as side-by-side from the TIFF and GIF alone
    assert scan.layout == "side_by_side" and [p.id for p in scan.pairs] == ["x", "y"] and not scan.problems
    a, b = load_pair_rgb(scan.pairs[0])  # default --ab-order target_input: the input is the right half
    assert np.array_equal(a, 255 - gradient_rgb()) and np.array_equal(b, gradient_rgb())


def test_strict_aborts_with_the_count_and_first_problem(messy_folders):
    with pytest.raises(DataError, match=r"--strict: 6 invalid file\(s\)"):
        scan_dataset(messy_folders, DataConfig(strict=True))


def test_empty_or_missing_dataset_is_one_clear_line(tmp_path):
    (tmp_path / "empty" / "A").mkdir(parents=True)
    (tmp_path / "empty" / "B").mkdir()
    with pytest.raises(DataError, match="no valid pairs .*it is empty"):
        scan_dataset(tmp_path / "empty", DataConfig())
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nope", DataConfig())
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither A/ and B/ folders nor side-by-side images"):
        scan_dataset(tmp_path / "junk", DataConfig())


@pytest.mark.parametrize("order, input_is_right", [("target_input", True), ("input_target", False)])
def test_side_by_side_halves_follow_ab_order(tmp_path, write_image, order, input_is_right):
    left, right = gradient_rgb(), 255 - gradient_rgb()
    write_image("ab/x.png", np.concatenate([left, right], axis=1))
    scan = scan_dataset(tmp_path / "ab", DataConfig(ab_order=order))
    a, b = load_pair_rgb(scan.pairs[0])
    assert np.array_equal(a, right if input_is_right else left)
    assert np.array_equal(b, left if input_is_right else right)


def test_csv_manifest_with_relative_paths_and_groups(tmp_path, write_image):
    write_image("imgs/in1.png")
    write_image("imgs/out1.png")
    (tmp_path / "pairs.csv").write_text("input,target,group\nimgs/in1.png,imgs/out1.png,alice\nimgs/missing.png,imgs/out1.png,bob\n")
    scan = scan_dataset(tmp_path / "pairs.csv", DataConfig())
    assert scan.layout == "csv" and len(scan.pairs) == 1 and scan.pairs[0].group == "alice"
    assert "file not found" in scan.problems[0].reason


def _pairs(groups: dict[str, int]) -> list[Pair]:
    return [Pair(f"{g}_{i}", f"{g}_{i}.png", f"{g}_{i}.png", g) for g, n in groups.items() for i in range(n)]


def test_split_is_deterministic_and_never_splits_a_group():
    pairs = _pairs({f"person{k}": 1 + k % 4 for k in range(30)})
    a = split_pairs(pairs, 0.1, 0.2, seed=7)
    assert a == split_pairs(list(reversed(pairs)), 0.1, 0.2, seed=7)
    assert a != split_pairs(pairs, 0.1, 0.2, seed=8)
    assert sum(len(v) for v in a.values()) == len(pairs)
    groups = {name: {p.group for p in a[name]} for name in a}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"]) and not (groups["val"] & groups["test"])
    assert 0.1 * len(pairs) * 0.5 <= len(a["test"]) <= 0.2 * len(pairs) + 3


def test_group_pattern_keeps_frames_of_one_person_together(tmp_path, write_image):
    for person in range(6):
        for frame in range(3):
            write_image(f"g/A/p{person}_{frame}.png")
            write_image(f"g/B/p{person}_{frame}.png")
    scan = scan_dataset(tmp_path / "g", DataConfig(group_pattern=r"^(p\d+)_\d+$"))
    split = split_pairs(scan.pairs, 0.2, 0.2, seed=0)
    for name in ("val", "test"):
        assert split[name] and len(split[name]) % 3 == 0
    write_splits(tmp_path / "run", split, scan.root, 0)
    assert read_split(tmp_path / "run", "test") == split["test"]
