"""Clicks as values and as fixed-size arrays.

A click is ``Click(y, x, positive)``. A sample's clicks travel as a ``(2N, 3) int32`` array of
``(y, x, order)`` rows: positives in the first N rows, negatives in the last N, each half in
click order and padded with ``(-1, -1, -1)`` rows; ``order`` is the click's index in the session
(0 = first click). A batch stacks these as ``(B, 2N, 3) int32``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Click(NamedTuple):
    y: int
    x: int
    positive: bool


def clicks_to_array(clicks: Sequence[Click], num_per_side: int) -> np.ndarray:
    """``(2N, 3) int32`` array of ``clicks`` (N = ``num_per_side``); ``order`` is the list index."""
    out = np.full((2 * num_per_side, 3), -1, np.int32)
    filled = [0, 0]
    for order, c in enumerate(clicks):
        side = 0 if c.positive else 1
        if filled[side] == num_per_side:
            raise ValueError(f"more than {num_per_side} {'positive' if side == 0 else 'negative'} clicks")
        out[side * num_per_side + filled[side]] = (c.y, c.x, order)
        filled[side] += 1
    return out


def array_to_clicks(arr: np.ndarray) -> list[Click]:
    """Clicks of a ``(2N, 3)`` array, sorted by ``order`` (padding rows dropped)."""
    arr = np.asarray(arr)
    n = arr.shape[0] // 2
    rows = [(int(o), Click(int(y), int(x), i < n)) for i, (y, x, o) in enumerate(arr.tolist()) if y >= 0]
    return [c for _, c in sorted(rows, key=lambda r: r[0])]


def stack_clicks(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``(B, 2N, 3) int32`` batch of per-sample arrays, padding each to the largest N."""
    n = max(a.shape[0] // 2 for a in arrays)
    out = np.full((len(arrays), 2 * n, 3), -1, np.int32)
    for b, a in enumerate(arrays):
        k = a.shape[0] // 2
        out[b, :k] = a[:k]
        out[b, n:n + k] = a[k:]
    return out


def clicked_pixels(clicks: Sequence[Click] | np.ndarray | None) -> np.ndarray:
    """``(K, 2) int64`` ``(y, x)`` of past clicks given as Clicks or as a ``(K, >=2)`` array
    (padding rows with ``y < 0`` dropped)."""
    if clicks is None or len(clicks) == 0:
        return np.zeros((0, 2), np.int64)
    arr = np.asarray([(c[0], c[1]) for c in clicks] if not isinstance(clicks, np.ndarray)
                     else clicks[:, :2], dtype=np.int64)
    return np.ascontiguousarray(arr[arr[:, 0] >= 0])
