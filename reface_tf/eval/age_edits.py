"""How well an age editor edits: the estimated age of each edit against its target class, the identity kept, and
the reconstruction when the target is the face's own class.

For held-out REAL aligned faces and every target class (SAM's and HRFAE's protocol, with offline models):

* age: the pinned offline age estimator (``reface_tf.faces.age_estimator``) on each edit, chips cut with the
  aligned-face template as ``class_ages`` cuts them; when the classes are age groups (``21-30``, ``81+``), the
  share of edits whose estimated age falls in the target group and the mean distance to the group's centre;
* identity: SFace cosine (``reface_tf.metrics.identity``, a model no training loss uses) between input and edit,
  both cropped with the landmarks found on the input (else the whole aligned image), against the same cosine
  between the input and a face of another person, the level an edit that kept nobody would score;
* reconstruction: PSNR / SSIM (float64, data range 255) and SFace of the edit whose target is the face's own
  class: the estimated class when the classes are age groups, else the face's recorded label;
* over all edits: the Spearman correlation between the target class and the estimated age (positive when the
  edits follow the classes, which are ordered from young to old).

Example::

    report, grids = age_edit_report(editor, faces, persons, estimator, identity_model, labels=classes)
    print("\\n".join(markdown_lines(report)))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from reface_tf.data.age_labels import AgeGroups, class_age_groups
from reface_tf.errors import DataError
from reface_tf.metrics.identity import cosine

GRID_FACES = 8


def estimated_classes(ages: np.ndarray, groups: AgeGroups) -> np.ndarray:
    """The group index of each estimated age (ages beyond the last closed group go to it)."""
    last = len(groups) - 1
    out = []
    for age in np.asarray(ages, np.float64):
        try:
            out.append(groups.class_of(age))
        except DataError:
            out.append(last if age >= groups.bounds[0][0] else 0)
    return np.asarray(out, np.int32)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def other_person_index(persons: Sequence[str]) -> np.ndarray:
    """For each face the next face (cyclically) of another person; -1 where every face is the same person."""
    persons = list(persons)
    n = len(persons)
    out = np.full(n, -1, np.int64)
    for i in range(n):
        for step in range(1, n):
            j = (i + step) % n
            if persons[j] != persons[i]:
                out[i] = j
                break
    return out


class _Identity:
    """SFace features of the inputs (landmarks found once per input) and of images cropped like them."""

    def __init__(self, model, faces: np.ndarray):
        self.model = model
        self.landmarks = [model.landmarks(face) for face in faces]
        self.inputs = [model.feature(model.crop(face, lm)) for face, lm in zip(faces, self.landmarks)]

    def to_inputs(self, images: np.ndarray) -> np.ndarray:
        return np.array([cosine(self.model.feature(self.model.crop(im, lm)), f)
                         for im, lm, f in zip(images, self.landmarks, self.inputs)], np.float64)


def _stats(values: np.ndarray) -> dict:
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()), "std": float(values.std())} if len(values) else {"mean": None, "std": None}


def age_edit_report(edit, faces: np.ndarray, persons: Sequence[str] | None, class_names: Sequence[str], estimator,
                    identity=None, labels: np.ndarray | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(report in JSON types, {"edits": grid}) of ``edit(faces, class) -> uint8 edits`` on aligned uint8 ``faces``.

    ``persons`` names each face's person (whole identity groups; None: every face its own person);
    ``estimator`` is an ``AgeEstimator``; ``identity`` an SFace ``IdentityModel`` or None (identity left out);
    ``labels`` the faces' recorded classes, used for the reconstruction when the classes are not age groups.
    """
    from reface_tf.data.images import tile_images
    from reface_tf.metrics.image import batch_metrics

    faces = np.asarray(faces, np.uint8)
    persons_known = persons is not None
    if len(faces) < 2:
        raise DataError(f"age-edit evaluation needs at least 2 held-out faces, got {len(faces)}; pass --data with a "
                        "folder of aligned faces")
    persons = [str(p) for p in persons] if persons is not None else [str(i) for i in range(len(faces))]
    names, groups = list(class_names), class_age_groups(class_names)
    estimate = lambda images: estimator.predict(images, landmarks=[None] * len(images))
    input_ages = estimate(faces)
    ident = _Identity(identity, faces) if identity is not None else None
    edits = [np.asarray(edit(faces, k), np.uint8) for k in range(len(names))]

    rows, all_targets, all_ages, all_identity = [], [], [], []
    for k, name in enumerate(names):
        ages = estimate(edits[k])
        row = {"class": name, "n": int(len(faces)), "estimated_age": _stats(ages),
               "age_change": _stats(ages - input_ages)}
        if groups is not None:
            centre = groups.centre(k)
            row |= {"centre": centre, "share_in_target": float(np.mean(estimated_classes(ages, groups) == k)),
                    "distance_to_centre": float(np.mean(np.abs(ages - centre)))}
        if ident is not None:
            cos = ident.to_inputs(edits[k])
            row["identity_input_edit"] = _stats(cos)
            all_identity.append(cos)
        rows.append(row)
        all_targets += [k] * len(ages)
        all_ages += list(ages)

    if groups is not None:
        own, own_source = estimated_classes(input_ages, groups), "estimated class of the input"
    elif labels is not None:
        own, own_source = np.asarray(labels, np.int32).reshape(-1), "recorded label of the input"
    else:
        own, own_source = None, None
    report = {"n_faces": int(len(faces)), "n_persons": int(len(set(persons))), "classes": rows,
              "class_kind": "age groups" if groups is not None else "named classes (not ages)",
              "input_age": _stats(input_ages), "chip": "aligned-face template",
              "spearman_target_age": _spearman(np.asarray(all_targets), np.asarray(all_ages))}
    if own is not None:
        recon = np.stack([edits[c][i] for i, c in enumerate(own)])
        scores = batch_metrics(recon, faces, data_range=255.0)
        report["reconstruction"] = {"own_class": own_source, "psnr": float(np.mean(scores["psnr"])),
                                    "ssim": float(np.mean(scores["ssim"]))}
        if ident is not None:
            report["reconstruction"]["identity"] = float(ident.to_inputs(recon).mean())
    if ident is not None:
        other = other_person_index(persons)
        pairs = [(i, j) for i, j in enumerate(other) if j >= 0]
        baseline = np.array([cosine(ident.inputs[i], ident.inputs[j]) for i, j in pairs], np.float64)
        edit_identity = float(np.concatenate(all_identity).mean())
        report["identity"] = {"model": identity.description, "input_edit": edit_identity,
                              "other_person": float(baseline.mean()) if len(baseline) else None,
                              "landmarks_found": int(sum(lm is not None for lm in ident.landmarks)),
                              "persons_known": persons_known}
        report["identity"]["kept"] = bool(len(baseline) and edit_identity > baseline.mean())
    count = min(GRID_FACES, len(faces))
    columns = [faces[:count]] + [e[:count] for e in edits]
    grid = tile_images(np.stack(columns, axis=1).reshape(-1, *faces.shape[1:]), len(columns))
    return report, {"edits": grid}


