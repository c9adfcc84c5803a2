"""Nearest-neighbour resampling of a plan's window into the crop (numba): the geometry of
``augment.apply(array, plan, linear=False)``, computed only where it is needed.

- ``warp_labels``: the crop's target masks and other objects straight from label runs, without
  decompressing and resizing whole label rows: a run of a source row maps to one span of crop
  columns (the column map is monotonic), so an output row is a few span fills.
- ``resample_box``: a stored map over a box of the crop (the distance levels where the click
  sampler reads them; the ignore mask over the whole crop).

Every mask and map of a sample takes this one rule (OpenCV 5's ``INTER_NEAREST_EXACT``; 4.x
rounds differently at ties), so they stay aligned whatever OpenCV is installed.

An output row whose source row repeats the previous one (an upscale) is a copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from iis_pipe.geometry.box import Box
from iis_pipe.records.runs import LayerRuns
from iis_pipe.stream.augment import Plan


@njit(cache=True, nogil=True)
def nearest_map(n, m):
    """``(m,) int64`` source index of each of ``m`` outputs resampling ``n`` inputs, centres
    aligned: OpenCV's ``INTER_NEAREST_EXACT`` (>= 5; Pillow's rule): a half step, then whole
    steps of ``n / m``, truncated, accumulated in float64 in this order."""
    out = np.empty(m, np.int64)
    step = n / m
    f = step * 0.5
    for i in range(m):
        out[i] = min(int(np.floor(f)), n - 1)
        f += step
    return out


@njit(cache=True, nogil=True)
def _warp(runs, starts, first, n_rows, scan, union, y0, y1, x0, x1, h, w, flip, py, px, slots,
          masks, target, merged, other):
    rows = nearest_map(y1 - y0, h) + y0
    cols = nearest_map(x1 - x0, w) + x0
    labelled = np.zeros(w, np.uint8)  # the row at hand
    visible = 0
    count = 0  # target pixels of the previous output row
    for j in range(h):
        y = py + j
        r = rows[j] - first
        if j > 0 and rows[j] == rows[j - 1]:
            other[y, px:px + w] = other[y - 1, px:px + w]
            for m in range(slots.shape[0]):
                masks[m, y, px:px + w] = masks[m, y - 1, px:px + w]
            if merged:
                target[y, px:px + w] = target[y - 1, px:px + w]
            visible += count
            continue
        count = 0
        if r < 0 or r >= n_rows:  # outside the image (or the rows at hand): label 0
            continue
        labelled[:] = 0
        for li in range(scan.size):
            layer = scan[li]
            marks = union < 0 or layer == union
            a = 0
            for k in range(starts[layer * n_rows + r], starts[layer * n_rows + r + 1]):
                b = np.int64(runs[k, 0])
                label = np.int64(runs[k, 1])
                if label != 0 and b > cols[0] and a <= cols[w - 1]:
                    lo = np.searchsorted(cols, a)
                    hi = np.searchsorted(cols, b)
                    if flip:
                        lo, hi = w - hi, w - lo
                    if marks:
                        labelled[lo:hi] = 1
                    for m in range(slots.shape[0]):
                        if slots[m, 0] == layer and slots[m, 1] == label:
                            masks[m, y, px + lo:px + hi] = 1
                a = b
        # the row is in cache: the target (the masks' union) and the other objects now, in
        # uint8 (branch-free: vectorized)
        t, o = target[y, px:px + w], other[y, px:px + w]
        if merged:
            t[:] = 0
            for m in range(slots.shape[0]):
                mrow = masks[m, y, px:px + w]
                for i in range(w):
                    t[i] |= mrow[i]
        c = 0
        for i in range(w):
            o[i] = labelled[i] & (np.uint8(1) - t[i])
            c += np.int64(t[i])
        count = c
        visible += count
    return visible


def warp_labels(lr: LayerRuns, n_layers: int, p: Plan, slots: np.ndarray, union: int = -1
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The crop of plan ``p`` from label runs holding the window's rows: ``(masks (M, Hc, Wc)
    bool, target (Hc, Wc) bool, other (Hc, Wc) bool, visible)``: ``masks[m]`` where layer
    ``slots[m, 0]`` holds label ``slots[m, 1]`` (``slots (M, 2) int64``), ``target`` their
    union (``masks[0]`` itself when M is 1), ``other`` where any of the ``n_layers`` layers
    holds a label off the target, ``visible`` the target's pixel count: one pass, no numpy
    pass over the crop after. ``union``: the index of a layer labelled wherever any other is
    (schema 5 stores one when regions take several layers): then only it and the targets'
    layers are read (a dense record's 15 layers cost what 2 do)."""
    masks = np.zeros((len(slots), *p.crop), bool)
    merged = len(slots) != 1
    target = np.zeros(p.crop, bool) if merged else masks[0]
    other = np.zeros(p.crop, bool)
    scan = np.arange(n_layers, dtype=np.int64) if union < 0 else \
        np.unique(np.append(np.asarray(slots, np.int64)[:, 0], union))
    visible = _warp(lr.runs, lr.starts, lr.first, lr.rows, scan, union, *p.window, *p.size,
                    p.flip, *p.paste, slots, masks.view(np.uint8), target.view(np.uint8),
                    merged, other.view(np.uint8))
    return masks, target, other, int(visible)


