"""Age edits of ordinary photos: align the largest face as the generator's training faces were aligned, re-render
it with each target class (one encoder pass, one generator batch), warp each edit back and blend it into the photo
as ``predict.py`` blends its translations.

Writes, per photo, ``<stem>_age_<class>.png`` for every target and ``<stem>_age_strip.png``: the photo and each
edit side by side, captioned. A photo without a face is reported and the batch goes on.

Example::

    editor = age_editor_from_export("export/age_editor")
    with FaceLandmarker() as landmarker:
        result = edit_photos([Path("me.jpg")], editor, target_classes("all", editor.class_names), landmarker,
                             "results/")
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from reface_tf.data.images import load_rgb, save_png_atomic
from reface_tf.errors import RefaceError
from reface_tf.faces.alignment_settings import AlignmentSettings
from reface_tf.serve.age_editor import AgeEditor
from reface_tf.serve.predict import align_largest_face, paste_back

log = logging.getLogger(__name__)

STRIP_HEIGHT = 384   # photos in the strip are scaled to this height (never enlarged)
CAPTION_HEIGHT = 28
GAP = 8


def class_slug(name: str) -> str:
    """A class name as a file-name part: ``61-70`` stays, ``81+`` -> ``81plus``, ``simulated older`` -> ``simulated_older``."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", name.replace("+", "plus")).strip("_") or "class"


def _captioned(image: np.ndarray, caption: str, height: int) -> np.ndarray:
    import cv2

    scale = min(1.0, height / image.shape[0])
    if scale < 1.0:
        image = cv2.resize(image, (round(image.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
    band = np.full((CAPTION_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, caption, (4, CAPTION_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def age_strip(photo: np.ndarray, edits: Sequence[np.ndarray], captions: Sequence[str], height: int = STRIP_HEIGHT) -> np.ndarray:
    """The photo and each edit side by side, each under its caption, on white."""
    panels = [_captioned(im, cap, height) for im, cap in zip([photo, *edits], ["photo", *captions])]
    h = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + GAP * (len(panels) - 1)
    canvas = np.full((h, width, 3), 255, np.uint8)
    x = 0
    for p in panels:
        canvas[: p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + GAP
    return canvas


@dataclass
class EditResult:
    written: list[list[Path]] = field(default_factory=list)   # per photo: the edits, then the strip
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)        # per successful photo


def edit_photo(rgb: np.ndarray, editor: AgeEditor, targets: Sequence[int], landmarker,
               alignment: AlignmentSettings | None = None, feather: float | None = None, refine_steps: int = 0,
               source_class: int | Callable[[np.ndarray], int] = 0) -> tuple[list[np.ndarray], int, str]:
    """(the photo with its largest face edited to each class of ``targets``, faces found, a note on refinement);
    NoFaceError when the photo has no face."""
    aligned, faces = align_largest_face(rgb, editor.resolution, landmarker, alignment=alignment)
    if refine_steps > 0:
        from reface_tf.serve.refine import refine_latents, render_latents

        source = source_class(aligned.image) if callable(source_class) else source_class
        refined = refine_latents(editor, aligned.image[None], source, refine_steps)
        edits = render_latents(editor, np.repeat(refined.z, len(targets), axis=0), np.asarray(targets, np.int32))
        note = (f"; refined {refine_steps} steps from {editor.class_names[source]}: L1 "
                f"{refined.start_l1[0]:.3f} -> {refined.final_l1[0]:.3f} in {refined.seconds_per_image:.1f} s")
    else:
        edits = editor.edit(np.repeat(aligned.image[None], len(targets), axis=0), np.asarray(targets, np.int32))
        note = ""
    return [paste_back(rgb, aligned, face, feather)[0] for face in edits], faces, note


def edit_photos(photos: list[Path], editor: AgeEditor, targets: Sequence[int], landmarker, out_dir: str | os.PathLike,
                alignment: AlignmentSettings | None = None, feather: float | None = None,
                on_result: Callable[[Path, str], None] | None = None, refine_steps: int = 0,
                source_class: int | Callable[[np.ndarray], int] = 0) -> EditResult:
    """Edit the largest face of each photo to every class in ``targets`` and write the results (see the module doc).

    ``refine_steps`` > 0 refines each face's latent first (:mod:`reface_tf.serve.refine`), reconstructing it with
    ``source_class`` (a class, or a function of the aligned face giving one)."""
    out_dir, result = Path(out_dir), EditResult()
    stems = [p.stem for p in photos]
    names = [editor.class_names[k] for k in targets]
    for photo in photos:
        name = photo.stem if stems.count(photo.stem) == 1 else f"{photo.stem}_{photo.suffix.lstrip('.').lower()}"
        start = time.perf_counter()
        try:
            rgb = load_rgb(photo)
            afters, faces, note = edit_photo(rgb, editor, targets, landmarker, alignment, feather, refine_steps,
                                             source_class)
            paths = [out_dir / f"{name}_age_{class_slug(n)}.png" for n in names]
            for path, after in zip(paths, afters):
                save_png_atomic(path, after)
            strip = out_dir / f"{name}_age_strip.png"
            save_png_atomic(strip, age_strip(rgb, afters, names))
        except RefaceError as err:
            reason = f"{photo}: {err}" if str(photo) not in str(err) else str(err)
            result.failed.append((photo, reason))
            if on_result:
                on_result(photo, f"skipped: {reason}")
            continue
        seconds = time.perf_counter() - start
        result.written.append([*paths, strip])
        result.seconds.append(seconds)
        extra = f" ({faces} faces, edited the largest)" if faces > 1 else ""
        if on_result:
            on_result(photo, f"{strip} ({len(targets)} edits) in {seconds:.2f} s{extra}{note}")
    return result
