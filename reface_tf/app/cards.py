"""What the page says about each model: task, training data and its licence notes, SIMULATED where it applies,
and the responsible-use notes of outcome simulation and age editing (Markdown)."""

from __future__ import annotations

import re
from pathlib import Path

from reface_tf.app.catalog import AGE, OUTCOME, ExportEntry, training_root

TASK_WORDS = {"pix2pix": "Pix2Pix (U-Net + PatchGAN) image translation", "spade": "SPADE: segmentation map → face",
              "dcgan": "DCGAN: faces from noise", "stylegan2": "class-conditional StyleGAN2-ADA",
              "age_encoder": "encoder + class-conditional StyleGAN2 age editing"}

RESPONSIBLE_USE = {
    OUTCOME: ("**Responsible use.** The result is a picture made by a model trained on example pairs, not a medical "
              "prediction: no procedure will look like this. Do not use it to promise, sell or plan treatment. "
              "Only upload photos of people who agreed to it."),
    AGE: ("**Responsible use.** The edit is a synthetic picture of how a model renders an age group, not how this "
          "person will look; age estimates of such pictures are not facts about the person. Only upload photos of "
          "people who agreed to it, and never present an edit as a real photo."),
}

SYNTHETIC_NOTE = "Every generated picture on this page carries a visible SYNTHETIC (or SIMULATED) mark."


def licence_lines(root: Path | None) -> list[str]:
    """The "Sources and licences" list of a dataset's README.md (the demo builder writes one), else a line that
    says the terms are not recorded."""
    readme = root / "README.md" if root is not None else None
    if readme is not None and readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^## Sources and licences\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
        if found:
            return [line for line in found.group(1).strip().splitlines() if line.startswith("- ")]
    return ["- not recorded with the data: check the terms of the photos it was trained on"]


def model_card(entry: ExportEntry) -> str:
    meta = entry.meta
    task = entry.task
    root = training_root(meta)
    lines = [f"**Model** `{entry.name}` ({entry.path}) · {TASK_WORDS.get(task, task)}",
             f"checkpoint `{meta.get('checkpoint', 'unknown')}`"]
    if task == "pix2pix":
        lines.append(f"inputs: {meta.get('input_domain', 'photo')}, {meta.get('image_size')}×{meta.get('image_size')}")
    size = meta.get("map_size") or meta.get("resolution")
    if size:
        lines.append(f"{size}×{size}")
    if meta.get("class_names"):
        lines.append("classes: " + ", ".join(map(str, meta["class_names"])))
    head = " · ".join(lines)
    data = f"**Training data** `{root}`" if root else "**Training data** not recorded in the export"
    notes = licence_lines(root)
    out = [head, "", data, "", f"<details><summary>Licence notes of the data ({len(notes)})</summary>", "", *notes, "",
           "</details>"]
    if meta.get("simulated"):
        note = meta.get("simulated_note") or ("the training targets are SIMULATED (a synthetic transform), "
                                              "not real outcomes")
        out += ["", f"**SIMULATED.** {note}"]
    return "\n".join(out)
