"""The dataset used when ``--data`` is not given: the real-face demo, else a synthetic stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

from reface_tf.errors import RefaceError
from reface_tf.registry import cache_dir

log = logging.getLogger(__name__)


def default_dataset(offline_ok: bool = True) -> str:
    """Build (once, cached) and return the demo dataset; fall back to synthetic cartoon pairs if it cannot be built."""
    try:
        from reface_tf.samples import ensure_demo
    except ImportError:
        ensure_demo = None
    if ensure_demo is not None:
        try:
            return str(ensure_demo("procedure"))
        except RefaceError as err:
            if not offline_ok:
                raise
            log.warning("demo dataset unavailable (%s); using synthetic cartoon pairs instead", err)
    from reface_tf.data.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(Path(cache_dir()) / "synthetic" / "cartoon_v1", count=48, size=128, seed=0)
    log.info("no --data given: training on %d synthetic cartoon pairs in %s", 48, root)
    return str(root)
