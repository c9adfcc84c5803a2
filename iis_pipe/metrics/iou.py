"""Intersection over union of a predicted mask, ignore pixels excluded."""

from __future__ import annotations

import numpy as np


def iou(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of ``pred`` against ``gt`` (both ``(H, W) bool``) over the pixels where ``ignore``
    (``(H, W) bool`` or None) is False, as RITM's ``get_iou``.

    An empty union (nothing of either mask outside ignore) is a perfect match, 1.0; RITM would
    divide 0 by 0 there.
    """
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    if gt.shape != pred.shape or (ignore is not None and np.shape(ignore) != gt.shape):
        raise ValueError(f"gt {gt.shape}, pred {pred.shape} and ignore "
                         f"{None if ignore is None else np.shape(ignore)} must be equal (H, W)")
    inter, union = gt & pred, gt | pred
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        inter &= keep
        union &= keep
    u = np.count_nonzero(union)
    return 1.0 if u == 0 else np.count_nonzero(inter) / u
