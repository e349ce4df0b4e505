"""Whole-photo simulation: detect and align the face, translate it, warp it back and blend it in.

::

    photo ──landmarks──▶ align (similarity onto the training template, at the model size)
          ──model──▶ generated aligned face ──inverse warp──▶ photo frame
          ──feathered face-oval mask──▶ blend: only the face changes; every pixel outside it is the photo's own

The alignment must be the one the training pairs were prepared with. An export or run that records it
(``alignment`` in ``reface_meta.json``, the run's ``alignment.json``; see
:mod:`reface_tf.faces.alignment_settings`) is aligned with exactly those settings (:func:`prediction_alignment`);
otherwise with ``prepare.py``'s defaults (``--margin`` 0.2, reflected border) at the model size.
The largest face of a photo is processed. A photo that fails (unreadable, no face) is reported and skipped;
the batch goes on.

Example::

    source = source_from_export("export/reface/1")
    alignment, line = prediction_alignment(*export_alignment("export/reface/1"), source.cfg.data.image_size)
    with FaceLandmarker() as landmarker:
        result = simulate_photo(load_rgb("me.jpg"), source.translate, source.cfg.data.image_size, landmarker,
                                alignment=alignment)
    save_png_atomic("me_after.png", result.after)
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from reface_tf.data.images import IMAGE_SUFFIXES, list_folder, load_rgb, save_png_atomic
from reface_tf.errors import DataError, RefaceError
from reface_tf.faces.align import DEFAULT_MARGIN, TEMPLATE_ID, AlignedFace, align_face, face_mask, warp_back
from reface_tf.faces.alignment_settings import AlignmentSettings
from reface_tf.serve.source import Translate

log = logging.getLogger(__name__)


class NoFaceError(DataError):
    """No face was found in a photo."""


@dataclass
class Simulation:
    after: np.ndarray        # the photo with the simulated face, same size as the input
    alpha: np.ndarray        # float32 [H, W] blending weight of the generated face (0 = photo untouched)
    aligned: np.ndarray      # the aligned face given to the model
    generated: np.ndarray    # the model's aligned output
    faces: int               # faces found (the largest was used)


def default_feather(size: int) -> float:
    """Feather width in aligned pixels: 8 at 256, proportionally smaller for smaller models."""
    return max(2.0, size / 32.0)


def blend(photo: np.ndarray, generated_back: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``photo * (1 - alpha) + generated * alpha``, rounded; pixels with alpha 0 are the photo's, bit for bit."""
    a = alpha[..., None].astype(np.float64)
    mixed = np.rint(photo.astype(np.float64) * (1.0 - a) + generated_back.astype(np.float64) * a)
    mixed = np.clip(mixed, 0, 255).astype(np.uint8)
    return np.where(a > 0, mixed, photo)


def prediction_alignment(recorded: AlignmentSettings | None, origin: str | os.PathLike, size: int,
                         margin: float | None = None, landmarker_sha256: str | None = None
                         ) -> tuple[AlignmentSettings, str]:
    """The alignment to predict with, and one line saying which it is and where it came from.

    ``recorded`` (the model's training data settings, read from ``origin``) is used as it is; ``margin``
    (``--margin``) replaces its margin, with a warning when it differs. A template or landmarker model other
    than the recorded one is warned about. Without a record: ``margin`` (default 0.2) and a reflected border at
    the model ``size``, prepare.py's defaults.
    """
    if recorded is None:
        used = AlignmentSettings(size=size, margin=DEFAULT_MARGIN if margin is None else margin)
        how = "--margin" if margin is not None else "prepare.py's defaults"
        return used, f"alignment: {used.describe()} ({how}; no alignment recorded in {origin})"
    used, notes = recorded, []
    if margin is not None and margin != recorded.margin:
        log.warning("--margin %g differs from the margin %g the model's training data was aligned with (%s); "
                    "aligning with %g as asked", margin, recorded.margin, origin, margin)
        used = replace(used, margin=float(margin))
        notes.append(f"--margin {margin:g} instead of the recorded {recorded.margin:g}")
    if recorded.template != TEMPLATE_ID:
        log.warning("%s: the training data was aligned to template %s, this version of reface_tf aligns to %s; "
                    "predict with the version the model was trained with", origin, recorded.template, TEMPLATE_ID)
        used = replace(used, template=TEMPLATE_ID)
    if landmarker_sha256 and recorded.landmarker_sha256 and landmarker_sha256 != recorded.landmarker_sha256:
        log.warning("the face landmarker model (SHA-256 %s) is not the one the training data was aligned with "
                    "(%s, recorded in %s); landmarks and so the alignment may differ slightly",
                    landmarker_sha256[:12], recorded.landmarker_sha256[:12], origin)
    if used.size != size:
        notes.append(f"resized to the model's {size}x{size} as in training")
    return used, f"alignment: {used.describe()} (recorded in {origin}{''.join(f'; {n}' for n in notes)})"


def _at_model_size(aligned: AlignedFace, size: int) -> AlignedFace:
    """The aligned face resized to the model ``size`` the way training and evaluation resize dataset images,
    with its matrix and landmarks moved into the resized frame (pixel centres: ``x -> (x + 0.5) * s - 0.5``)."""
    if aligned.image.shape[0] == size:
        return aligned
    from reface_tf.data.pipeline import resize_uint8  # imports TensorFlow, which a model brings anyway

    scale = size / aligned.image.shape[0]
    shift = 0.5 * scale - 0.5
    matrix = aligned.matrix * scale
    matrix[:, 2] += shift
    return AlignedFace(resize_uint8(aligned.image, size), matrix,
                       (aligned.landmarks * scale + shift).astype(np.float32), aligned.face_size)


