"""Predictor wrappers: zoom-in boxes against hand-computed ones (edges included), the crop the
base predictor sees, an oracle that needs one click through every wrapper, flip TTA of a
flip-symmetric predictor, and the robots and at-once protocol in the evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iis_pipe.clicking import Click
from iis_pipe.geometry.box import Box
from iis_pipe.metrics import noc
from iis_pipe.pipelines.evaluate import Protocol, evaluate, run_at_once, run_object
from iis_pipe.predictors.wrappers import (Flip, ZoomIn, box_iou, crop_size, object_roi, resolve,
                                          wrap)


def _mask(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_object_roi_hand_computed_inside_and_at_the_edges():
    # bbox rows 40..59, cols 100..139 (inclusive): centre 49.5 / 119.5, sizes 20 / 40;
    # x1.4 -> 28 / 56: rows round(35.5)=36 .. round(63.5)=64, cols round(91.5)=92 ..
    # round(147.5)=148 (inclusive; Python rounds half to even)
    m = _mask((200, 300), 40, 60, 100, 140)
    assert object_roi(m, [], 1.4, 0) == Box(36, 65, 92, 149)
    # min crop 100: rows 49.5 -+ 50 -> round(-0.5)=0 .. round(99.5)=100; cols 69.5..169.5 -> 70..170
    assert object_roi(m, [], 1.4, 100) == Box(0, 101, 70, 171)
    # a positive click widens the box, a negative one does not
    clicks = [Click(50, 200, True), Click(190, 10, False)]
    # cols 100..200: centre 150, size 101 * 1.4 = 141.4 -> round(79.3)=79 .. round(220.7)=221
    assert object_roi(m, clicks, 1.4, 0) == Box(36, 65, 79, 222)
    # at the corner: rows 0..9, cols 0..9 -> centre 4.5, size 14: round(-2.5)=-2 -> clamped 0,
    # round(11.5)=12 (Python rounds half to even); clamped to the image, not shifted
    corner = _mask((200, 300), 0, 10, 0, 10)
    assert object_roi(corner, [], 1.4, 0) == Box(0, 13, 0, 13)
    # bottom-right edge: rows 190..199 -> 194.5 -+ 7 -> round(187.5)=188 .. min(202, 199);
    # cols 290..299 -> 288 .. min(302, 299)
    edge = _mask((200, 300), 190, 200, 290, 300)
    assert object_roi(edge, [], 1.4, 0) == Box(188, 200, 288, 300)
    # whole image grown: clamped to itself
    assert object_roi(np.ones((50, 60), bool), [], 1.4, 0) == Box(0, 50, 0, 60)


def test_box_iou_and_crop_size():
    a, b = Box(0, 10, 0, 10), Box(5, 15, 0, 10)
    assert box_iou(a, b) == pytest.approx(5 / 15)         # rows 5/15, cols 1
    assert box_iou(a, Box(20, 30, 0, 10)) == 0
    assert crop_size(Box(0, 100, 0, 50), 400) == (400, 200)
    assert crop_size(Box(0, 30, 0, 90), 400) == (133, 400)
    assert crop_size(Box(0, 30, 0, 90), (448, 448)) == (448, 448)


class Recorder:
    """A predictor that records what it was given and answers with a disk-free square."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, clicks, prev):
        self.calls.append((image.shape, list(clicks), prev.shape))
        return np.full(image.shape[:2], 0.8, np.float32)


