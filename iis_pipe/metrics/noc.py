"""NoC, NoF and mIoU curves from per-sample IoU arrays: pure functions, no I/O.

``ious`` is ``(N, K) float``: row n holds sample n's IoU after clicks 1..K (the evaluation
always runs all K clicks, so rows have equal length). The rules follow RITM's
``utils.compute_noc_metric``:

- NoC@t of a sample: the first click k (1-based) with ``IoU >= t``, else ``max_clicks``;
- NoF@t: the number of samples whose NoC@t equals ``max_clicks``; RITM counts
  ``scores_arr == max_clicks``, so reaching t exactly at the last click is a failure too.
"""

from __future__ import annotations

import numpy as np

THRESHOLDS = (0.85, 0.90, 0.95)


def _check(ious: np.ndarray) -> np.ndarray:
    ious = np.asarray(ious, np.float64)
    if ious.ndim != 2:
        raise ValueError(f"ious must be (N, K), got shape {ious.shape}")
    return ious


def noc(ious: np.ndarray, thr: float, max_clicks: int | None = None) -> np.ndarray:
    """``(N,) int64`` clicks each sample needs to reach ``IoU >= thr`` (``max_clicks``, default
    K, when it never does within the first ``max_clicks`` clicks)."""
    ious = _check(ious)
    k = ious.shape[1] if max_clicks is None else max_clicks
    hit = ious[:, :k] >= thr
    return np.where(hit.any(1), hit.argmax(1) + 1, k).astype(np.int64)


def nof(ious: np.ndarray, thr: float, max_clicks: int | None = None) -> int:
    """Samples counted as failures at ``thr``: NoC@thr == ``max_clicks`` (the click-20 rule)."""
    k = _check(ious).shape[1] if max_clicks is None else max_clicks
    return int(np.count_nonzero(noc(ious, thr, k) == k))


def miou_curve(ious: np.ndarray) -> np.ndarray:
    """``(K,) float64`` mean IoU over samples after each click (NaN for no sample)."""
    ious = _check(ious)
    return ious.mean(0) if len(ious) else np.full(ious.shape[1], np.nan)


def summarize(ious: np.ndarray, thresholds=THRESHOLDS, max_clicks: int | None = None) -> dict:
    """``{"samples", "max_clicks", "NoC@85", ..., "NoF@85", ..., "mIoU": [K floats]}``
    (keys ``NoC@{round(100 t)}``). NoC means are NaN for no sample."""
    ious = _check(ious)
    k = ious.shape[1] if max_clicks is None else max_clicks
    out: dict = {"samples": int(len(ious)), "max_clicks": int(k)}
    for t in thresholds:
        out[f"NoC@{round(100 * t)}"] = float(noc(ious, t, k).mean()) if len(ious) else float("nan")
    for t in thresholds:
        out[f"NoF@{round(100 * t)}"] = nof(ious, t, k)
    out["mIoU"] = [float(v) for v in miou_curve(ious[:, :k])]
    return out
