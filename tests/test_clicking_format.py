"""Click arrays: lists to ``(2N, 3)`` and back, batches, past-click normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from iis_pipe.clicking.format import Click, array_to_clicks, clicked_pixels, clicks_to_array, stack_clicks


def test_round_trip_keeps_order_and_sides():
    clicks = [Click(5, 6, True), Click(1, 2, False), Click(7, 8, True), Click(3, 4, False)]
    arr = clicks_to_array(clicks, 3)
    assert arr.shape == (6, 3) and arr.dtype == np.int32
    assert arr[:3].tolist() == [[5, 6, 0], [7, 8, 2], [-1, -1, -1]]
    assert arr[3:].tolist() == [[1, 2, 1], [3, 4, 3], [-1, -1, -1]]
    assert array_to_clicks(arr) == clicks


def test_too_many_clicks_per_side():
    with pytest.raises(ValueError, match="positive"):
        clicks_to_array([Click(0, 0, True)] * 3, 2)


def test_stack_pads_to_largest_n():
    a = clicks_to_array([Click(1, 1, True), Click(2, 2, False)], 1)
    b = clicks_to_array([Click(3, 3, True)], 3)
    batch = stack_clicks([a, b])
    assert batch.shape == (2, 6, 3) and batch.dtype == np.int32
    assert array_to_clicks(batch[0]) == [Click(1, 1, True), Click(2, 2, False)]
    assert array_to_clicks(batch[1]) == [Click(3, 3, True)]


def test_clicked_pixels_accepts_clicks_and_arrays():
    assert clicked_pixels(None).shape == (0, 2)
    assert clicked_pixels([Click(1, 2, True)]).tolist() == [[1, 2]]
    arr = clicks_to_array([Click(1, 2, True), Click(3, 4, False)], 2)
    assert sorted(clicked_pixels(arr).tolist()) == [[1, 2], [3, 4]]
