"""Writing a SavedModel export in TF Serving's layout, for every task: ``BASE/<version>/`` with the task's
endpoints and ``reface_meta.json``, written in a temporary folder and renamed into place (never half-written).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import keras

from reface_tf.errors import ModelError

log = logging.getLogger(__name__)

META_FILE = "reface_meta.json"
META_FORMAT = "reface-tf/generator-savedmodel/1"


def next_version(base: str | os.PathLike) -> int:
    """1 + the highest integer-named folder under ``base`` (1 for a new base)."""
    base = Path(base)
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def write_versioned_export(endpoints: dict[str, Any], meta: dict[str, Any], base: str | os.PathLike,
                           extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``endpoints`` (signature name -> ``tf.function`` with an input signature; ``serving_default``
    first) and ``meta`` as the next version under ``base``; ``extra(folder)`` may add files (a .tflite) before
    the folder is renamed into place. Returns the version folder."""
    base = Path(base)
    if base.exists() and not base.is_dir():
        raise ModelError(f"--out: {base} is a file; pass a folder (versions are written as {base}/<n>/)")
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=base))  # same file system: the rename is atomic
    try:
        # keras.export.ExportArchive, not tf.saved_model.save of a tf.Module: only the archive records Keras 3
        # variables so that the TF1-style loader of TF Serving and saved_model_cli can restore them. The archive
        # collects the variables the endpoints use; tracking the model as well would save every weight twice.
        archive = keras.export.ExportArchive()
        for name, fn in endpoints.items():
            archive.add_endpoint(name, fn)
        archive.write_out(str(tmp), verbose=False)
        (tmp / META_FILE).write_text(json.dumps({"format": META_FORMAT, **meta, "signatures": list(endpoints)}, indent=2))
        if extra is not None:
            extra(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a serving container usually runs as another user
        while True:
            version = next_version(base)
            try:
                os.rename(tmp, base / str(version))  # fails if another export took this number meanwhile
                break
            except OSError:
                if not (base / str(version)).exists():
                    raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported to %s", base / str(version))
    return base / str(version)