def test_zoom_in_crops_skips_and_keeps_its_box():
    image = np.zeros((200, 300, 3), np.uint8)
    rec = Recorder()
    z = ZoomIn(rec, target_size=400, skip_clicks=1, min_crop_size=0)
    prev = np.zeros((200, 300), np.float32)
    c1 = [Click(50, 120, True)]
    out = z(image, c1, prev)                          # first click: whole image, no zoom
    assert rec.calls[-1][0] == (200, 300, 3) and z.roi is None and out.shape == (200, 300)
    prev = _mask((200, 300), 40, 60, 100, 140).astype(np.float32)
    c2 = c1 + [Click(150, 10, False)]                 # negative click outside the box
    out = z(image, c2, prev)
    box = Box(36, 65, 92, 149)
    assert z.roi == box                               # as hand-computed above
    shape, clicks, pshape = rec.calls[-1]
    # 29 x 57 -> long side 400: 29 * 400 / 57 = 203.5 -> 204
    assert shape == (204, 400, 3) and pshape == (204, 400)
    assert clicks == [Click(int((50 - 36 + 0.5) * 204 / 29), int((120 - 92 + 0.5) * 400 / 57),
                            True)]                    # the negative click is outside: left out
    assert np.allclose(out[box.slices], 0.8) and out[:36].max() == 0 == out[65:].max()
    assert out[:, :92].max() == 0 == out[:, 149:].max()
    # a slightly different prediction keeps the box (IoU >= 0.5) ...
    prev2 = _mask((200, 300), 41, 60, 100, 141).astype(np.float32)
    z(image, c2 + [Click(45, 110, False)], prev2)
    assert z.roi == box
    # ... a positive click outside it forces a new one
    z(image, c2 + [Click(45, 110, False), Click(120, 250, True)], prev2)
    assert z.roi != box and z.roi.y1 > 120 and z.roi.x1 > 250
    # a new session starts unzoomed; "prev" keeps the previous output outside the box
    z(image, c1, prev)
    assert z.roi is None
    keep = ZoomIn(Recorder(), min_crop_size=0, outside="prev", skip_clicks=0)
    prev3 = np.full((200, 300), 0.3, np.float32)
    prev3[40:60, 100:140] = 1
    out = keep(image, c1, prev3)
    assert out[0, 0] == pytest.approx(0.3) and out[50, 120] == pytest.approx(0.8)


def test_fixed_crop_starts_at_the_first_click_on_the_whole_image():
    rec = Recorder()
    z = wrap(rec, [("fixed_crop", {})])
    assert isinstance(z, ZoomIn) and z.target_size == (448, 448) and z.skip_clicks == -1
    z(np.zeros((200, 300, 3), np.uint8), [Click(10, 20, True)], np.zeros((200, 300), np.float32))
    assert rec.calls[-1][0] == (448, 448, 3) and z.roi == Box(0, 200, 0, 300)
    assert rec.calls[-1][1] == [Click(int(10.5 * 448 / 200), int(20.5 * 448 / 300), True)]


def test_resolve_records_every_option_and_refuses_unknown_ones():
    rec = resolve([("flip", {}), ("zoom_in", {"target_size": 600})])
    assert rec[0] == {"name": "flip"}
    assert rec[1] == {"name": "zoom_in", "target_size": 600, "skip_clicks": 1,
                      "expansion_ratio": 1.4, "min_crop_size": 200, "recompute_iou": 0.5,
                      "prob_thresh": 0.49, "outside": "zero"}
    with pytest.raises(ValueError, match="has no option \\['size'\\]"):
        resolve([("zoom_in", {"size": 3})])
    with pytest.raises(ValueError, match="unknown predictor wrapper 'tta'"):
        resolve([("tta", {})])
    with pytest.raises(ValueError, match="outside must be"):
        wrap(Recorder(), [("zoom_in", {"outside": "keep"})])


def _scene(h=120, w=160):
    """A bright object on a dark background: its own best segmentation."""
    gt = _mask((h, w), 30, 90, 40, 125)
    image = np.where(gt[..., None], 220, 30).astype(np.uint8).repeat(3, 2)
    return image, gt


def oracle(image, clicks, prev):
    """Segments the bright pixels (as the object looks in any crop or mirror)."""
    return (image[..., 0] > 127).astype(np.float32)


@pytest.mark.parametrize("specs", [[], [("flip", {})], [("zoom_in", {})],
                                   [("zoom_in", {"skip_clicks": 0, "min_crop_size": 0})],
                                   [("fixed_crop", {})], [("flip", {}), ("zoom_in", {})],
                                   [("flip", {}), ("fixed_crop", {"target_size": [64, 64]})]])
