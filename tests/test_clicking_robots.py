"""Evaluation robots: ``standard`` equals RITM's numpy/OpenCV rule click for click on real masks
with realistic errors; the other robots keep their stated properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iis_pipe.geometry.distance import distance_to_zero
from iis_pipe.clicking.format import Click, clicks_to_array
from iis_pipe.clicking.perturb import perturb, session_states
from iis_pipe.clicking.reference import standard_reference
from iis_pipe.clicking.robots import ROBOTS, standard

RANDOM_ROBOTS = ("uniform", "dt_weighted", "iterative")


def _davis(davis_dir: Path, count: int):
    """``count`` evenly spaced DAVIS frames: ``(name, gt, ignore or None)`` (255 is void)."""
    files = sorted((davis_dir / "gt").glob("*.png"))
    for p in files[:: max(len(files) // count, 1)][:count]:
        a = np.array(Image.open(p))
        yield p.name, (a > 0) & (a != 255), (a == 255) if (a == 255).any() else None


def _grabcut(grabcut_dir: Path):
    for p in sorted((grabcut_dir / "boundary_GT").glob("*.bmp")):
        a = np.array(Image.open(p))
        yield p.name, a == 255, a == 128


def _same_session(name, gt, ignore, seed, num_clicks):
    rng = np.random.default_rng(seed)
    for pred, clicks, ref in session_states(gt, ignore, rng, num_clicks, standard_reference):
        assert standard(gt, pred, ignore, clicks) == ref, (name, len(clicks))
        # Past clicks as a padded (2N, 3) array mean the same.
        if clicks:
            assert standard(gt, pred, ignore, clicks_to_array(clicks, 24)) == ref


@pytest.mark.realdata
def test_standard_equals_reference_davis(davis_dir):
    for i, (name, gt, ign) in enumerate(_davis(davis_dir, 30)):
        _same_session(name, gt, ign, i, 8)


@pytest.mark.realdata
def test_standard_equals_reference_grabcut_ignore_bands(grabcut_dir):
    for i, (name, gt, ign) in enumerate(_grabcut(grabcut_dir)):
        _same_session(name, gt, ign, 100 + i, 4)


@pytest.mark.realdata
def test_standard_objects_touching_border(davis_dir):
    # Crops that cut the object, so that errors touch every image border.
    for i, (name, gt, ign) in enumerate(_davis(davis_dir, 10)):
        ys, xs = np.nonzero(gt)
        cy, cx = int(ys.mean()), int(xs.mean())
        crop = (slice(max(cy - 40, 0), cy + 40), slice(max(cx - 60, 0), cx + 60))
        g = gt[crop]
        _same_session(name, g, None if ign is None else ign[crop], 200 + i, 4)
        full = np.ones_like(g)
        for pred in (np.zeros_like(g), full & ~np.eye(*g.shape, dtype=bool)):
            assert standard(g, pred) == standard_reference(g, pred)


def test_standard_tie_is_negative_first_row_major():
    gt = np.zeros((40, 40), bool)
    gt[5:9, 5:9] = True                # FN square, 4 x 4
    pred = gt.copy()
    pred[5:9, 5:9] = False
    pred[20:24, 30:34] = True          # FP square of the same size
    ref = standard_reference(gt, pred)
    assert ref == Click(21, 31, False)  # first of the four equidistant centre pixels
    assert standard(gt, pred) == ref
    # Clicking it moves to the next equidistant pixel, row-major.
    assert standard(gt, pred, clicks=[ref]) == standard_reference(gt, pred, clicks=[ref]) == Click(21, 32, False)


def test_standard_prediction_equal_to_gt_gives_negative_origin():
    gt = np.zeros((30, 50), bool)
    gt[10:20, 10:30] = True
    assert standard(gt, gt.copy()) == standard_reference(gt, gt.copy()) == Click(0, 0, False)
    # Errors all covered by ignore or by past clicks: the same.
    pred = gt.copy()
    pred[0, 0] = True
    assert standard(gt, pred, ignore=pred & ~gt) == Click(0, 0, False)
    assert standard(gt, pred, clicks=[Click(0, 0, False)]) == Click(0, 0, False)


def test_standard_random_small_masks():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 20, size=2))
        gt, pred = rng.random((h, w)) < 0.5, rng.random((h, w)) < 0.5
        ign = rng.random((h, w)) < 0.1
        clicks = [Click(int(rng.integers(h)), int(rng.integers(w)), True) for _ in range(int(rng.integers(0, 4)))]
        assert standard(gt, pred, ign, clicks) == standard_reference(gt, pred, ign, clicks)


def _errors(gt, pred, ign):
    fn, fp = gt & ~pred & ~ign, ~gt & pred & ~ign
    return fn, fp


@pytest.mark.realdata
def test_other_robots_properties(davis_dir):
    for i, (name, gt, ign) in enumerate(_davis(davis_dir, 8)):
        ign = np.zeros_like(gt) if ign is None else ign
        rng = np.random.default_rng(i)
        pred = perturb(gt, rng)
        fn, fp = _errors(gt, pred, ign)
        past = [standard(gt, pred, ign)]
        dfn, dfp = distance_to_zero(fn, pad_border=True), distance_to_zero(fp, pad_border=True)
        for rname, robot in ROBOTS.items():
            c = robot(gt, pred, ign, past, np.random.default_rng(5))
            assert c is not None, (name, rname)
            assert (c.y, c.x) != (past[0].y, past[0].x), (name, rname)
            assert (fn if c.positive else fp)[c.y, c.x], (name, rname)
            if rname in RANDOM_ROBOTS:
                assert robot(gt, pred, ign, past, np.random.default_rng(5)) == c  # seeded
        # iterative: the side with the larger maximum, above half of it.
        dfn[past[0].y, past[0].x] = dfp[past[0].y, past[0].x] = 0
        c = ROBOTS["iterative"](gt, pred, ign, past, np.random.default_rng(1))
        big = max(dfn.max(), dfp.max())
        assert c.positive == (dfn.max() > dfp.max())
        assert (dfn if c.positive else dfp)[c.y, c.x] > big / 2


def test_largest_component_centre():
    gt = np.zeros((60, 80), bool)
    pred = gt.copy()
    gt[10:20, 10:20] = True             # FN component, 100 px
    pred[30:45, 40:60] = True           # FP component, 300 px: the largest
    pred[2:4, 70:72] = True             # small FP
    c = ROBOTS["largest_component"](gt, pred)
    assert c == Click(37, 47, False)    # first centre pixel of the 15 x 20 block
    assert ROBOTS["largest_component"](gt, gt) is None


def test_random_robots_need_rng_and_stop_without_errors():
    gt = np.zeros((20, 20), bool)
    gt[5:10, 5:10] = True
    pred = np.zeros_like(gt)
    for rname in RANDOM_ROBOTS:
        with pytest.raises(ValueError, match="rng"):
            ROBOTS[rname](gt, pred)
        assert ROBOTS[rname](gt, gt, rng=np.random.default_rng(0)) is None


def test_uniform_covers_error_region_uniformly():
    gt = np.zeros((10, 10), bool)
    gt[2:4, 2:4] = True                 # 4 FN pixels
    pred = np.zeros_like(gt)
    pred[7, 7:9] = True                 # 2 FP pixels
    rng = np.random.default_rng(0)
    seen = [ROBOTS["uniform"](gt, pred, rng=rng) for _ in range(3000)]
    counts = {}
    for c in seen:
        counts[(c.y, c.x, c.positive)] = counts.get((c.y, c.x, c.positive), 0) + 1
    assert len(counts) == 6
    assert all(400 < v < 600 for v in counts.values())


def test_shape_checks():
    with pytest.raises(ValueError):
        standard(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ValueError):
        standard(np.zeros((4, 4), bool), np.zeros((4, 4), bool), ignore=np.zeros((3, 4), bool))
