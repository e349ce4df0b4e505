"""An age editor (an encoder and the conditional generator it inverts), from a run or an export, and the target
classes a user names.

``AgeEditor.edit(faces, classes)`` takes aligned uint8 faces at the model resolution and re-renders each with its
target class; ``edit.py``, ``evaluate.py`` and the app all go through it. Importing this module is light;
TensorFlow is imported when an export is loaded.

Targets (``edit.py --age``): ``all``, a class name (``61-70``, ``simulated older``), several separated by commas,
or, when the classes are age groups, an age in years (``65`` is the group holding 65).

Example::

    editor = age_editor_from_export("export/age_editor")
    classes = target_classes("61-70", editor.class_names)
    edits = editor.edit(aligned_faces, classes[0])   # [N, S, S, 3] uint8
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from reface_tf.errors import ConfigError, ModelError

EXPORT_TASK = "age_encoder"


@dataclass
class AgeEditor:
    edit: Callable[[np.ndarray, np.ndarray | int], np.ndarray]  # (uint8 faces [N,S,S,3], class or classes [N]) -> uint8
    encode: Callable[[np.ndarray], np.ndarray]                   # uint8 faces -> z [N, z_dim]
    class_names: tuple[str, ...]
    resolution: int
    checkpoint: str      # short name: "ckpt-300" or "age_editor-1"
    description: str     # full path of the checkpoint or SavedModel
    data_root: Path | None = None  # the generator's training faces (their alignment.json), when known
    simulated: bool = False        # the classes are a simulation (the demo's), not real ages
    alignment: object | None = None  # AlignmentSettings recorded in an export
    # (z float32 [N, z_dim], classes int32 [N]) -> faces float32 in [-1, 1], differentiable (refinement)
    render: Callable | None = None


def _normal(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def target_classes(spec: str, class_names: Sequence[str]) -> list[int]:
    """Class indices named by ``spec`` (see the module doc); ConfigError naming the classes for anything else."""
    from reface_tf.data.age_labels import class_age_groups

    names = [_normal(n) for n in class_names]
    listing = ", ".join(class_names)
    if _normal(spec) == "all":
        return list(range(len(class_names)))
    groups = class_age_groups(class_names)
    out: list[int] = []
    for item in [p for p in spec.split(",") if p.strip()] or [spec]:
        key = _normal(item)
        if key in names:
            out.append(names.index(key))
            continue
        if groups is not None and re.fullmatch(r"\d+(\.\d+)?", key):
            try:
                out.append(groups.class_of(float(key)))
                continue
            except Exception:  # noqa: BLE001 - an age beyond the groups: reported below with the groups
                pass
        ages = " or an age in years" if groups is not None else ""
        raise ConfigError(f"--age {item.strip()!r}: not a class of this model; use one of: {listing}{ages}, or all")
    return list(dict.fromkeys(out))


def check_age_editor_meta(meta: dict, where) -> None:
    """ModelError naming ``where`` and the command to use when an export's metadata is not an age editor's."""
    if meta.get("task") != EXPORT_TASK:
        what = meta.get("task", "pix2pix")
        hint = ("translate photos with predict.py" if what in ("pix2pix", "spade") else "sample it with sample.py")
        raise ModelError(f"--model {where}: a {what} export, not an age editor; {hint}, or export an age encoder run "
                         "(python export.py --run-dir runs/age_encoder --out export/age_editor)")


def age_editor_from_export(path: str | os.PathLike) -> AgeEditor:
    """The ``edit_images`` and ``encode`` signatures of an ``export.py`` export of an age_encoder run."""
    from reface_tf.serve.export import alignment_from_meta, read_meta, resolve_version_dir

    version = resolve_version_dir(path)
    meta, _ = read_meta(version)
    check_age_editor_meta(meta, version)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version))
    edit_fn, encode_fn = loaded.signatures["edit_images"], loaded.signatures["encode"]
    render_fn = loaded.signatures.get("render_from_z")
    # the default argument keeps the loaded object (and so its variables) alive as long as the editor is
    render = (lambda z, classes, _model=loaded: render_fn(z=z, classes=classes)["images"]) if render_fn is not None else None
    size = int(meta["resolution"])

    def edit(faces: np.ndarray, classes, batch: int = 32) -> np.ndarray:
        faces = np.asarray(faces, np.uint8)
        classes = np.broadcast_to(np.asarray(classes, np.int32), (len(faces),))
        parts = [edit_fn(images=tf.constant(faces[i:i + batch]), classes=tf.constant(classes[i:i + batch]))["images"].numpy()
                 for i in range(0, len(faces), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.uint8)

    def encode(faces: np.ndarray, batch: int = 32) -> np.ndarray:
        faces = np.asarray(faces, np.uint8)
        parts = [encode_fn(images=tf.constant(faces[i:i + batch]))["z"].numpy() for i in range(0, len(faces), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, int(meta["latent_dim"])), np.float32)

    root = (meta.get("training_data") or {}).get("root")
    return AgeEditor(edit, encode, tuple(meta["class_names"]), size, f"{version.parent.name}-{version.name}",
                     str(version), Path(root) if root else None, bool(meta.get("simulated")),
                     alignment_from_meta(meta, version), render)
