"""Image-quality metrics (temporary shim)."""
from reface_tf.metrics.image import *  # noqa: F401,F403
from reface_tf.metrics.image import SIGNED_UNIT_RANGE, UINT8_RANGE, batch_metrics  # noqa: F401
