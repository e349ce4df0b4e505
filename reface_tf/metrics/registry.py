"""The metrics the project reports, by name: what each needs, which direction is better, how it is computed.

``METRICS`` is the one list. Evaluation (:mod:`reface_tf.eval.evaluate`) measures each registered metric it has
the inputs for, and tuning (:mod:`reface_tf.tune`) ranks a grid by those that training's validation logs as
``val_<name>`` (the ones that need only the output and the target). The ``fd_*`` and ``kid_*`` metrics compare
a set of generated images with a set of real ones through an embedding network (see
:func:`reface_tf.metrics.embeddings.distribution_report`). Importing this module does not import TensorFlow.

Example::

    get_metric("ssim").higher_is_better            # True
    metric_names(("output", "target"))            # ("psnr", "ssim", "l1")
    get_metric("psnr").fn(output, target)         # dB; uint8 images use the data range 255, floats 2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from reface_tf.errors import ConfigError
from reface_tf.metrics.image import SIGNED_UNIT_RANGE, data_range_of, l1, psnr, region_metrics, ssim


@dataclass(frozen=True)
class Metric:
    """A named per-pair metric.

    ``needs`` names what it is computed from: ``"output"``, ``"target"``, ``"input"``, ``"region"`` (an HxW mask
    of the face region) and ``"identity_model"`` (:class:`reface_tf.metrics.identity.IdentityModel`); a
    distribution metric needs ``"generated"`` and ``"real"`` (sets of images, not pairs) and an ``"embedder"``,
    so no per-pair selection such as ``metric_names(("output", "target"))`` picks it up. ``fn`` takes
    the images in the order of ``needs`` and an optional ``data_range``; it is None for a metric measured
    together with others by a dedicated function (named in ``description``).
    """

    name: str
    higher_is_better: bool
    needs: tuple[str, ...]
    description: str
    fn: Callable | None = None

    @property
    def arrow(self) -> str:
        """``↑`` or ``↓``, for tables."""
        return "↑" if self.higher_is_better else "↓"


def face_region_scores(output: np.ndarray, target: np.ndarray, region: np.ndarray,
                       data_range: float | None = None) -> dict[str, float]:
    """``face_psnr``, ``face_ssim`` and ``face_l1`` of one pair at once (one SSIM map): :func:`region_metrics`
    with L1 in [-1, 1] units, as the whole-image ``l1``."""
    data_range = data_range_of(output) if data_range is None else data_range
    scores = region_metrics(output, target, region, data_range)
    return {"face_psnr": scores["psnr"], "face_ssim": scores["ssim"],
            "face_l1": scores["l1"] / (data_range / SIGNED_UNIT_RANGE)}


def _in_region(name: str) -> Callable[..., float]:
    def fn(output: np.ndarray, target: np.ndarray, region: np.ndarray, data_range: float | None = None) -> float:
        return face_region_scores(output, target, region, data_range)[name]

    fn.__name__ = name
    return fn


PAIR = ("output", "target")
IN_REGION = ("output", "target", "region")

METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to ``METRICS``; a name can be registered once."""
    if metric.name in METRICS:
        raise ValueError(f"metric '{metric.name}' is already registered")
    METRICS[metric.name] = metric
    return metric


for _metric in (
    Metric("psnr", True, PAIR, "PSNR in dB, fixed data range (255 for uint8, 2 for [-1, 1]), capped at 100 dB", psnr),
    Metric("ssim", True, PAIR, "SSIM, Gaussian window sigma 1.5, per RGB channel, averaged", ssim),
    Metric("l1", False, PAIR, "mean absolute error in [-1, 1] units (training's val_l1)", l1),
    Metric("face_psnr", True, IN_REGION, "PSNR over the face region's pixels", _in_region("face_psnr")),
    Metric("face_ssim", True, IN_REGION, "the SSIM map averaged over the face region", _in_region("face_ssim")),
    Metric("face_l1", False, IN_REGION, "L1 over the face region's pixels, [-1, 1] units", _in_region("face_l1")),
    Metric("identity_cosine", True, ("output", "target", "identity_model"),
           "cosine of SFace features of output and target (reface_tf.metrics.identity.pair_identity)"),
    Metric("identity_cosine_input", True, ("output", "input", "identity_model"),
           "cosine of SFace features of output and input: how much of the person the model kept; output = input "
           "scores 1 by definition (reface_tf.metrics.identity.pair_identity)"),
):
    register(_metric)

# Set-against-set metrics on embeddings (reface_tf.metrics.distribution), one pair per embedder of
# reface_tf.metrics.embeddings; lower is better for both.
SETS = ("generated", "real", "embedder")
for _embedder, _what in (("facenet", "FaceNet 512-d identity embeddings"), ("sface", "SFace 128-d identity embeddings"),
                         ("inception", "Keras InceptionV3 2048-d pool features (--inception-weights)")):
    register(Metric(f"fd_{_embedder}", False, SETS,
                    f"Fréchet distance of {_what}, generated vs real; omitted below 2 x dim samples per set "
                    "(reface_tf.metrics.embeddings.distribution_report via reface_tf.metrics.distribution.frechet_distance)"))
    register(Metric(f"kid_{_embedder}", False, SETS,
                    f"KID (unbiased MMD², cubic polynomial kernel, mean ± std over subsets) of {_what}, generated vs "
                    "real (reface_tf.metrics.embeddings.distribution_report via "
                    "reface_tf.metrics.distribution.kernel_inception_distance)"))
del _metric, _embedder, _what


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown metric '{name}'; known metrics: {', '.join(METRICS)}") from None


def metric_names(available: Iterable[str] | None = None) -> tuple[str, ...]:
    """Registered names in registration order; with ``available``, only the metrics computable from those inputs."""
    if available is None:
        return tuple(METRICS)
    have = set(available)
    return tuple(name for name, metric in METRICS.items() if set(metric.needs) <= have)
