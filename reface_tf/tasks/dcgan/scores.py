"""The DCGAN run's validation score: KID between EMA-generator samples and the held-out real faces on a
face-recognition embedding (``val_kid_<embedder>``, with its standard deviation over subsets).

The held-out faces are embedded once per run; the embedder is loaded on first use. A Fréchet distance is not
logged here: the held-out sets of small datasets are far below the 2 x dim samples it needs (``evaluate.py``
reports it, or why it is omitted).
"""

from __future__ import annotations

import numpy as np

from reface_tf.metrics.distribution import kernel_inception_distance

KID_SUBSETS = 50


def validation_kid(samples: np.ndarray, held_out: np.ndarray, embedder_name: str, cache) -> dict[str, float]:
    """``{"val_kid_<name>": mean, "val_kid_<name>_std": std}``; ``cache`` (the run) keeps the embedder and the
    held-out features between epochs."""
    from reface_tf.metrics.embeddings import get_embedder

    if getattr(cache, "embedder", None) is None:
        cache.embedder = get_embedder(embedder_name)
        cache.held_out_features = cache.embedder(held_out)
    kid = kernel_inception_distance(cache.embedder(samples), cache.held_out_features, subsets=KID_SUBSETS,
                                    subset_size=min(len(samples), len(held_out)), seed=0)
    if kid.mean is None:
        return {}
    return {f"val_kid_{embedder_name}": kid.mean, f"val_kid_{embedder_name}_std": kid.std}
