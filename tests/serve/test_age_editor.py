"""Naming target classes for edit.py --age, refusing a model that is not an age editor, and the edit batch:
every target in one strip, a photo without a face reported while the batch goes on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.commands.edit import edit_main
from reface_tf.errors import ConfigError, ModelError
from reface_tf.serve.age_editor import AgeEditor, age_editor_from_export, target_classes
from reface_tf.serve.archive import META_FORMAT
from reface_tf.serve.edit import age_strip, class_slug, edit_photos

DECADES = ("0-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71-80", "81+")


def test_targets_by_name_list_age_in_years_or_all():
    assert target_classes("all", DECADES) == list(range(9))
    assert target_classes("61-70", DECADES) == [6]
    assert target_classes(" 0-10 , 81+,0-10", DECADES) == [0, 8]  # order kept, duplicates dropped
    assert target_classes("65", DECADES) == [6] and target_classes("99", DECADES) == [8]
    assert target_classes("Simulated  Older", ("original", "simulated older")) == [1]


@pytest.mark.parametrize("spec, names", [("61-71", DECADES), ("65", ("original", "simulated older")),
                                         ("", DECADES), ("old", DECADES)])
def test_an_unknown_target_names_every_class(spec, names):
    with pytest.raises(ConfigError, match=r"^--age .*not a class of this model; use one of: " + names[0]):
        target_classes(spec, names)


def fake_export(folder, task):
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "reface_meta.json").write_text(json.dumps({"format": META_FORMAT, "task": task}))
    return folder


def test_a_model_of_another_kind_is_refused_with_the_command_to_use(tmp_path, capsys):
    export = fake_export(tmp_path / "export" / "1", "dcgan")
    with pytest.raises(ModelError, match=r"a dcgan export, not an age editor; sample it with sample.py"):
        age_editor_from_export(export)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    assert run_cli(edit_main, [str(tmp_path / "x.png"), "--model", str(export)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an age editor" in err, err


class OneFaceLandmarker:
    """Finds one face (synthetic landmarks, 96 px wide at (20, 10)) only in photos wider than 100 px."""

    def detect(self, rgb):
        from reface_tf.faces.landmarks import DetectedFace
        from tests.faces.test_align import synthetic_landmarks

        if rgb.shape[1] <= 100:
            return []
        points = synthetic_landmarks(np.array([[0.4, 0.0, 20.0], [0.0, 0.4, 10.0]])).astype(np.float32)
        box = (*points.min(axis=0), *points.max(axis=0))
        return [DetectedFace(points, tuple(float(v) for v in box), 0.9)]


def test_edit_batch_writes_every_target_and_a_strip_and_goes_on_past_a_photo_without_a_face(tmp_path):
    size = 32
    editor = AgeEditor(edit=lambda faces, classes: np.broadcast_to(
                           (np.asarray(classes) * 100 % 256).astype(np.uint8)[:, None, None, None], faces.shape).copy(),
                       encode=lambda faces: np.zeros((len(faces), 4), np.float32),
                       class_names=("original", "81+"), resolution=size, checkpoint="c", description="fake")
    photos = []
    for name, width in (("face.png", 160), ("blank.png", 60)):
        Image.fromarray(np.full((140, width, 3), 200, np.uint8)).save(tmp_path / name)
        photos.append(tmp_path / name)
    messages = []
    result = edit_photos(photos, editor, [0, 1], OneFaceLandmarker(), tmp_path / "out",
                         on_result=lambda photo, msg: messages.append(msg))
    assert [p.name for p in result.written[0]] == ["face_age_original.png", "face_age_81plus.png", "face_age_strip.png"]
    assert result.failed[0][0].name == "blank.png" and "no face" in result.failed[0][1]
    assert any(m.startswith("skipped") and "blank.png" in m for m in messages)
    original = np.asarray(Image.open(tmp_path / "out" / "face_age_original.png"))
    older = np.asarray(Image.open(tmp_path / "out" / "face_age_81plus.png"))
    assert original.shape == older.shape == (140, 160, 3)
    assert (original < 200).any() and (older != original).any()          # the face was pasted back, per class
    assert (older[0, 0] == 200).all()                                    # the corner is the photo's
    strip = np.asarray(Image.open(tmp_path / "out" / "face_age_strip.png"))
    assert strip.shape[1] == 3 * 160 + 2 * 8


def test_strip_scales_photos_down_to_its_height_and_names_classes_for_files():
    strip = age_strip(np.zeros((800, 600, 3), np.uint8), [np.zeros((800, 600, 3), np.uint8)], ["61-70"], height=200)
    assert strip.shape[0] == 200 + 28 and strip.shape[1] == 2 * 150 + 8
    assert [class_slug(n) for n in ("61-70", "81+", "simulated older")] == ["61-70", "81plus", "simulated_older"]


@pytest.mark.parametrize("extra, needle", [(["--refine-steps", "-1"], "--refine-steps -1: must be >= 0"),
                                           (["--source-class", "0-10"], "--source-class: only with --refine-steps"),
                                           (["--margin", "0.6"], "--margin 0.6")])
def test_bad_options_are_one_line_errors_before_anything_loads(tmp_path, capsys, extra, needle):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    assert run_cli(edit_main, [str(tmp_path / "x.png"), "--model", str(tmp_path / "nothing"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
