"""Robust image decoding: any photo a user may hand us becomes an RGB ``uint8`` array, or a one-line error.

Handled here so nothing downstream (tf.data, MediaPipe, metrics) ever sees an odd image:
EXIF orientation, grayscale / palette / RGBA / CMYK to RGB, 16-bit to 8-bit, animated files,
zero-byte, truncated or non-image files, and images too large to decode safely.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reface_tf.errors import DataError

# The image files every command reads, one list for all: prepare.py (raw photos), predict.py (photos), and the
# pairs of train.py / evaluate.py / tune.py and the augment tool. All of them decode with load_rgb, so a format
# one command takes is never silently left out by another; an animated GIF or a multi-page TIFF is refused by the
# decoder with its reason rather than ignored.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 50_000_000  # ~50 MP: larger images are refused instead of exhausting memory


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_folder(folder: str | os.PathLike, suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
                read_elsewhere: tuple[str, ...] = ()) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The image files directly in ``folder`` (sorted), and every other entry with the reason it is not read.

    ``read_elsewhere`` names files the command reads for another purpose (e.g. ``groups.csv``): in neither
    list. Commands print or report the second list, so nothing in a folder is left out without a word.
    """
    read: list[Path] = []
    ignored: list[tuple[Path, str]] = []
    for p in sorted(Path(folder).iterdir()):
        if p.name in read_elsewhere and p.is_file():
            continue
        reason = skip_reason(p, suffixes)
        (ignored.append((p, reason)) if reason else read.append(p))
    return read, ignored


def skip_reason(path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> str | None:
    """Why a folder entry is not read as an image (None if it is): the same words in every command."""
    if path.is_dir():
        return "a sub-folder; only files directly in the folder are read"
    if path.name.startswith("."):
        return "hidden file (name starts with '.'); not an image this command reads"
    if path.suffix.lower() not in suffixes:
        return (f"not an image file this command reads (suffix {path.suffix or 'none'}; reads "
                f"{', '.join(suffixes)})")
    return None


def is_data_entry(path: Path) -> bool:
    """False for entries nobody means as data (hidden files, sub-folders): named, but never an error."""
    return not (path.is_dir() or path.name.startswith("."))


def _to_uint8_array(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an HxWx3 uint8 RGB array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grayscale: scale the full range down, never clip at 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        gray = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(arr * 255.0 if arr.max(initial=0) <= 1.0 else arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency onto black so alpha never leaks random colour values into training.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


# EXIF orientation tag value -> the array operation that shows the picture upright (as ImageOps.exif_transpose).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _decode_plain_jpeg(data: bytes, img: Image.Image) -> np.ndarray | None:
    """Decode a complete 8-bit colour JPEG with OpenCV, or return None for PIL to handle.

    OpenCV decodes straight into an RGB array: about 3 ms for a 1 MP photo where PIL's decode, EXIF copy and
    conversion to numpy take about 10 ms (both are libjpeg-turbo with the same settings, and give the same
    pixels). OpenCV only warns on stderr about damaged data, so PIL first reads the whole compressed stream at
    1/8 scale (about 2 ms): a damaged file raises there, exactly as on the PIL path. Anything unusual (CMYK,
    grayscale, a file without its end marker, a decode failure) goes to the PIL path, which knows how to
    convert it or how to explain what is wrong.
    """
    if img.format != "JPEG" or img.mode != "RGB" or not data.endswith(b"\xff\xd9"):
        return None
    import cv2

    with Image.open(io.BytesIO(data)) as probe:
        probe.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
        probe.load()  # OSError on a damaged stream, reported by load_rgb like any corrupt file
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if rgb is None or rgb.shape != (img.height, img.width, 3):
        return None
    orient = _ORIENT.get(img.getexif().get(0x0112, 1))
    return rgb if orient is None else np.ascontiguousarray(orient(rgb))


def load_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to an ``HxWx3`` RGB ``uint8`` array with EXIF orientation applied.

    Raises :class:`DataError` with a one-line reason for anything that is not a usable still image.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: zero-byte file; re-export or remove it")
    try:
        data = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise DataError(
                        f"{path}: {width}x{height} = {width * height / 1e6:.1f} MP exceeds the "
                        f"{max_pixels / 1e6:.0f} MP limit; downscale it or raise the pixel limit"
                    )
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    raise DataError(f"{path}: animated image with {frames} frames; export a single still frame")
                fast = _decode_plain_jpeg(data, img)
                if fast is not None:
                    return fast
                img.load()
                # 16-bit RGB PNGs arrive here already reduced to 8 bits by PIL; 16-bit gray is scaled in
                # _to_uint8_array.
                return _to_uint8_array(ImageOps.exif_transpose(img))
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (unrecognised format); remove it or convert it to PNG/JPEG") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large to decode safely; downscale it") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: corrupt or truncated image ({err}); re-export or remove it") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) after EXIF orientation, read from the header only."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read image header ({err})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def save_png_atomic(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB/gray uint8 array as PNG via a temporary file and rename, so no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(tmp, format="PNG")
    os.replace(tmp, path)


def resize_uint8(rgb: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Resize to ``size x size``: area averaging when shrinking (no aliasing), bilinear when enlarging; nearest
    neighbour with ``nearest`` (label maps: every output pixel is one of the input's classes, never a blend)."""
    import cv2  # here: reading images needs only PIL

    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    if nearest:
        return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)
    shrinking = rgb.shape[0] > size or rgb.shape[1] > size
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def tile_images(images, columns: int) -> np.ndarray:
    """Same-size images ``[N, H, W, C]`` as one picture, ``columns`` a row, the last row padded with black."""
    images = np.asarray(images)
    rows = [images[i:i + columns] for i in range(0, len(images), columns)]
    blank = np.zeros_like(images[0])
    return np.concatenate([np.concatenate(list(r) + [blank] * (columns - len(r)), axis=1) for r in rows], axis=0)

