"""Label layers as runs: each row of the stacked ``(L*H, W)`` label layers (see ``masks``) as
the runs of equal labels along it.

Masks are mostly long runs, so this is small (DAVIS: 1.9 k runs on average, 1.7 KB compressed,
against 410 KB of label pixels) and, unlike label pixels, needs no decompression of whole rows: the
training stream reads a crop's labels straight from the runs (``iis_pipe.stream.nearest``).

Format: an ``(N, 2)`` array, row after row, one ``[end, label]`` per run (``end`` exclusive,
the run starts where the previous one of its row ended, or at 0); every row's last run ends
at ``W``. ``uint16``, or ``uint32`` when ``W`` or a label exceeds 65535.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


class LayerRuns(NamedTuple):
    """Rows ``[first, first + rows)`` of every layer of a record, as runs.

    ``runs (N, 2)`` as in the module's format; ``starts (L*rows + 1,) int64``: index of the
    first run of each row (layer after layer), then ``N``."""

    runs: np.ndarray
    starts: np.ndarray
    first: int
    rows: int
    width: int

    def holds(self, y0: int, y1: int, height: int) -> bool:
        """Whether image rows ``[y0, y1)`` (clipped to ``height``) are all here."""
        return self.first <= max(y0, 0) and min(y1, height) <= self.first + self.rows


@njit(cache=True, nogil=True)
def _count(layers):
    """Number of runs of ``layers`` (branch-free: vectorised)."""
    n = 0
    for y in range(layers.shape[0]):
        row = layers[y]
        c = 1
        for x in range(1, row.size):
            c += row[x] != row[x - 1]
        n += c
    return n


@njit(cache=True, nogil=True)
def _encode(layers, out):
    n = 0
    w = layers.shape[1]
    for y in range(layers.shape[0]):
        row = layers[y]
        for x in range(1, w):
            if row[x] != row[x - 1]:
                out[n, 0] = x
                out[n, 1] = row[x - 1]
                n += 1
        out[n, 0] = w
        out[n, 1] = row[w - 1]
        n += 1


def encode_runs(layers: np.ndarray) -> np.ndarray:
    """``(R, W)`` uint8/uint16 labels -> ``(N, 2)`` runs (uint16, or uint32 when needed)."""
    layers = np.ascontiguousarray(layers)
    dtype = np.uint16 if max(layers.shape[1], int(layers.max(initial=0))) <= 0xFFFF else np.uint32
    out = np.empty((_count(layers), 2), dtype)
    _encode(layers, out)
    return out


@njit(cache=True, nogil=True)
def _row_starts(ends, rows, width):
    """Index of each row's first run, then N; -1 at [0] when the runs are not ``rows`` rows of
    ``width`` (a run not past the previous one of its row, or past the row's end)."""
    starts = np.empty(rows + 1, np.int64)
    starts[0] = -1
    row, prev = 0, 0
    for k in range(ends.size):
        e = np.int64(ends[k])
        if e <= prev or e > width or row == rows:
            return starts
        if e == width:
            row += 1
            starts[row] = k + 1
            prev = 0
        else:
            prev = e
    if row == rows and prev == 0:
        starts[0] = 0
    return starts


def row_starts(runs: np.ndarray, rows: int, width: int) -> np.ndarray:
    """``(rows + 1,) int64`` index of each row's first run (then ``N``); raises ValueError
    unless ``runs`` is ``rows`` rows of ``width`` columns in the module's format."""
    if runs.ndim != 2 or runs.shape[1] != 2 or runs.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"label runs must be (N, 2) uint16/uint32, got {runs.shape} "
                         f"{runs.dtype}")
    starts = _row_starts(runs[:, 0], rows, width)
    if starts[0] != 0:
        raise ValueError(f"corrupt label runs (not {rows} rows of {width} columns)")
    return starts


def decode_runs(runs: np.ndarray, rows: int, width: int) -> np.ndarray:
    """Inverse of ``encode_runs``: ``(rows, width)`` labels of the smallest unsigned dtype that
    holds them. Raises ValueError on runs that are not ``rows`` rows of ``width``."""
    starts = row_starts(runs, rows, width)
    ends = runs[:, 0].astype(np.int64)
    begins = np.empty_like(ends)
    begins[1:] = ends[:-1]
    begins[starts[:-1]] = 0
    labels = runs[:, 1]
    dtype = np.min_scalar_type(int(labels.max(initial=0)))
    return np.repeat(labels.astype(dtype), ends - begins).reshape(rows, width)


@njit(cache=True, nogil=True)
def _layer_starts(ends, bounds, wanted, layers, rows, width):
    """``LayerRuns.starts`` of ``layers`` layers from the runs of the ``wanted`` ones only,
    back to back (layer ``wanted[j]``'s end at ``bounds[j]``); -1 at [0] when a part is not
    ``rows`` rows of ``width``."""
    starts = np.empty(layers * rows + 1, np.int64)
    k, j = 0, 0
    for layer in range(layers):
        base = layer * rows
        if j < wanted.size and wanted[j] == layer:
            for r in range(rows):
                starts[base + r] = k
                prev = 0
                while True:
                    if k >= bounds[j]:
                        starts[0] = -1
                        return starts
                    e = np.int64(ends[k])
                    k += 1
                    if e <= prev or e > width:
                        starts[0] = -1
                        return starts
                    if e == width:
                        break
                    prev = e
            if k != bounds[j]:
                starts[0] = -1
                return starts
            j += 1
        else:  # not read: its rows hold no run
            starts[base:base + rows] = k
    starts[layers * rows] = k
    return starts


def some_layer_runs(parts: list[np.ndarray], wanted: list[int], layers: int, rows: int,
                    width: int) -> LayerRuns:
    """``LayerRuns`` of ``layers`` stacked layers of ``rows`` rows of which only the ``wanted``
    ones (increasing) were read, their runs ``parts`` (one each, in that order); the other
    layers' rows hold no run. Raises ValueError unless each part is ``rows`` rows of
    ``width`` in the module's format."""
    found = np.concatenate(parts) if len(parts) != 1 else parts[0]
    if found.ndim != 2 or found.shape[1] != 2 or found.dtype not in (np.uint16, np.uint32):
        raise ValueError(f"label runs must be (N, 2) uint16/uint32, got {found.shape} "
                         f"{found.dtype}")
    bounds = np.cumsum([len(p) for p in parts])
    starts = _layer_starts(found[:, 0], bounds, np.asarray(wanted, np.int64), layers, rows,
                           width)
    if starts[0] != 0:
        raise ValueError(f"corrupt label runs (a layer read is not {rows} rows of {width} "
                         f"columns)")
    return LayerRuns(found, starts, 0, rows, width)
