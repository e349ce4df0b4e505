import numpy as np
import pytest
from PIL import Image, ImageOps

from reface_tf.data.images import image_size, load_rgb, save_png_atomic
from reface_tf.errors import DataError

from .conftest import gradient_rgb, truncated_jpeg_bytes


def test_png_round_trip_is_exact(tmp_path):
    rgb = gradient_rgb()
    save_png_atomic(tmp_path / "a.png", rgb)
    assert np.array_equal(load_rgb(tmp_path / "a.png"), rgb)
    assert not list(tmp_path.glob(".*"))


def test_exif_orientation_is_applied(tmp_path):
    rgb = gradient_rgb()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers rotate 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "r.png", exif=exif)
    out = load_rgb(tmp_path / "r.png")
    assert out.shape == (60, 40, 3)
    assert np.array_equal(out, np.rot90(rgb, k=-1))
    assert image_size(tmp_path / "r.png") == (40, 60)


def _count_fast_decodes(monkeypatch):
    import reface_tf.data.images as images

    calls, real = [], images._decode_plain_jpeg

    def spy(*args):
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(images, "_decode_plain_jpeg", spy)
    return calls


def _pil_reference(path):
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_fast_path_gives_the_pixels_pil_gives(tmp_path, monkeypatch, orientation, progressive):
    """Plain colour JPEGs are decoded by OpenCV; orientation and pixels must match PIL's decode exactly."""
    decoded = _count_fast_decodes(monkeypatch)
    y, x = np.mgrid[0:48, 0:80]
    rgb = np.stack([x * 3, y * 5, (x * y) % 256], axis=-1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=90, progressive=progressive)
    out = load_rgb(path)
    expected = _pil_reference(path)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.shape == expected.shape == ((80, 48, 3) if orientation >= 5 else (48, 80, 3))
    assert np.array_equal(out, expected)
    assert decoded == [True]


def test_jpeg_fast_path_agrees_with_pil_on_a_real_photo(tmp_path, monkeypatch):
    from skimage import data

    decoded = _count_fast_decodes(monkeypatch)
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=85, subsampling=2)  # 4:2:0 chroma, as cameras write
    assert np.array_equal(load_rgb(path), _pil_reference(path))
    Image.fromarray(data.astronaut()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    (tmp_path / "half.jpg").write_bytes(path.read_bytes()[:-2000])
    load_rgb(tmp_path / "cmyk.jpg")
    with pytest.raises(DataError, match="truncated"):
        load_rgb(tmp_path / "half.jpg")
    assert decoded == [True, False, False]  # CMYK and a file without its end marker take the PIL path
    damaged = bytearray(path.read_bytes())  # complete file, scrambled entropy-coded data in the middle
    for i in range(2000, 6000, 7):
        damaged[i] = (damaged[i] * 31 + 7) % 256
    (tmp_path / "damaged.jpg").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="damaged.jpg: corrupt or truncated"):
        load_rgb(tmp_path / "damaged.jpg")


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK"])
def test_any_mode_becomes_rgb_uint8(tmp_path, mode):
    img = Image.fromarray(gradient_rgb()).convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    out = load_rgb(path)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8


def test_transparent_pixels_become_black_not_random_colour(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200  # colour hidden under zero alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert load_rgb(tmp_path / "t.png").max() == 0


def test_16_bit_gray_png_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535]], np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = load_rgb(tmp_path / "g16.png")
    assert out[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("name, content, reason", [
    ("empty.jpg", b"", "zero-byte"),
    ("text.jpg", b"this is not an image\n", "not an image"),
    ("half.jpg", None, "corrupt or truncated"),
])
def test_broken_files_give_one_line_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(truncated_jpeg_bytes() if content is None else content)
    with pytest.raises(DataError) as err:
        load_rgb(path)
    assert str(path) in str(err.value) and reason in str(err.value) and "\n" not in str(err.value)


def test_animated_gif_and_oversize_are_refused(tmp_path):
    frames = [Image.fromarray(gradient_rgb()), Image.fromarray(255 - gradient_rgb())]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(DataError, match="animated image with 2 frames"):
        load_rgb(tmp_path / "anim.gif")
    save_png_atomic(tmp_path / "big.png", gradient_rgb())
    with pytest.raises(DataError, match="exceeds the 0 MP limit"):
        load_rgb(tmp_path / "big.png", max_pixels=1000)


def _folder_of_every_kind(folder, rgb):
    """One still image per suffix every command reads, plus one entry of each kind that is never read."""
    from reface_tf.data.images import IMAGE_SUFFIXES

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, suffix in enumerate(IMAGE_SUFFIXES):
        name = f"img{i}{suffix.upper() if i % 2 else suffix}"  # suffixes match whatever their case
        Image.fromarray(rgb).save(folder / name)
        names.append(name)
    (folder / "notes.txt").write_text("x")
    (folder / "scan.heic").write_bytes(b"\0" * 16)
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "old").mkdir()
    return names, {"notes.txt": "not an image file", "scan.heic": "not an image file",
                   ".DS_Store": "hidden file", "old": "a sub-folder"}


def test_every_command_reads_the_same_image_files_and_names_the_rest_alike(tmp_path):
    """prepare.py, predict.py and the pair discovery of train.py / evaluate.py read one list of suffixes
    (TIFF and GIF included) and name every other entry of a folder with the same reason."""
    from reface_tf.config import DataConfig
    from reface_tf.data.images import IMAGE_SUFFIXES
    from reface_tf.data.pairs import scan_dataset
    from reface_tf.faces.prepare import discover_pairs
    from reface_tf.serve.predict import list_photos

    assert {".tif", ".tiff", ".gif", ".webp", ".bmp"} <= set(IMAGE_SUFFIXES)
    names, others = _folder_of_every_kind(tmp_path / "photos", gradient_rgb(40, 60))
    photos, ignored = list_photos(tmp_path / "photos")
    assert [p.name for p in photos] == names
    predict_reasons = {p.name: reason for p, reason in ignored}

    for side in "AB":
        _folder_of_every_kind(tmp_path / "raw" / side, gradient_rgb(40, 60))
    found = discover_pairs(tmp_path / "raw")
    assert [p.stem for p in found.pairs] == [n.rsplit(".", 1)[0] for n in names]
    prepare_reasons = {f"{p['side']}/{p['file'].rsplit('/', 1)[-1]}": p["reason"] for p in found.problems}
    assert all(p["kind"] == "not read" for p in found.problems)

    side_by_side = tmp_path / "sbs"
    names_sbs, _ = _folder_of_every_kind(side_by_side, gradient_rgb(40, 60))
    (side_by_side / "groups.csv").write_text("stem,group\n")  # read as the groups file: neither a pair nor skipped
    scan = scan_dataset(side_by_side, DataConfig())
    assert scan.layout == "side_by_side" and [p.id for p in scan.pairs] == [n.rsplit(".", 1)[0] for n in names_sbs]
    pairs_reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in scan.problems}

    for name, phrase in others.items():
        reasons = {predict_reasons[name], prepare_reasons[f"A/{name}"], prepare_reasons[f"B/{name}"], pairs_reasons[name]}
        assert len(reasons) == 1 and reasons.pop().startswith(phrase), name  # one wording everywhere
    assert set(predict_reasons) == set(pairs_reasons) == set(others)
    assert ".tiff" in predict_reasons["notes.txt"]  # says what would have been read
