"""Box: conversions to and from the stored forms, grow and clip at the image edges, against
hand-computed values; numba kernels take a Box."""

from __future__ import annotations

import numpy as np
from numba import njit

from iis_pipe.geometry.box import Box, mask_bbox


def test_fields_are_half_open_rows_then_columns():
    b = Box(2, 5, 10, 14)
    y0, y1, x0, x1 = b
    assert (y0, y1, x0, x1) == (2, 5, 10, 14)
    assert (b.height, b.width, b.shape, b.area, b.origin) == (3, 4, (3, 4), 12, (2, 10))
    a = np.arange(20 * 20).reshape(20, 20)
    assert np.array_equal(a[b.slices], a[2:5, 10:14])
    assert not b.empty and Box(3, 3, 0, 5).empty and Box(0, 4, 6, 2).empty
    assert Box(0, 4, 6, 2).area == 0


def test_stored_forms_round_trip():
    # a record's bbox [x, y, w, h] = [10, 2, 4, 3] is rows 2..4, columns 10..13
    assert Box.from_xywh([10, 2, 4, 3]) == Box(2, 5, 10, 14)
    assert Box(2, 5, 10, 14).to_xywh() == (10, 2, 4, 3)
    # a dt_window [y0, x0, h, w] = [2, 10, 3, 4] is the same pixels
    assert Box.from_yxhw([2, 10, 3, 4]) == Box(2, 5, 10, 14)
    assert Box(2, 5, 10, 14).to_yxhw() == (2, 10, 3, 4)
    rng = np.random.default_rng(0)
    for _ in range(50):
        y0, x0 = (int(v) for v in rng.integers(0, 100, 2))
        b = Box(y0, y0 + int(rng.integers(1, 50)), x0, x0 + int(rng.integers(1, 50)))
        assert Box.from_xywh(b.to_xywh()) == b and Box.from_yxhw(b.to_yxhw()) == b
    # JSON gives ints back; numpy integers become plain ints (the meta stays JSON-able)
    assert all(type(v) is int for v in Box.from_xywh(np.array([1, 2, 3, 4])))
    assert all(type(v) is int for v in Box.from_xywh(np.array([1, 2, 3, 4])).to_xywh())


def test_grow_and_clip_at_the_image_edges():
    shape = (10, 8)  # (H, W)
    assert Box(3, 6, 2, 5).grow(1, shape) == Box(2, 7, 1, 6)        # inside: every side
    assert Box(0, 4, 0, 3).grow(2, shape) == Box(0, 6, 0, 5)        # top-left corner
    assert Box(7, 10, 6, 8).grow(3, shape) == Box(4, 10, 3, 8)      # bottom-right corner
    assert Box(1, 9, 1, 7).grow(5, shape) == Box(0, 10, 0, 8)       # past every edge
    assert Box(3, 6, 2, 5).grow(4) == Box(-1, 10, -2, 9)            # no shape: no clip
    assert Box(3, 6, 2, 5).grow(0, shape) == Box(3, 6, 2, 5)
    assert Box(-3, 4, 5, 12).clip(shape) == Box(0, 4, 5, 8)
    assert Box(12, 15, -4, -1).clip(shape).empty                    # off the image
    assert Box.of_shape(shape) == Box(0, 10, 0, 8) == Box(-1, 11, -1, 9).clip(shape)


def test_union():
    assert Box.union([Box(3, 6, 2, 5)]) == Box(3, 6, 2, 5)
    assert Box.union([Box(3, 6, 2, 5), Box(0, 4, 4, 9), Box(5, 8, 3, 4)]) == Box(0, 8, 2, 9)


def test_mask_bbox_by_hand():
    m = np.zeros((7, 9), bool)
    assert mask_bbox(m) is None
    m[2, 3] = m[4, 6] = True
    assert mask_bbox(m) == Box(2, 5, 3, 7)
    assert isinstance(mask_bbox(m), Box)
    m[:] = True
    assert mask_bbox(m) == Box(0, 7, 0, 9)


@njit(cache=True)
def _area_by_fields(box):
    return (box.y1 - box.y0) * (box[3] - box[2])


def test_numba_takes_a_box():
    assert _area_by_fields(Box(2, 5, 10, 14)) == 12