def test_an_oracle_needs_one_click_through_every_wrapper(specs):
    image, gt = _scene()
    ious, clicks, _ = run_object(wrap(oracle, specs), image, gt, None, Protocol(max_clicks=3))
    assert noc(ious[None], 0.90)[0] == 1 and ious.min() > 0.95, ious


def symmetric(image, clicks, prev):
    """Flip-equivariant: disks of radius 6 at positive clicks joined with the bright pixels of
    column-mirror-symmetric weights."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    out = (image[..., 1] / 255.0).astype(np.float32) * 0.5
    for c in clicks:
        if c.positive:
            out[(yy - c.y) ** 2 + (xx - c.x) ** 2 <= 36] = 1.0
    return out + 0.1 * prev


def test_flip_of_a_flip_symmetric_predictor_equals_the_plain_one():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 57, 3), dtype=np.uint8)
    prev = rng.random((40, 57)).astype(np.float32)
    clicks = [Click(5, 3, True), Click(30, 50, False), Click(20, 28, True)]
    assert np.array_equal(Flip(symmetric)(image, clicks, prev), symmetric(image, clicks, prev))

    def left_biased(image, clicks, prev):  # not symmetric: flip averaging changes it
        out = np.zeros(image.shape[:2], np.float32)
        out[:, : image.shape[1] // 3] = 1
        return out
    assert not np.array_equal(Flip(left_biased)(image, clicks, prev),
                              left_biased(image, clicks, prev))


def test_random_robots_are_seeded_and_stop_when_nothing_is_left():
    image, gt = _scene()

    def half(image, clicks, prev):  # never perfect: the lower half of the object missing
        out = np.zeros(image.shape[:2], np.float32)
        out[30:60, 40:125] = 1
        return out

    runs = [run_object(half, image, gt, None, Protocol(max_clicks=4, robot="uniform"),
                       rng=np.random.default_rng(s))[1] for s in (1, 1, 2)]
    assert runs[0] == runs[1] != runs[2]
    ious, clicks, _ = run_object(oracle, image, gt, None,
                                 Protocol(max_clicks=4, robot="dt_weighted"),
                                 rng=np.random.default_rng(0))
    assert len(clicks) == 1 and ious.tolist() == [1.0] * 4  # no error left after click 1


def test_points_at_once_protocol():
    image, gt = _scene()
    seen = []

    def count(image, clicks, prev):
        seen.append(list(clicks))
        assert not prev.any()  # every prediction starts from nothing
        return oracle(image, clicks, prev) if len(clicks) >= 3 else np.zeros_like(prev)

    out = run_at_once(count, image, gt, None, (1, 3), np.random.default_rng(0))
    assert out == [0.0, 1.0]
    assert [len(c) for c in seen] == [1, 3] and seen[1][0] == seen[0][0]
    assert all(c.positive and gt[c.y, c.x] for c in seen[1])


def test_evaluate_records_robot_wrappers_and_at_once(tmp_path):
    import cv2

    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image, gt = _scene()
    cv2.imwrite(str(root / "images" / "a.png"), image)
    cv2.imwrite(str(root / "masks" / "a.png"), gt.astype(np.uint8) * 255)
    res = evaluate([root], tmp_path / "run", predictor="grabcut", workers=1, progress=False,
                   protocol=Protocol(max_clicks=3, robot="uniform", seed=5, at_once=(1, 2)),
                   wrappers=[("flip", {}), ("zoom_in", {"target_size": 96})])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["protocol"]["robot"] == "uniform" and summary["protocol"]["seed"] == 5
    assert summary["protocol"]["at_once"] == [1, 2]
    assert [w["name"] for w in summary["wrappers"]] == ["flip", "zoom_in"]
    assert summary["wrappers"][1]["target_size"] == 96
    row = res.rows[0]
    assert row["error"] is None and len(row["at_once"]) == 2
