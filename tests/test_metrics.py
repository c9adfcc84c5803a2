"""IoU with ignore pixels, NoC/NoF/mIoU on hand-made IoU arrays (answers worked out by hand),
and the mIoU plot."""

from __future__ import annotations

import numpy as np
import pytest

from iis_pipe.metrics import iou, miou_curve, noc, nof, summarize
from iis_pipe.metrics.plots import plot_miou

# K = 4 clicks. By hand, NoC@85 / @90 / @95 per row:
#   row 0: 2 / 3 / 4 (0.96 reached exactly at the last click)
#   row 1: 1 / 1 / 4 (0.95 never reached)
#   row 2: 4 / 4 / 4 (never reaches 0.85)
#   row 3: 1 / 2 / 2 (exact ties: IoU 0.85 and 0.9 meet their thresholds)
IOUS = np.array([
    [0.50, 0.86, 0.91, 0.96],
    [0.90, 0.90, 0.93, 0.94],
    [0.10, 0.20, 0.30, 0.84],
    [0.85, 0.95, 0.20, 0.99],
])


def test_noc_per_sample():
    assert noc(IOUS, 0.85).tolist() == [2, 1, 4, 1]
    assert noc(IOUS, 0.90).tolist() == [3, 1, 4, 2]
    assert noc(IOUS, 0.95).tolist() == [4, 4, 4, 2]


def test_nof_counts_reaching_at_the_last_click_as_failure():
    # RITM: over_max = (noc == max_clicks).sum(); row 0 reaches 0.95 at click 4 == K.
    assert nof(IOUS, 0.85) == 1
    assert nof(IOUS, 0.90) == 1
    assert nof(IOUS, 0.95) == 3


def test_max_clicks_cuts_the_session():
    # With 2 clicks only: row 0 reaches 0.85 at click 2 (= max, a failure), row 3 reaches 0.90
    # at click 2 (a failure too).
    assert noc(IOUS, 0.85, max_clicks=2).tolist() == [2, 1, 2, 1]
    assert nof(IOUS, 0.85, max_clicks=2) == 2
    assert nof(IOUS, 0.90, max_clicks=2) == 3


def test_summary_and_curve():
    s = summarize(IOUS)
    assert s["samples"] == 4 and s["max_clicks"] == 4
    assert s["NoC@85"] == pytest.approx((2 + 1 + 4 + 1) / 4)
    assert s["NoC@90"] == pytest.approx((3 + 1 + 4 + 2) / 4)
    assert s["NoC@95"] == pytest.approx((4 + 4 + 4 + 2) / 4)
    assert (s["NoF@85"], s["NoF@90"], s["NoF@95"]) == (1, 1, 3)
    assert s["mIoU"] == pytest.approx([0.5875, 0.7275, 0.585, 0.9325])
    assert miou_curve(IOUS) == pytest.approx(s["mIoU"])


def test_summary_of_no_sample():
    s = summarize(np.zeros((0, 20)))
    assert s["samples"] == 0 and np.isnan(s["NoC@90"]) and s["NoF@90"] == 0
    assert len(s["mIoU"]) == 20


def test_iou_excludes_ignore_pixels():
    gt = np.zeros((4, 5), bool)
    gt[1:3, 1:4] = True                      # 6 pixels
    pred = gt.copy()
    pred[0, :] = True                        # 5 false positives
    pred[1, 1] = False                       # 1 false negative
    assert iou(gt, pred) == pytest.approx(5 / 11)
    ignore = np.zeros_like(gt)
    ignore[0, :] = True                      # the FP row is ignored
    assert iou(gt, pred, ignore) == pytest.approx(5 / 6)
    ignore[1, 1] = True                      # and the FN pixel: only ignore pixels differ
    assert iou(gt, pred, ignore) == 1.0
    assert iou(np.zeros_like(gt), np.zeros_like(gt)) == 1.0  # empty union: a match
    assert iou(gt, np.zeros_like(gt)) == 0.0


def test_iou_checks_shapes():
    with pytest.raises(ValueError, match="must be equal"):
        iou(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_plot_writes_png(tmp_path):
    out = plot_miou([("a", [0.5, 0.7, 0.9]), ("b", [0.6, 0.8])], tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_miou([], tmp_path / "q.png")
