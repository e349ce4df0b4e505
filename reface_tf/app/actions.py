"""What each tab of the app computes, as plain functions of numpy arrays and loaded models (no web framework),
so they are tested without a browser. Every result that shows a generated face carries a visible mark.

Errors a person can fix (not an image, no face, a map without that class) are :class:`RefaceError` with one
line; the page shows that line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reface_tf.data.images import load_rgb
from reface_tf.errors import DataError
from reface_tf.serve.predict import before_after, simulate_photo

DEFAULT_MAX_BYTES = 20 * 1024 * 1024   # an upload larger than this is refused before it is decoded
DEFAULT_MAX_PIXELS = 40_000_000        # and a picture of more pixels after
MARK = "SYNTHETIC"


@dataclass
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def decode_upload(path: str | os.PathLike, shown_name: str | None = None, limits: Limits = Limits()) -> np.ndarray:
    """An uploaded file as uint8 RGB; DataError naming the file as the person called it (not the temporary
    path) for anything that is not a usable still image or is over the limits."""
    path = Path(path)
    name = shown_name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise DataError(f"{name}: the upload is gone; upload it again") from None
    if size > limits.max_bytes:
        raise DataError(f"{name}: {size / 2**20:.1f} MB is over the {limits.max_bytes / 2**20:.0f} MB upload limit; "
                        "send a smaller image")
    try:
        return load_rgb(path, max_pixels=limits.max_pixels)
    except DataError as err:
        raise DataError(str(err).replace(str(path), name)) from None


def mark_synthetic(image: np.ndarray, label: str = MARK) -> np.ndarray:
    """A copy of ``image`` with ``label`` written in its bottom-left corner on a dark band, scaled to its size."""
    out = np.ascontiguousarray(image, np.uint8).copy()
    h, w = out.shape[:2]
    scale = max(0.3, min(w, h) / 400)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(4 * scale))
    y0 = max(0, h - th - base - 2 * pad)
    band = out[y0:h, 0:min(w, tw + 2 * pad)]
    band[:] = (band * 0.35).astype(np.uint8)
    cv2.putText(out, label, (pad, h - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def for_display(image: np.ndarray, min_side: int = 256) -> np.ndarray:
    """A small model output enlarged by a whole factor (nearest neighbour: its pixels stay visible as they are)
    so that it is at least ``min_side`` pixels, then marked."""
    image = np.asarray(image, np.uint8)
    scale = max(1, -(-min_side // max(1, min(image.shape[:2]))))
    big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image
    return mark_synthetic(big)


# ---------------------------------------------------------------------------------------------- outcome


@dataclass
class Outcome:
    before: np.ndarray
    after: np.ndarray        # marked
    pair: np.ndarray         # before | after, marked; what the download holds
    faces: int


def simulate_outcome(rgb: np.ndarray, model, landmarker) -> Outcome:
    """The largest face of a photo translated by a Pix2Pix photo model and blended back (NoFaceError if none)."""
    sim = simulate_photo(rgb, model.translate, model.size, landmarker, alignment=model.alignment)
    label = "SIMULATED" if model.simulated else MARK
    after = mark_synthetic(sim.after, label)
    return Outcome(rgb, after, before_after(rgb, after), sim.faces)


# ---------------------------------------------------------------------------------------------- sketch


def canvas_sketch(canvas: np.ndarray) -> np.ndarray:
    """A drawn canvas (RGBA strokes over white, or RGB) as an RGB sketch; DataError when nothing is drawn."""
    canvas = np.asarray(canvas)
    if canvas.ndim == 2:
        canvas = np.repeat(canvas[..., None], 3, axis=-1)
    if canvas.shape[-1] == 4:
        alpha = canvas[..., 3:].astype(np.float32) / 255.0
        canvas = (canvas[..., :3] * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    if canvas.min() > 200:
        raise DataError("the canvas is empty; draw a face (or upload a sketch) first")
    return canvas[..., :3].astype(np.uint8)


def sketch_of_photo(rgb: np.ndarray, model, landmarker) -> np.ndarray:
    """The pencil sketch of a photo's aligned largest face, as the sketch demo's inputs were made."""
    from reface_tf.serve.predict import align_largest_face
    from reface_tf.synth.sketch import make_sketch

    aligned, _ = align_largest_face(rgb, model.size, landmarker, alignment=model.alignment)
    return make_sketch(aligned.image)


def face_from_sketch(sketch: np.ndarray, model) -> np.ndarray:
    """A sketch (any size, centred on the face as the training sketches) -> the model's face, marked."""
    from reface_tf.data.images import resize_uint8

    sketch = np.asarray(sketch, np.uint8)
    h, w = sketch.shape[:2]
    side = min(h, w)  # the centre square: training sketches are square, face-centred crops
    square = sketch[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return for_display(np.asarray(model.translate(resize_uint8(np.ascontiguousarray(square), model.size)[None]))[0])


# ---------------------------------------------------------------------------------------------- faces, age


def tile_row(images: np.ndarray) -> np.ndarray:
    return np.concatenate(list(images), axis=1)


def age_edits(rgb: np.ndarray, model, targets: list[int], landmarker) -> tuple[np.ndarray, int]:
    """(the captioned strip of the photo and its edits, each edit marked; faces found)."""
    from reface_tf.serve.edit import age_strip, edit_photo

    editor = model.editor
    afters, faces, _ = edit_photo(rgb, editor, targets, landmarker, model.alignment)
    label = "SIMULATED" if editor.simulated else MARK
    return age_strip(rgb, [mark_synthetic(a, label) for a in afters], [editor.class_names[k] for k in targets]), faces
