"""Age-group labels: group parsing, each label source from files written here, and the one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reface_tf.data.age_labels import (DEFAULT_AGE_GROUPS, AgeGroups, detect_source, imdb_wiki_age,
                                       read_class_labels)
from reface_tf.errors import ConfigError, DataError


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path)
    return path


# ------------------------------------------------------------------------------------------------- groups


def test_default_groups_end_with_the_estimators_last_bin_and_an_open_group():
    assert DEFAULT_AGE_GROUPS.names == ("0-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71-80", "81+")
    assert len(DEFAULT_AGE_GROUPS) == 9
    assert DEFAULT_AGE_GROUPS.class_of(0) == 0
    assert DEFAULT_AGE_GROUPS.class_of(10.9) == 0  # whole years: 10.9 is "10"
    assert DEFAULT_AGE_GROUPS.class_of(11) == 1
    assert DEFAULT_AGE_GROUPS.class_of(35) == 3
    assert DEFAULT_AGE_GROUPS.class_of(80.5) == 7
    assert DEFAULT_AGE_GROUPS.class_of(104) == 8
    assert DEFAULT_AGE_GROUPS.centre(2) == 26.0


def test_parse_accepts_spaces_and_a_closed_last_group():
    groups = AgeGroups.parse(" 0-19 , 20-39,40-59 ")
    assert groups.names == ("0-19", "20-39", "40-59") and str(groups) == "0-19,20-39,40-59"
    with pytest.raises(DataError, match="none of the --age-groups"):
        groups.class_of(60)
    with pytest.raises(DataError, match="not a number of years"):
        groups.class_of(float("nan"))


@pytest.mark.parametrize("spec, words", [
    ("0-10,10-20", "overlaps"),
    ("0-10,12-20", "gap between '0-10' and '12-20'"),
    ("11-20,0-10", "out of order"),
    ("0-ten,11-20", "not a range of whole years"),
    ("0-10,11+,21-30", "only the last group may be open-ended"),
    ("20-10", "ends before it starts"),
    ("", "empty"),
])
def test_bad_group_specs_name_the_option_and_the_fix(spec, words):
    with pytest.raises(ConfigError) as err:
        AgeGroups.parse(spec)
    message = str(err.value)
    assert message.startswith("--age-groups") and words in message and "e.g. 0-10,11-20" in message
    assert "\n" not in message


# ------------------------------------------------------------------------------------------------- csv


def test_csv_ages_are_grouped_sorted_and_bad_rows_skipped_with_reasons(tmp_path):
    for name in ("b.png", "a.png", "sub/c.jpg", "d.png"):
        _image(tmp_path / name)
    (tmp_path / "labels.csv").write_text(
        "path,age\nb.png,45\na.png,3.5\nsub/c.jpg,90\nmissing.png,30\nd.png,old\n../x.png,20\na.png,50\n")
    labels = read_class_labels(tmp_path)
    assert labels.source == "csv"
    assert labels.paths == ["a.png", "b.png", "sub/c.jpg"]
    assert labels.classes.dtype == np.int32 and labels.classes.tolist() == [0, 4, 8]
    assert labels.ages.tolist() == [3.5, 45.0, 90.0]
    assert labels.class_names == DEFAULT_AGE_GROUPS.names
    reasons = dict(labels.skipped)
    assert reasons["missing.png"] == "file not found"
    assert "not a number" in reasons["d.png"]
    assert "inside it" in reasons["../x.png"]
    assert any("listed again" in r for p, r in labels.skipped if p == "a.png")


def test_csv_classes_by_index_or_name_with_classes_json(tmp_path):
    for name in ("x.png", "y.png", "z.png", "w.png"):
        _image(tmp_path / name)
    (tmp_path / "classes.json").write_text(json.dumps(["young", "old"]))
    (tmp_path / "labels.csv").write_text("path,class\nx.png,old\ny.png,0\nz.png,5\nw.png,middle\n")
    labels = read_class_labels(tmp_path, source="csv")
    assert labels.class_names == ("young", "old") and labels.ages is None
    assert labels.paths == ["x.png", "y.png"] and labels.classes.tolist() == [1, 0]
    reasons = dict(labels.skipped)
    assert "not below the number of classes 2" in reasons["z.png"]
    assert "neither an index nor one of young, old" in reasons["w.png"]
    assert labels.counts() == {"young": 1, "old": 1}
    assert labels.groups == ["x", "y"]  # no groups.csv: each image its own group
    assert labels.files() == [tmp_path / "x.png", tmp_path / "y.png"]


def test_csv_class_names_default_to_the_age_groups(tmp_path):
    _image(tmp_path / "x.png")
    (tmp_path / "labels.csv").write_text("path,class\nx.png,21-30\n")
    labels = read_class_labels(tmp_path, groups=AgeGroups.parse("0-20,21-30,31+"))
    assert labels.class_names == ("0-20", "21-30", "31+") and labels.classes.tolist() == [1]


def test_csv_with_a_wrong_header_or_bad_classes_json_is_one_line(tmp_path):
    _image(tmp_path / "x.png")
    (tmp_path / "labels.csv").write_text("file,years\nx.png,3\n")
    with pytest.raises(DataError, match="header path,age or path,class"):
        read_class_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("path,class\nx.png,0\n")
    (tmp_path / "classes.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="JSON list of distinct, non-empty class names"):
        read_class_labels(tmp_path)


def test_write_age_csv_round_trips_and_quotes_commas(tmp_path):
    from reface_tf.faces.pseudo_ages import write_age_csv

    _image(tmp_path / "a,b.png")
    _image(tmp_path / "c.png")
    write_age_csv(tmp_path, ["a,b.png", "c.png"], [33.333, 71.0])
    labels = read_class_labels(tmp_path)
    assert labels.paths == ["a,b.png", "c.png"] and labels.ages.tolist() == [33.33, 71.0]
    assert not list(tmp_path.glob(".*tmp"))


# ------------------------------------------------------------------------------------------------- utkface


def test_utkface_names_give_ages_and_malformed_names_are_skipped(tmp_path):
    good = ["25_0_1_20170116174525125.jpg.chip.jpg", "9_1_4_20170103213057382.jpg", "72_1_0_20170110131742543.jpg"]
    bad = ["39_1_20170116174525125.jpg.chip.jpg", "25_3_1_20170116174525125.jpg", "holiday.jpg"]
    for name in good + bad:
        _image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    labels = read_class_labels(tmp_path)
    assert labels.source == "utkface"
    assert labels.paths == sorted(good)
    assert dict(zip(labels.paths, labels.classes.tolist())) == {good[0]: 2, good[1]: 0, good[2]: 7}
    reasons = dict(labels.skipped)
    assert "not a UTKFace name" in reasons[bad[0]] and "not a UTKFace name" in reasons[bad[2]]
    assert "out of UTKFace's ranges" in reasons[bad[1]]
    assert "not an image file" in reasons["notes.txt"]


# ------------------------------------------------------------------------------------------------- imdb-wiki


def test_imdb_wiki_processed_age_folders(tmp_path):
    _image(tmp_path / "age" / "train" / "34" / "0.jpg")
    _image(tmp_path / "age" / "train" / "5" / "1.jpg")
    _image(tmp_path / "age" / "test" / "101" / "0.jpg")
    (tmp_path / "age" / "train" / "34" / "thumbs.db").write_text("x")
    for root in (tmp_path, tmp_path / "age"):
        labels = read_class_labels(root)
        assert labels.source == "imdb-wiki"
        assert len(labels) == 3
        by_path = dict(zip(labels.paths, labels.ages.tolist()))
        prefix = "age/" if root == tmp_path else ""
        assert by_path == {f"{prefix}test/101/0.jpg": 101.0, f"{prefix}train/34/0.jpg": 34.0, f"{prefix}train/5/1.jpg": 5.0}
        assert dict(zip(labels.paths, labels.classes.tolist()))[f"{prefix}train/34/0.jpg"] == 3
    split = read_class_labels(tmp_path / "age" / "train", source="imdb-wiki")
    assert split.paths == ["34/0.jpg", "5/1.jpg"]


def test_imdb_wiki_meta_csv_from_mat_fields(tmp_path):
    _image(tmp_path / "imdb_crop" / "01" / "nm0000001_rm1_1899-05-10_1968.jpg")
    _image(tmp_path / "wiki_crop" / "02" / "2_1970-07-01_2000.jpg")
    _image(tmp_path / "wiki_crop" / "03" / "3.jpg")
    # 719710 is MATLAB's datenum of 1970-07-01 (719529 = 1970-01-01, plus the 181 days of January to June).
    (tmp_path / "meta.csv").write_text(
        "full_path,dob,photo_taken\n"
        "imdb_crop/01/nm0000001_rm1_1899-05-10_1968.jpg,1899-05-10,1968\n"
        "wiki_crop/02/2_1970-07-01_2000.jpg,719710,2000\n"
        "wiki_crop/03/3.jpg,1990-01-01,1950\n")
    labels = read_class_labels(tmp_path)
    assert labels.source == "imdb-wiki"
    assert labels.ages.tolist() == [68.0, 29.0]  # whole years to 1 January of the photo year, as mat.py
    assert labels.classes.tolist() == [6, 2]
    assert "outside 0-101" in dict(labels.skipped)["wiki_crop/03/3.jpg"]


def test_imdb_wiki_age_matches_the_processing_script():
    assert imdb_wiki_age("1899-05-10", "1968") == 68
    assert imdb_wiki_age("1970-01-01", "2000") == 30  # born on 1 January: a full year more
    assert imdb_wiki_age("719529", "2000") == 30  # MATLAB datenum of 1970-01-01


# ------------------------------------------------------------------------------------------------- auto, errors


def test_auto_lists_what_it_looked_for_in_one_line(tmp_path):
    _image(tmp_path / "face.png")
    with pytest.raises(DataError) as err:
        read_class_labels(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for expected in ("labels.csv", "IMDB-WIKI", "UTKFace", "prepare_ages.py"):
        assert expected in message
    with pytest.raises(DataError, match="is not a folder"):
        read_class_labels(tmp_path / "nope")
    with pytest.raises(ConfigError, match="use one of auto, csv, utkface, imdb-wiki"):
        read_class_labels(tmp_path, source="celeba")


def test_labels_csv_wins_over_file_names(tmp_path):
    _image(tmp_path / "25_0_1_20170116174525125.jpg")
    (tmp_path / "labels.csv").write_text("path,age\n25_0_1_20170116174525125.jpg,60\n")
    assert detect_source(tmp_path) == "csv"
    assert read_class_labels(tmp_path).classes.tolist() == [5]


def test_a_source_with_no_usable_entries_names_the_first_problem(tmp_path):
    (tmp_path / "labels.csv").write_text("path,age\ngone.png,30\n")
    with pytest.raises(DataError, match="no labelled images .* gone.png: file not found"):
        read_class_labels(tmp_path)


# ------------------------------------------------------------------------------------------------- demo


@pytest.mark.slow
@pytest.mark.network
def test_demo_age_faces_are_two_simulated_classes_of_the_same_photos(tmp_path):
    from reface_tf.data.pairs import read_groups_file
    from reface_tf.samples import SamplesUnavailable, demo_age_faces

    try:
        root = demo_age_faces(tmp_path / "age_faces")
    except SamplesUnavailable as err:
        pytest.skip(f"demo faces unavailable: {err}")
    labels = read_class_labels(root)
    assert labels.source == "csv" and labels.class_names == ("original", "simulated older")
    counts = labels.counts()
    assert counts["original"] == counts["simulated older"] > 100
    stems = {p[:-4] for p in labels.paths}
    groups = read_groups_file(root)
    for path, cls in zip(labels.paths, labels.classes):
        if cls == 1:
            original = path.replace("_simulated_older", "")
            assert original in labels.paths  # the same photo is in the other class
            assert groups[path[:-4]] == groups[original[:-4]]  # and in the same group
    assert set(groups) == stems
    assert labels.groups == [groups[p[:-4]] for p in labels.paths]
    assert len(set(labels.groups)) < len(labels.paths) // 2  # the video frames of one woman share blocks
    assert "SIMULATED" in (root / "README.txt").read_text() and json.loads((root / "metadata.json").read_text())["simulated"]
    assert demo_age_faces(tmp_path / "age_faces") == root  # cached
