"""Evaluation metrics: IoU with ignore pixels, NoC/NoF and mIoU-per-click curves, their plot.

- ``iou``: one mask against its ground truth, ignore pixels excluded.
- ``noc``: pure functions on per-sample IoU arrays ``(N, K)`` (K clicks each).
- ``plots``: mIoU against clicks, several runs on one figure (matplotlib, Agg).
"""

from iis_pipe.metrics.iou import iou
from iis_pipe.metrics.noc import (THRESHOLDS, miou_curve, noc, nof, summarize)

__all__ = ["THRESHOLDS", "iou", "miou_curve", "noc", "nof", "summarize"]
