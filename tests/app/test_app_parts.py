"""The app's parts without a browser: finding exports and their tabs, label-map editing, upload decoding with
its one-line errors, the visible mark, and the model cards."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reface_tf.app import actions, labelmaps
from reface_tf.app.cards import model_card
from reface_tf.app.catalog import AGE, FACES, OUTCOME, SEGMAP, SKETCH, by_tab, missing_tabs_help, scan_exports
from reface_tf.errors import DataError
from reface_tf.serve.archive import META_FORMAT
from reface_tf.synth.segmaps import PALETTE


def fake_export(folder, **meta):
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "reface_meta.json").write_text(json.dumps({"format": META_FORMAT, **meta}))
    return folder


def test_exports_are_found_latest_version_first_with_their_tab_or_why_not(tmp_path):
    fake_export(tmp_path / "demo" / "1", task="pix2pix", input_domain="photo")
    fake_export(tmp_path / "demo" / "2", task="pix2pix", input_domain="photo")
    fake_export(tmp_path / "sketch" / "1", task="pix2pix", input_domain="sketch")
    fake_export(tmp_path / "maps" / "1", task="pix2pix", input_domain="label_map")
    fake_export(tmp_path / "spade" / "3", task="spade")
    fake_export(tmp_path / "dcgan" / "1", task="dcgan")
    fake_export(tmp_path / "age" / "1", task="age_encoder")
    fake_export(tmp_path / "odd" / "1", task="vqgan")
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "1" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    entries = {e.name: e for e in scan_exports(tmp_path)}
    assert set(entries) == {"demo/2", "sketch/1", "maps/1", "spade/3", "dcgan/1", "age/1", "odd/1", "broken/1"}
    assert [entries[n].tab for n in ("demo/2", "sketch/1", "spade/3", "dcgan/1", "age/1")] == [OUTCOME, SKETCH, SEGMAP, FACES, AGE]
    assert entries["maps/1"].tab is None and "predict.py" in entries["maps/1"].reason
    assert entries["odd/1"].tab is None and "'vqgan'" in entries["odd/1"].reason
    assert entries["broken/1"].tab is None and "reface_meta.json is missing or unreadable" in entries["broken/1"].reason
    assert list(by_tab(list(entries.values()))) == [OUTCOME, SKETCH, SEGMAP, FACES, AGE]
    assert missing_tabs_help(list(entries.values())) == []
    assert scan_exports(tmp_path / "nope") == []


def test_a_models_folder_without_exports_lists_the_commands_for_every_tab(tmp_path):
    lines = missing_tabs_help(scan_exports(tmp_path))
    assert len(lines) == 5 and "python export.py --run-dir runs/demo --out export/demo" in lines[0]
    assert "configs/sketch_demo.yaml" in lines[1] and "spade_demo.yaml" in lines[2]


def test_strokes_take_the_class_of_their_palette_colour_and_blended_edges_are_left_alone():
    ids = np.ones((8, 8), np.uint8)  # skin
    canvas = labelmaps.picture(ids, PALETTE, scale=4).copy()
    canvas[0:8, 0:8] = PALETTE[13]                           # hair over map pixels (0..1, 0..1)
    canvas[16:20, 16:20] = (PALETTE[1] // 2 + PALETTE[4] // 2)  # a blend of two colours: not a class
    out, changed = labelmaps.apply_strokes(ids, canvas, PALETTE)
    assert changed == 4 and (out[:2, :2] == 13).all() and (out[4, 4] == 1)
    rgba = np.concatenate([canvas, np.zeros(canvas.shape[:2] + (1,), np.uint8)], axis=-1)  # fully transparent
    assert labelmaps.apply_strokes(ids, rgba, PALETTE)[1] == 0
    with pytest.raises(DataError, match="not an RGB picture"):
        labelmaps.apply_strokes(ids, np.zeros((4, 4)), PALETTE)


def test_a_part_moves_and_is_replaced_leaving_the_class_around_it():
    ids = np.zeros((16, 16), np.uint8)
    ids[2:14, 2:14] = 1
    ids[6:8, 6:8] = 2  # a nose
    moved = labelmaps.move_class(ids, 2, dx=3, dy=-1)
    assert (moved[5:7, 9:11] == 2).all() and (moved == 2).sum() == 4 and moved[7, 6] == 1  # skin where it was
    assert (labelmaps.move_class(ids, 2, dx=20, dy=0) == 2).sum() == 0  # off the map: cut
    other = np.zeros_like(ids)
    other[10:12, 3:6] = 2
    swapped = labelmaps.replace_part(ids, other, 2)
    assert ((swapped == 2) == (other == 2)).all() and swapped[6, 6] == 1
    with pytest.raises(DataError, match="class 4 is not in this map"):
        labelmaps.move_class(ids, 4, 1, 1)
    with pytest.raises(DataError, match="the other map has no pixels of class 5"):
        labelmaps.replace_part(ids, other, 5)


def test_dataset_maps_are_listed_and_loaded_at_the_model_size(tmp_path):
    (tmp_path / "labels").mkdir()
    ids = np.zeros((64, 64), np.uint8)
    ids[10:40, 10:40] = 18
    Image.fromarray(ids).save(tmp_path / "labels" / "b.png")
    Image.fromarray(ids).save(tmp_path / "labels" / "a.png")
    assert labelmaps.list_maps(tmp_path / "labels") == ["a", "b"] and labelmaps.list_maps(None) == []
    small = labelmaps.load_map(tmp_path / "labels", "a", 32, 19)
    assert small.shape == (32, 32) and set(np.unique(small)) == {0, 18}  # nearest neighbour: no blended ids
    with pytest.raises(DataError, match="class 18 is not below this model's 10 classes"):
        labelmaps.load_map(tmp_path / "labels", "a", 32, 10)
    with pytest.raises(DataError, match="no such map"):
        labelmaps.load_map(tmp_path / "labels", "../labels/a", 32, 19)


def test_uploads_are_refused_in_one_line_naming_the_file_as_uploaded(tmp_path):
    text = tmp_path / "h4sh" / "notes.jpg"
    text.parent.mkdir()
    text.write_text("not a picture")
    with pytest.raises(DataError, match=r"^notes\.jpg: not an image") as err:
        actions.decode_upload(text)
    assert str(tmp_path) not in str(err.value) and "\n" not in str(err.value)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(big)
    with pytest.raises(DataError, match=r"^big\.png: .* MB is over the 0 MB upload limit"):
        actions.decode_upload(big, limits=actions.Limits(max_bytes=100))
    with pytest.raises(DataError, match=r"^big\.png: 300x300 .*exceeds"):
        actions.decode_upload(big, limits=actions.Limits(max_pixels=10_000))
    assert actions.decode_upload(big).shape == (300, 300, 3)
    with pytest.raises(DataError, match="the upload is gone"):
        actions.decode_upload(tmp_path / "gone.png")


def test_every_generated_picture_is_marked_and_small_ones_enlarged_whole():
    face = np.full((32, 32, 3), 200, np.uint8)
    shown = actions.for_display(face)
    assert shown.shape == (256, 256, 3)
    assert (shown[:200] == 200).all() and (shown[-20:, :40] != 200).any()  # the mark, bottom left only
    marked = actions.mark_synthetic(np.full((400, 600, 3), 200, np.uint8))
    assert (marked[:300] == 200).all() and (marked[-30:, :150] < 200).any()
    with pytest.raises(DataError, match="the canvas is empty"):
        actions.canvas_sketch(np.full((64, 64, 3), 255, np.uint8))
    strokes = np.zeros((64, 64, 4), np.uint8)
    strokes[10:20, 10:20] = (0, 0, 0, 255)
    sketch = actions.canvas_sketch(strokes)  # transparent canvas pixels are white paper
    assert sketch.shape == (64, 64, 3) and sketch[0, 0].tolist() == [255, 255, 255] and sketch[15, 15].tolist() == [0, 0, 0]


def test_model_cards_say_what_the_model_is_and_where_its_data_came_from(tmp_path):
    from reface_tf.app.catalog import ExportEntry

    data = tmp_path / "demo"
    data.mkdir()
    (data / "README.md").write_text("# x\n\n## Sources and licences\n\nFiles...\n\n- `obama` — face_recognition: MIT\n\n## Other\n- no\n")
    meta = {"task": "pix2pix", "input_domain": "photo", "image_size": 128, "simulated": True, "checkpoint": "ckpt-9",
            "config": {"data": {"root": str(data)}}}
    card = model_card(ExportEntry(tmp_path / "demo_export" / "1", meta, OUTCOME))
    assert "`ckpt-9`" in card and "128×128" in card and "- `obama` — face_recognition: MIT" in card
    assert "**SIMULATED.**" in card and "- no" not in card
    bare = model_card(ExportEntry(tmp_path / "x" / "1", {"task": "dcgan", "resolution": 64}, FACES))
    assert "not recorded" in bare and "SIMULATED" not in bare


@pytest.mark.parametrize("argv, needle", [(["--models", "no/such/folder"], "--models no/such/folder: no such folder"),
                                          (["--port", "70000"], "--port 70000: use a port between 1 and 65535"),
                                          (["--max-upload-mb", "0"], "--max-upload-mb and --max-megapixels must be positive")])
def test_bad_app_options_are_one_line_errors_before_anything_starts(argv, needle, capsys):
    from reface_tf.cli import run_cli
    from reface_tf.commands.app import app_main

    assert run_cli(app_main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