@njit(cache=True, nogil=True)
def _resample_box(a, ay, ax, y0, y1, x0, x1, h, w, flip, py, px, by0, by1, bx0, bx1, fill,
                  out):
    rows = nearest_map(y1 - y0, h) + y0 - ay
    cols = nearest_map(x1 - x0, w) + x0 - ax
    src = np.empty(bx1 - bx0, np.int64)  # column of ``a`` per box column, -1: fill
    for k in range(bx1 - bx0):
        i = bx0 + k - px
        c = -1 if i < 0 or i >= w else cols[w - 1 - i] if flip else cols[i]
        src[k] = c if 0 <= c < a.shape[1] else -1
    prev = -2
    for y in range(by0, by1):
        j = y - py
        r = rows[j] if 0 <= j < h else -1
        r = r if 0 <= r < a.shape[0] else -1
        o = out[y - by0]
        if r == prev:
            o[:] = out[y - by0 - 1]
            continue
        prev = r
        if r < 0:
            o[:] = fill
            continue
        row = a[r]
        for k in range(src.size):
            c = src[k]
            o[k] = row[c] if c >= 0 else fill


@njit(cache=True, nogil=True)
def _source_span(w0, w1, n, paste, b0, b1, flip):
    """``[a, b)``: the window's ``[w0, w1)`` pixels that nearest-resampling it to ``n`` and
    pasting at ``paste`` puts in crop pixels ``[b0, b1)`` (``flip``: mirrored): the column
    map is monotonic, so its values at the ends; ``(w0, w0)`` when they show padding only."""
    lo, hi = max(b0 - paste, 0), min(b1 - paste, n)
    if lo >= hi:
        return w0, w0
    if flip:
        lo, hi = n - hi, n - lo
    m = w1 - w0
    step = m / n
    f = step * 0.5
    a = 0
    for i in range(hi):  # nearest_map's float64 accumulation, in its order
        if i == lo:
            a = min(int(np.floor(f)), m - 1)
        if i == hi - 1:
            return w0 + a, w0 + min(int(np.floor(f)), m - 1) + 1
        f += step
    return w0, w0


def source_box(p: Plan, box: Box) -> Box:
    """The original pixels that ``resample_box`` reads for the ``Box`` ``box`` of the crop of
    plan ``p`` (a ``Box``, empty where ``box`` shows padding only): a map decoded over it
    resamples to the same pixels as the whole map."""
    y0, y1, x0, x1 = p.window
    ys = _source_span(y0, y1, p.size[0], p.paste[0], box.y0, box.y1, False)
    xs = _source_span(x0, x1, p.size[1], p.paste[1], box.x0, box.x1, p.flip)
    return Box(*ys, *xs)


def resample_box(array: np.ndarray, origin: tuple[int, int], p: Plan, box: Box, fill: int,
                 out: np.ndarray) -> np.ndarray:
    """The ``Box`` ``box`` of the crop of plan ``p`` from ``array`` (``(n, m)``, its ``[0, 0]``
    at original pixel ``origin`` ``(y, x)``; pixels off it, and padding, read as ``fill``),
    into ``out`` (``box.shape``, ``array``'s dtype)."""
    if out.shape != box.shape or array.ndim != 2:
        raise ValueError(f"out {out.shape} must be the box's shape and array 2-D, got box "
                         f"{box}, array {array.shape}")  # the kernel checks no bounds
    _resample_box(array, *origin, *p.window, *p.size, p.flip, *p.paste, *box, fill, out)
    return out
