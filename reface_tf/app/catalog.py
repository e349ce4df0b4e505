"""Find the exports under a folder and decide which tab of the app shows each.

An export is a version folder ``BASE/<n>/`` holding ``saved_model.pb`` and ``reface_meta.json`` (written by
``export.py``); only the highest version of each base is listed. The metadata's ``task`` (and, for Pix2Pix, its
``input_domain``) picks the tab. An export no tab can run is kept with the reason, so the page can say why it
is not shown instead of silently dropping it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from reface_tf.serve.archive import META_FILE, META_FORMAT

OUTCOME, SKETCH, SEGMAP, FACES, AGE = "outcome", "sketch", "segmap", "faces", "age"
TAB_TITLES = {OUTCOME: "Outcome simulation", SKETCH: "Sketch → face", SEGMAP: "Segmentation map → face",
              FACES: "Faces", AGE: "Age"}
TABS = tuple(TAB_TITLES)

# What creates an export for each tab, from a fresh clone with the demo data (README's commands).
EXPORT_COMMANDS = {
    OUTCOME: ["python train.py --config configs/demo.yaml", "python export.py --run-dir runs/demo --out export/demo"],
    SKETCH: ["python train.py --config configs/sketch_demo.yaml", "python export.py --run-dir runs/sketch --out export/sketch"],
    SEGMAP: ["python train.py --config configs/spade_demo.yaml", "python export.py --run-dir runs/spade_demo --out export/spade"],
    FACES: ["python train.py --task dcgan", "python export.py --run-dir runs/dcgan --out export/dcgan"],
    AGE: ["python train.py --task stylegan2", "python train.py --task age_encoder",
          "python export.py --run-dir runs/age_encoder --out export/age_editor"],
}


@dataclass
class ExportEntry:
    path: Path                 # the version folder
    meta: dict = field(repr=False)
    tab: str | None            # None: no tab runs it (see ``reason``)
    reason: str = ""

    @property
    def name(self) -> str:
        """``base/version`` relative to the models folder, as the page lists it."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def task(self) -> str:
        return str(self.meta.get("task", "pix2pix"))


def training_root(meta: dict) -> Path | None:
    """The training data folder an export's metadata records (the data, faces or training_data section)."""
    cfg = meta.get("config") or {}
    root = ((cfg.get("data") or {}).get("root") or (cfg.get("faces") or {}).get("root")
            or (meta.get("training_data") or {}).get("root"))
    return Path(root) if root else None


def tab_of(meta: dict) -> tuple[str | None, str]:
    """(tab, "") for an export the app can run, else (None, why not)."""
    task = meta.get("task", "pix2pix")
    if task == "pix2pix":
        domain = meta.get("input_domain", "photo")
        if domain == "photo":
            return OUTCOME, ""
        if domain == "sketch":
            return SKETCH, ""
        return None, (f"a pix2pix export of {domain} inputs; the segmentation-map tab runs SPADE exports, "
                      "translate these maps with predict.py")
    if task == "spade":
        return SEGMAP, ""
    if task in ("dcgan", "stylegan2"):
        return FACES, ""
    if task == "age_encoder":
        return AGE, ""
    return None, f"task {task!r}: no tab of this app runs it"


def _version_dirs(base: Path) -> list[Path]:
    return sorted((p for p in base.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def _entry(version: Path) -> ExportEntry | None:
    if not (version / "saved_model.pb").is_file():
        return None
    meta_path = version / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != META_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
    except (OSError, ValueError, AttributeError) as err:
        return ExportEntry(version, {}, None, f"{meta_path} is missing or unreadable ({err}); export it again")
    tab, reason = tab_of(meta)
    return ExportEntry(version, meta, tab, reason)


def scan_exports(models: str | os.PathLike) -> list[ExportEntry]:
    """The latest version of every export base at most two levels under ``models`` (``models/BASE/<n>/``, or
    ``models/<n>/`` when ``models`` is itself a base), sorted by name."""
    root = Path(models)
    if not root.is_dir():
        return []
    bases = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.isdigit())
    found = []
    for base in bases:
        versions = [e for e in (_entry(v) for v in _version_dirs(base)) if e is not None]
        if versions:
            found.append(versions[-1])
    return sorted(found, key=lambda e: e.name)


def by_tab(entries: list[ExportEntry]) -> dict[str, list[ExportEntry]]:
    """Tab -> its exports, in the page's tab order; tabs without exports are left out."""
    grouped = {tab: [e for e in entries if e.tab == tab] for tab in TABS}
    return {tab: found for tab, found in grouped.items() if found}


def missing_tabs_help(entries: list[ExportEntry]) -> list[str]:
    """One line per tab without an export: the commands that create one."""
    present = {e.tab for e in entries}
    return [f"{TAB_TITLES[tab]}: " + " && ".join(EXPORT_COMMANDS[tab]) for tab in TABS if tab not in present]
