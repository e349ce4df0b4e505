"""Faces from label-map PNGs with a SPADE export: ``python predict.py maps/ --model export/spade --out faces/``.

Each PNG (one channel of class ids, or a colour picture in the class palette, any size) goes through the
export's ``palette_png`` signature; ``OUT/<stem>_face.png`` is the face at the map's size and
``OUT/<stem>_map_face.png`` the map's palette picture beside it.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from reface_tf.data.images import list_folder, save_png_atomic
from reface_tf.errors import DataError


def label_files(path: str | os.PathLike) -> list[Path]:
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".png":
            raise DataError(f"{path}: a label map must be a PNG (lossless); JPEG blurs class ids into other classes")
        return [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist; pass a label-map PNG or a folder of them")
    files, ignored = list_folder(path, (".png",))
    for p, reason in ignored:
        print(f"skipped: {p}: {reason}", file=sys.stderr)
    if not files:
        raise DataError(f"{path}: no .png label maps in the folder")
    return files


def predict_label_maps(maps: str | os.PathLike, model: str | os.PathLike, out: str | os.PathLike) -> int:
    import tensorflow as tf

    from reface_tf.serve.export import read_meta, resolve_version_dir
    from reface_tf.tasks.spade.task import class_palette

    files = label_files(maps)  # before the model loads: a wrong path fails fast
    version_dir = resolve_version_dir(model)
    meta, _ = read_meta(version_dir)
    palette = class_palette(int(meta["num_classes"]))
    translate = tf.saved_model.load(str(version_dir)).signatures["palette_png"]
    out = Path(out)
    started = time.perf_counter()
    for path in files:
        try:
            face_png = translate(png_bytes=tf.constant([path.read_bytes()]))["png_bytes"][0].numpy()
        except tf.errors.InvalidArgumentError as err:
            found = re.search(r"\[((?:class ids|label maps) must be[^\]]*)\]", str(err))
            raise DataError(f"{path}: cannot be read as a label map of {meta['num_classes']} classes "
                            f"({found.group(1) if found else 'not a PNG image'})") from None
        face = np.asarray(Image.open(io.BytesIO(face_png)).convert("RGB"))
        with Image.open(path) as img:
            picture = np.asarray(img.convert("RGB")) if img.mode not in ("L", "P") else palette[np.asarray(img, np.uint8)]
        save_png_atomic(out / f"{path.stem}_face.png", face)
        save_png_atomic(out / f"{path.stem}_map_face.png", np.concatenate([picture, face], axis=1))
        print(f"{path} -> {out / (path.stem + '_face.png')}")
    print(f"{len(files)} label map(s) done in {out} ({(time.perf_counter() - started) / len(files):.2f} s each)")
    return 0
