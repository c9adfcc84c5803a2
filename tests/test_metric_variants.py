"""Each metric variant on a hand-made per-click IoU table (values worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from iis_pipe.metrics.variants import compute, describe, parse

# three objects, 6 clicks each
IOUS = np.array([
    [0.50, 0.86, 0.91, 0.95, 0.96, 0.97],   # NoC@85 2, @90 3, @95 4
    [0.80, 0.84, 0.85, 0.89, 0.90, 0.94],   # NoC@85 3, @90 5, @95 never -> 6
    [0.20, 0.30, 0.40, 0.50, 0.60, 0.70],   # never: 6, 6, 6
])
SECONDS = np.array([0.6, 1.2, 3.0])          # per session of 6 clicks


@pytest.mark.parametrize("name, value", [
    ("NoC@85", (2 + 3 + 6) / 3),
    ("NoC@90", (3 + 5 + 6) / 3),
    ("NoC@95", (4 + 6 + 6) / 3),
    ("NoC@90/4", (3 + 4 + 4) / 3),        # within 4 clicks: object 2 counts 4
    ("NoC@85/2", (2 + 2 + 2) / 3),        # reached at the last click counts the budget too
    ("NoF@85", 1),
    ("NoF@90", 1),                        # object 2 reaches 0.90 at click 5 of 6: no failure
    ("NoF@95", 2),
    ("NoF@90/5", 2),                      # ... but within 5 clicks it is one (the click-K rule)
    ("NoF@85/2", 3),
    ("mIoU@1", (0.50 + 0.80 + 0.20) / 3),
    ("mIoU@6", (0.97 + 0.94 + 0.70) / 3),
    ("5-mIoU", (0.96 + 0.90 + 0.60) / 3),
    ("SPC", (0.1 + 0.2 + 0.5) / 3),
])
def test_variant_values(name, value):
    at_once = {1: np.array([0.5, 0.8, 0.2]), 3: np.array([0.7, 0.8, 0.3])}
    assert compute(name, IOUS, SECONDS, at_once) == pytest.approx(value)


def test_points_at_once_differ_from_iterative_clicks():
    at_once = {1: np.array([0.5, 0.8, 0.2]), 3: np.array([0.7, 0.8, 0.3])}
    assert compute("mIoU@3-once", IOUS, at_once=at_once) == pytest.approx(0.6)
    assert compute("mIoU@3", IOUS) == pytest.approx((0.91 + 0.85 + 0.40) / 3)
    with pytest.raises(ValueError, match="no 5-points-at-once.*--at-once 5"):
        compute("mIoU@5-once", IOUS, at_once=at_once)


def test_budget_beyond_the_run_and_bad_names_are_refused():
    with pytest.raises(ValueError, match="NoC@95/100 needs 100 clicks per object; the run has 6"):
        compute("NoC@95/100", IOUS)
    with pytest.raises(ValueError, match="mIoU@7 needs 7 clicks"):
        compute("mIoU@7", IOUS)
    for bad in ("NoC@0", "NoC@101", "mIoU@0", "NoC90", "IoU@5", "NoC@90/0"):
        with pytest.raises(ValueError, match="unknown metric"):
            parse(bad)
    with pytest.raises(ValueError, match="SPC needs"):
        compute("SPC", IOUS)


def test_names_and_descriptions():
    assert parse("NoC@95/100").budget == 100 and parse("NoC@95/100").threshold == 0.95
    assert parse("5-mIoU").k == 5 and parse("mIoU@5-once").kind == "miou_once"
    assert describe("NoC@95/100") == "NoC@95/100: mean clicks to IoU >= 0.95 within 100 clicks"
    assert describe("NoC@90", 20) == "NoC@90: mean clicks to IoU >= 0.90 within the run's 20 clicks"
    assert "at once" in describe("mIoU@5-once") and "iterative" in describe("5-mIoU")
