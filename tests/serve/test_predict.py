import shutil

import numpy as np
import pytest
from PIL import Image

from reface_tf.cli import run_cli
from reface_tf.data.images import load_rgb
from reface_tf.registry import RegistryFile, fetch
from reface_tf.commands.predict import predict_main
from reface_tf.serve.predict import blend, simulate_photo


def photo_path(name):
    return fetch(RegistryFile("face_recognition==1.3.0", f"tests/test_images/{name}", sdist=True))


def test_a_folder_gives_every_photo_format_prepare_reads_and_names_everything_else(tmp_path):
    from reface_tf.serve.predict import list_photos

    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for name in ("a.tif", "b.TIFF", "c.gif", "d.jpg", "e.webp"):
        img.save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "old").mkdir()
    photos, ignored = list_photos(tmp_path)
    assert [p.name for p in photos] == ["a.tif", "b.TIFF", "c.gif", "d.jpg", "e.webp"]
    reasons = {p.name: reason for p, reason in ignored}
    assert set(reasons) == {"notes.txt", ".DS_Store", "old"}
    assert "suffix .txt" in reasons["notes.txt"] and ".tiff" in reasons["notes.txt"]
    assert all(load_rgb(p).shape == (8, 8, 3) for p in photos)


def test_a_folder_without_photos_names_every_entry_before_the_error(tmp_path, capsys):
    """Nothing to process: each entry is named with its reason (not just the first), then one error line; the
    model is never loaded (it does not even exist here)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("scan.heic", "notes.txt", "raw.cr2", ".DS_Store"):
        (photos / name).write_bytes(b"\0" * 8)
    (photos / "old").mkdir()
    assert run_cli(predict_main, [str(photos), "--model", str(tmp_path / "no_model")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "no image files" in lines[-1] and "5 other entries" in lines[-1]
    named = {line.split(": ")[1].rsplit("/", 1)[-1]: line for line in lines[:-1]}
    assert set(named) == {"scan.heic", "notes.txt", "raw.cr2", ".DS_Store", "old"}
    assert all(line.startswith("skipped: ") for line in lines[:-1])
    assert "not an image file" in named["scan.heic"] and "hidden file" in named[".DS_Store"]
    assert "sub-folder" in named["old"]


def test_blend_keeps_every_pixel_with_zero_weight():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = np.zeros((20, 30), np.float32)
    alpha[5:10, 5:10] = 1.0
    alpha[5:10, 10] = 0.5
    out = blend(photo, generated, alpha)
    outside = alpha == 0
    assert np.array_equal(out[outside], photo[outside])
    assert np.array_equal(out[5:10, 5:10], generated[5:10, 5:10])
    half = np.rint((photo[5:10, 10].astype(float) + generated[5:10, 10]) / 2)
    assert np.abs(out[5:10, 10] - half).max() <= 1


class NoFaces:
    def detect(self, rgb):
        return []


def test_no_face_is_a_data_error():
    from reface_tf.serve.predict import NoFaceError

    with pytest.raises(NoFaceError, match="no face"):
        simulate_photo(np.zeros((32, 32, 3), np.uint8), lambda x: x, 64, NoFaces())


@pytest.mark.network
@pytest.mark.slow
def test_face_is_replaced_and_nothing_else_changes(exported, tmp_path):
    from reface_tf.faces.landmarks import FaceLandmarker
    from reface_tf.serve.export import load_exported

    model = load_exported(exported[0])
    rgb = load_rgb(photo_path("obama.jpg"))
    with FaceLandmarker() as landmarker:
        sim = simulate_photo(rgb, model.translate_uint8, model.image_size, landmarker)
    assert sim.after.shape == rgb.shape and sim.after.dtype == np.uint8
    outside = sim.alpha == 0
    assert np.array_equal(sim.after[outside], rgb[outside])
    changed = np.any(sim.after != rgb, axis=-1)
    assert changed.sum() > 0.02 * changed.size          # the face was replaced
    assert not changed[outside].any()
    ys, xs = np.nonzero(sim.alpha > 0)                  # ... only around the face (upper middle of the photo)
    assert 0.2 * rgb.shape[1] < xs.mean() < 0.8 * rgb.shape[1] and ys.mean() < 0.6 * rgb.shape[0]


@pytest.mark.network
@pytest.mark.slow
def test_batch_goes_on_past_bad_photos(exported, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(photo_path("obama.jpg"), photos / "obama.jpg")
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(photos / "blank.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert run_cli(predict_main, [str(photos), "--model", str(exported[0]), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "blank.png: no face found" in captured.err and "broken.jpg" in captured.err
    assert "1 of 3 photos done" in captured.out and "s per photo" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["obama_after.png", "obama_before_after.png"]
    before = Image.open(photos / "obama.jpg")
    assert Image.open(out / "obama_after.png").size == before.size
    assert Image.open(out / "obama_before_after.png").size == (2 * before.size[0] + 8, before.size[1])

    (photos / "obama.jpg").unlink()
    assert run_cli(predict_main, [str(photos), "--model", str(exported[0]), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "error: no photo succeeded" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_bad_arguments_are_one_line_errors(exported, tmp_path, capsys):
    def fails(argv, needle):
        assert run_cli(predict_main, argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err

    fails([str(tmp_path / "missing.jpg"), "--model", str(exported[0])], "does not exist")
    (tmp_path / "empty").mkdir()
    fails([str(tmp_path / "empty"), "--model", str(exported[0])], "no image files")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    fails([str(tmp_path / "x.png"), "--model", str(tmp_path / "empty")], "no saved_model.pb")
    fails([str(tmp_path / "x.png"), "--model", str(exported[0]), "--landmarker", str(tmp_path / "nope.task")],
          "file not found")
    fails([str(tmp_path / "x.png"), "--model", str(exported[0]), "--margin", "0.7"], "--margin")
