"""Metrics: image quality (:mod:`.image`), identity similarity (:mod:`.identity`), distribution distances on
embeddings (:mod:`.distribution`) and the registry of named metrics (:mod:`.registry`). Importing this package does not import TensorFlow (nor OpenCV's face models)."""

from reface_tf.metrics.image import (PSNR_CAP_DB, SIGNED_UNIT_RANGE, UINT8_RANGE, batch_metrics, data_range_of, l1,
                                     mae, psnr, region_metrics, ssim)
from reface_tf.metrics.registry import METRICS, Metric, face_region_scores, get_metric, metric_names, register

__all__ = ["PSNR_CAP_DB", "SIGNED_UNIT_RANGE", "UINT8_RANGE", "batch_metrics", "data_range_of", "l1", "mae", "psnr",
           "region_metrics", "ssim", "METRICS", "Metric", "face_region_scores", "get_metric", "metric_names", "register"]