def align_largest_face(rgb: np.ndarray, size: int, landmarker, margin: float = DEFAULT_MARGIN,
                       alignment: AlignmentSettings | None = None) -> tuple[AlignedFace, int]:
    """The largest face of ``rgb`` aligned at the model ``size`` and how many faces were found; NoFaceError if none.

    ``alignment`` (see :func:`prediction_alignment`) replaces ``margin``: the face is aligned with its margin,
    border mode and size, then resized to the model ``size`` when that differs.
    """
    faces = landmarker.detect(rgb)
    if not faces:
        raise NoFaceError("no face found")
    how = alignment if alignment is not None else AlignmentSettings(size=size, margin=margin)
    try:
        aligned = align_face(rgb, faces[0].landmarks, size=how.size, margin=how.margin, border_mode=how.border_mode)
    except ValueError as err:  # degenerate landmarks
        raise DataError(f"alignment failed ({err})") from None
    return _at_model_size(aligned, size), len(faces)


def paste_back(rgb: np.ndarray, aligned: AlignedFace, generated: np.ndarray, feather: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(the photo with ``generated`` warped back into the aligned face's oval, the blending weight per pixel)."""
    size = aligned.image.shape[0]
    if generated.shape[-1] == 1:
        generated = np.repeat(generated, 3, axis=-1)
    hw = rgb.shape[:2]
    back, valid = warp_back(generated, aligned.matrix, hw)
    mask = face_mask(aligned.landmarks, size, default_feather(size) if feather is None else feather)
    mask_back, _ = warp_back(mask, aligned.matrix, hw)
    alpha = np.where(valid, mask_back.reshape(hw), 0.0).astype(np.float32)
    return blend(rgb, back, alpha), alpha


def simulate_photo(rgb: np.ndarray, translate: Translate, size: int, landmarker, margin: float = DEFAULT_MARGIN,
                   feather: float | None = None, alignment: AlignmentSettings | None = None) -> Simulation:
    """Simulate the translation on the largest face of ``rgb`` (uint8 RGB); NoFaceError if there is none
    (alignment as :func:`align_largest_face`)."""
    aligned, faces = align_largest_face(rgb, size, landmarker, margin, alignment)
    generated = np.asarray(translate(aligned.image[None]))[0]
    after, alpha = paste_back(rgb, aligned, generated, feather)
    return Simulation(after, alpha, aligned.image, generated, faces)


def before_after(before: np.ndarray, after: np.ndarray, gap: int = 8) -> np.ndarray:
    h, w = before.shape[:2]
    canvas = np.full((h, 2 * w + gap, 3), 255, np.uint8)
    canvas[:, :w], canvas[:, w + gap:] = before, after
    return canvas


def list_photos(path: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """One photo, or the photos directly inside a folder (sorted, every format prepare.py reads:
    ``IMAGE_SUFFIXES``), and the folder's other entries with the reason each is not processed.

    A folder without photos gives an empty first list; :func:`no_photos_error` words the error, after the caller
    has named the other entries."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass a photo or a folder of photos")
    if path.is_file():
        return [path], []
    return list_folder(path, IMAGE_SUFFIXES)


def no_photos_error(path: str | os.PathLike, ignored: list[tuple[Path, str]]) -> DataError:
    return DataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder"
                     + (f"; its {len(ignored)} other entries are named above" if ignored else ""))


@dataclass
class BatchResult:
    written: list[tuple[Path, Path]] = field(default_factory=list)  # (after, before_after) per photo
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)             # per successful photo


def predict_photos(photos: list[Path], translate: Translate, size: int, landmarker, out_dir: str | os.PathLike,
                   margin: float = DEFAULT_MARGIN, feather: float | None = None,
                   on_result: Callable[[Path, str], None] | None = None,
                   alignment: AlignmentSettings | None = None) -> BatchResult:
    """Run :func:`simulate_photo` on each photo, writing ``<stem>_after.png`` and ``<stem>_before_after.png``."""
    out_dir = Path(out_dir)
    result = BatchResult()
    stems = [p.stem for p in photos]
    for photo in photos:
        # a.jpg and a.png in one folder must not overwrite each other's results
        name = photo.stem if stems.count(photo.stem) == 1 else f"{photo.stem}_{photo.suffix.lstrip('.').lower()}"
        start = time.perf_counter()
        try:
            rgb = load_rgb(photo)
            sim = simulate_photo(rgb, translate, size, landmarker, margin, feather, alignment)
            after_path, pair_path = out_dir / f"{name}_after.png", out_dir / f"{name}_before_after.png"
            save_png_atomic(after_path, sim.after)
            save_png_atomic(pair_path, before_after(rgb, sim.after))
        except RefaceError as err:
            reason = f"{photo}: {err}" if str(photo) not in str(err) else str(err)
            result.failed.append((photo, reason))
            log.debug("skipped %s", reason)
            if on_result:
                on_result(photo, f"skipped: {reason}")
            continue
        seconds = time.perf_counter() - start
        result.written.append((after_path, pair_path))
        result.seconds.append(seconds)
        extra = f" ({sim.faces} faces, used the largest)" if sim.faces > 1 else ""
        if on_result:
            on_result(photo, f"{after_path} in {seconds:.2f} s{extra}")
    return result