def markdown_lines(report: dict) -> list[str]:
    """The report section of ``evaluate.py``'s report.md."""
    num = lambda v, d=3: "—" if v is None else f"{v:.{d}f}"
    pm = lambda s, d=1: "—" if s["mean"] is None else f"{s['mean']:.{d}f} ± {s['std']:.{d}f}"
    ages = "age groups" in report["class_kind"]
    head = "| target class | estimated age | change vs input |" + (" in target group | distance to centre |" if ages else "")
    has_id = "identity" in report
    head += " SFace(input, edit) |" if has_id else ""
    lines = ["", f"## Age edits ({report['n_faces']} held-out faces of {report['n_persons']} persons; classes: "
             f"{report['class_kind']}; estimated input age {pm(report['input_age'])})", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in report["classes"]:
        cells = [r["class"], pm(r["estimated_age"]), pm(r["age_change"])]
        if ages:
            cells += [f"{100 * r['share_in_target']:.0f}%", f"{r['distance_to_centre']:.1f} y"]
        if has_id:
            cells.append(pm(r["identity_input_edit"], 3))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Spearman(target class, estimated age of the edit): {num(report['spearman_target_age'])}"]
    if has_id:
        i = report["identity"]
        lines.append(f"SFace(input, edit) {num(i['input_edit'])} vs SFace(input, another person) "
                     f"{num(i['other_person'])}: identity {'kept' if i['kept'] else 'NOT kept'} "
                     f"({i['landmarks_found']} of {report['n_faces']} inputs cropped from detected landmarks, the rest whole)")
    if "reconstruction" in report:
        r = report["reconstruction"]
        ident = f", SFace {num(r['identity'])}" if "identity" in r else ""
        lines.append(f"Reconstruction (target = {r['own_class']}): PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}{ident}")
    lines += ["", "![age edits](age_edits.png)  (rows: input, then each target class)"]
    return lines


def write_age_edit_report(report: dict, grids: dict[str, np.ndarray], out_dir) -> "Path":
    """report.json, report.md and age_edits.png in ``out_dir``, each written atomically."""
    import json
    import os
    from pathlib import Path

    from reface_tf.data.images import save_png_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = [f"# Age editor {report.get('checkpoint', '')}", "", f"Model: {report.get('model', '')}",
             f"Faces: {report.get('faces', '')}"]
    if report.get("simulated"):
        title.append("The classes are SIMULATED (the demo's): the ages say whether edits follow the classes, not age.")
    for name, text in (("report.json", json.dumps(report, indent=2)),
                       ("report.md", "\n".join(title + markdown_lines(report)) + "\n")):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out / name)
    save_png_atomic(out / "age_edits.png", grids["edits"])
    return out
