"""Where a model comes from: the source commit, the library versions and the training split it was fitted on.

>>> provenance("runs/reface")            # doctest: +SKIP
{'reface_tf': '0.1.0', 'tensorflow': '2.21.0', 'keras': '3.15.1', 'numpy': '2.4.6', 'python': '3.11.7',
 'git_commit': 'a4ecdd9b...', 'git_dirty': False, 'dataset_fingerprint': 'ee04d82c...'}
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import reface_tf
from reface_tf.errors import DataError

log = logging.getLogger(__name__)

# The folder holding the reface_tf package: a git working tree when the code runs from a checkout.
SOURCE_ROOT = Path(reface_tf.__file__).resolve().parent.parent
_GIT_TIMEOUT_S = 10


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, check=True,
                            timeout=_GIT_TIMEOUT_S)
    return result.stdout.strip()


def source_commit() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git working tree the running reface_tf comes from; (None, None) when it is not
    a checkout (an installed copy, no git). ``dirty``: tracked files differ from that commit."""
    try:
        # The package must be the top of its own checkout: an installed copy inside some other repository
        # (a virtual environment in a project folder) would otherwise report that repository's commit.
        if Path(_git("rev-parse", "--show-toplevel")).resolve() != SOURCE_ROOT:
            return None, None
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def versions() -> dict[str, str]:
    """The versions of the running reface_tf, TensorFlow, Keras, NumPy and Python."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {"reface_tf": reface_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def provenance(run_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Versions, source commit and the fingerprint of ``run_dir``'s split (None without a run or a split).

    See :func:`reface_tf.data.pairs.splits_fingerprint`: two models trained on the same split carry the same
    fingerprint. An unreadable ``splits.json`` gives None and a warning, not a failure.
    """
    from reface_tf.data.pairs import splits_fingerprint

    commit, dirty = source_commit()
    fingerprint = None
    if run_dir is not None:
        try:
            fingerprint = splits_fingerprint(run_dir)
        except DataError as err:
            log.warning("no dataset fingerprint: %s", err)
    return {**versions(), "git_commit": commit, "git_dirty": dirty, "dataset_fingerprint": fingerprint}
