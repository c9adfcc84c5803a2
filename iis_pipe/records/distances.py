"""Stored per-region distance transforms: one quantised map per region, inside and outside.

For a region mask ``m`` the stored map is ``u = inside`` where ``m`` and ``u = outside``
elsewhere, so one map carries both (the mask gives the side):

- ``inside``  = Euclidean distance from a region pixel to the nearest non-region pixel, the
  image border counting as boundary (as the click robots pad it);
- ``outside`` = Euclidean distance from a non-region pixel to the nearest region pixel.

Levels: ``q = min(round(u / step), clip)`` as uint8 on the region, and off it
``q = min(round(u / step), reach + 1)``: outside levels are kept up to the region's ``reach``
(schema 5, :func:`reach`: ``ceil(expand * sqrt(area) / step) + 2``, at most ``clip - 1``; the
border band the click sampler reads never asks for more when its ``expand_ratio`` is at most
``expand``); schema 1-4 kept them to ``clip``. **Error bound** against an exact EDT:
``|q * step - u| <= step / 2`` on the region wherever ``u < (clip - 0.5) * step`` (else
``q == clip``), and off it wherever ``u <= (reach + 0.5) * step`` (else ``q == reach + 1``,
"at least that far"; pixels off the stored window read as ``clip``). Only the
region's bbox grown by ``ceil((reach + 0.5) * step)`` pixels can hold unsaturated levels, so only that window is stored (and its EDT is all that is computed);
a reader fills pixels off the window with ``clip``.

Encoding (schema 5, :func:`encode_bands`): each map is cut into bands of ``rows`` rows, each
band one zstd frame of: a flag byte; for flag 0, the band's first level, then 2-bit codes
(``delta + 1``, four per byte, first code in the low bits) of the deltas along the first row
and then down each column. Quantised distances with ``step >= 1`` are 1-Lipschitz between
4-neighbours (rounding the square root of an integer never meets a tie), so these deltas are
always -1, 0 or 1; a band where they are not (``step < 1``) is stored as flag 1 and its raw
levels. A region's span is ``uint32`` frame lengths (one per band), then the frames: a reader
decompresses only the bands under the rows it needs (:func:`decode_rows`). Boxes and windows are ``Box``es here; the schema
stores a window as ``dt_window`` ``[y0, x0, h, w]`` (``Box.to_yxhw``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit

from iis_pipe.geometry.box import Box, mask_bbox
from iis_pipe.geometry.distance import sq_distance_to_zero


@dataclass(frozen=True)
class DistanceCoding:
    """Quantisation of stored distances: ``step`` pixels per level, ``clip`` levels at most."""

    step: float = 1.0
    clip: int = 255

    def __post_init__(self):
        if not (0 < self.clip <= 255) or self.step <= 0:
            raise ValueError(f"need 0 < clip <= 255 and step > 0, got {self}")

    @property
    def margin(self) -> int:
        return int(math.ceil(self.clip * self.step)) + 1


# Levels of slack in a region's reach: the stream's band radius is a ceiling (up to one crop
# pixel, 1 / 0.75 source pixels at the smallest resize) and the crop's resampled area is not
# exactly the scaled one; the stream checks the reach anyway and computes the band otherwise.
REACH_SLACK = 2


def reach(area: int, expand: float, coding: DistanceCoding) -> int:
    """Outside levels kept exact for a region of ``area`` pixels: the band of
    ``ceil(expand * sqrt(area))`` pixels and a slack, at most ``clip - 1`` levels."""
    return int(min(math.ceil(expand * math.sqrt(area) / coding.step) + REACH_SLACK,
                   coding.clip - 1))


def _sq_map(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` region -> ``(H, W) int32`` exact squared combined distances."""
    d2 = sq_distance_to_zero(~mask)  # outside; 0 on the region
    # Inside only needs the region's bbox plus one pixel, the border counting as boundary:
    # no nearer boundary pixel can lie beyond that ring.
    ring = mask_bbox(mask).grow(1, mask.shape).slices
    box = mask[ring]
    np.copyto(d2[ring], sq_distance_to_zero(box, pad_border=True), where=box)
    return d2


def exact_map(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` region -> ``(H, W) float32`` exact combined distance map ``u``."""
    return np.sqrt(_sq_map(mask), dtype=np.float32)


@lru_cache(maxsize=8)
def _quantiser(coding: DistanceCoding) -> tuple[int, np.ndarray]:
    """Squared distances at or above ``limit`` saturate; below, ``table[d2]`` is the level."""
    limit = int(np.ceil(((coding.clip + 0.5) * coding.step) ** 2))
    levels = np.rint(np.sqrt(np.arange(limit + 1)) / coding.step)
    return limit, np.minimum(levels, coding.clip).astype(np.uint8)


def encode_region(mask: np.ndarray, bbox: Box, coding: DistanceCoding,
                  reach_levels: int | None = None, corner: tuple[int, int] = (0, 0),
                  shape: tuple[int, int] | None = None) -> tuple[np.ndarray, Box]:
    """Quantised map of one region whose tight box is ``bbox`` (image pixels), over its
    window (``bbox`` grown by the margin, clipped to the image): ``((h, w) uint8, window)``.

    ``mask``: the region, ``(H, W) bool`` over the image, or over a part of an image of
    ``shape`` that holds the region, its ``[0, 0]`` at image pixel ``corner`` ``(y, x)`` (a
    ``geometry.box.BoxMask``). ``reach_levels``: outside levels kept (see
    :func:`reach`; the margin is ``ceil((reach_levels + 0.5) * step)``); None: up to
    ``clip``, schema 1-4's maps, over the bbox grown by ``clip * step + 1``."""
    margin = coding.margin if reach_levels is None else \
        int(math.ceil((reach_levels + 0.5) * coding.step))
    win = bbox.grow(margin, mask.shape if shape is None else shape)
    # Every region pixel and every non-region pixel nearer than the margin lies in the window,
    # so the transforms over it are exact where it matters; the rest saturates anyway. The
    # image border counts as boundary only where the window reaches it (the bbox ring is
    # non-region elsewhere and nearer).
    cy, cx = corner
    crop = np.zeros(win.shape, bool)
    part = Box(win.y0 - cy, win.y1 - cy, win.x0 - cx, win.x1 - cx).clip(mask.shape)
    if not part.empty:
        crop[part.y0 + cy - win.y0:part.y1 + cy - win.y0,
             part.x0 + cx - win.x0:part.x1 + cx - win.x0] = mask[part.slices]
    d2 = _sq_map(crop)
    limit, table = _quantiser(coding)
    out = np.empty(d2.shape, np.uint8)
    cap = coding.clip if reach_levels is None else reach_levels + 1
    _quantise(d2, crop, limit, table, np.uint8(cap), out)
    return out, win


@njit(cache=True, nogil=True)
def _quantise(d2, mask, limit, table, cap, out):
    # table[np.minimum(d2, limit)], capped at ``cap`` off the region, in one pass (numpy: a
    # clip pass, a gather and a select, 5x the time)
    for y in range(d2.shape[0]):
        for x in range(d2.shape[1]):
            q = table[min(d2[y, x], limit)]
            out[y, x] = q if mask[y, x] else min(q, cap)


@njit(cache=True, nogil=True)
def _pack_band(q, out):
    """Band payload of ``q (n, w) uint8`` into ``out`` (at least ``band_bytes`` long): flag 0,
    the first level, 2-bit delta codes; returns its length, or -1 when a delta is not in
    -1..1 (the band is then stored raw)."""
    n, w = q.shape
    out[0] = 0
    out[1] = q[0, 0]
    pos, shift, acc = 2, 0, 0
    for y in range(n):
        for x in range(w):
            if y == 0:
                if x == 0:
                    continue
                d = np.int32(q[0, x]) - np.int32(q[0, x - 1])
            else:
                d = np.int32(q[y, x]) - np.int32(q[y - 1, x])
            if d < -1 or d > 1:
                return -1
            acc |= (d + 1) << shift
            shift += 2
            if shift == 8:
                out[pos] = acc
                pos += 1
                shift, acc = 0, 0
    if shift:
        out[pos] = acc
        pos += 1
    return pos


def _packed_bytes(n: int, w: int) -> int:
    return 2 + (n * w - 1 + 3) // 4


def encode_bands(q: np.ndarray, rows: int, compress) -> bytes:
    """A region's span (see module doc) for ``q (h, w) uint8``: ``uint32`` frame lengths, then
    one ``compress``ed frame per band of ``rows`` rows."""
    q = np.ascontiguousarray(q, np.uint8)
    frames = []
    buf = np.empty(_packed_bytes(rows, q.shape[1]) if q.size else 2, np.uint8)
    for i in range(0, q.shape[0], rows):
        band = q[i:i + rows]
        n = _pack_band(band, buf)
        payload = buf[:n].tobytes() if n >= 0 else b"\x01" + band.tobytes()
        frames.append(compress(payload))
    head = np.array([len(f) for f in frames], "<u4").tobytes()
    return head + b"".join(frames)


@njit(cache=True, nogil=True)
def _unpack_bands(raw, n_bands, rows, h, w, x0, out):
    """Band payloads back to back in ``raw`` (bands of ``rows`` rows of a map ``w`` wide, ``h``
    rows from the first band's top) -> ``out (n, m)``: rows ``0..n-1`` (``n <= h``) over
    columns ``x0..x0+m-1``; returns the bytes read (-1: a payload is cut short or has an
    unknown flag). A band's first row is decoded up to the last column wanted (its deltas run
    along it from column 0), the rows under it over the wanted columns only, each in two
    passes that vectorise: a row's codes unpacked, then added to the row above."""
    n_out, m = out.shape
    pos = 0
    codes = np.empty(m + 8, np.uint8)  # a row's codes from whole bytes: up to 3 more each side
    for b in range(n_bands):
        top = b * rows
        n = min(rows, h - top)
        keep = max(min(n, n_out - top), 0)  # rows of this band that are wanted
        if pos >= raw.size:
            return -1
        flag = raw[pos]
        if flag == 1:
            if pos + 1 + n * w > raw.size:
                return -1
            for y in range(keep):
                src = raw[pos + 1 + y * w + x0:pos + 1 + y * w + x0 + m]
                out[top + y] = src
            pos += 1 + n * w
            continue
        size = 2 + (n * w - 1 + 3) // 4
        if flag != 0 or pos + size > raw.size:
            return -1
        if keep and m:
            packed = raw[pos + 2:pos + size]  # code k: the delta of band pixel k + 1
            v = np.int32(raw[pos + 1])
            if x0 == 0:
                out[top, 0] = v
            for x in range(1, x0 + m):
                k = x - 1
                v += np.int32((packed[k >> 2] >> ((k & 3) << 1)) & 3) - 1
                if x >= x0:
                    out[top, x - x0] = v
            for y in range(1, keep):
                k0 = y * w + x0 - 1
                first, skip = k0 >> 2, k0 & 3
                for i in range(min((skip + m + 3) >> 2, packed.size - first)):
                    c = packed[first + i]
                    codes[4 * i] = c & 3
                    codes[4 * i + 1] = (c >> 2) & 3
                    codes[4 * i + 2] = (c >> 4) & 3
                    codes[4 * i + 3] = c >> 6
                above, row = out[top + y - 1], out[top + y]
                for x in range(m):  # uint8 arithmetic: levels stay within 0..255
                    row[x] = above[x] + codes[skip + x] - np.uint8(1)
        pos += size
    return pos


def decode_box(span, shape: tuple[int, int], rows: int, box: Box, decompress
               ) -> tuple[np.ndarray, tuple[int, int]]:
    """At least ``box`` (map pixels, clipped to the map) of a region's span of a map of
    ``shape``, decompressing only the bands under its rows: ``((n, m) uint8, (y, x) of its
    first pixel)``, from the top of the first band under ``box`` (column deltas run down from
    a band's first row) to ``box``'s last row, over ``box``'s columns. ``decompress``: bytes of
    consecutive frames -> their payloads joined. Raises ValueError on corrupt data."""
    h, w = shape
    n_bands = -(-h // rows) if h else 0
    span = memoryview(span)
    if len(span) < 4 * n_bands:
        raise ValueError(f"corrupt distance span ({len(span)} bytes, {n_bands} bands)")
    y0, y1 = min(max(box.y0, 0), h), min(max(box.y1, 0), h)
    x0, x1 = min(max(box.x0, 0), w), min(max(box.x1, 0), w)
    y1, x1 = max(y1, y0), max(x1, x0)
    if y1 > y0 and x1 > x0:
        b0, b1 = y0 // rows, -(-y1 // rows)
        first = b0 * rows
    else:  # nothing wanted: no band
        b0 = b1 = 0
        first = y0
    out = np.empty((y1 - first, x1 - x0), np.uint8)
    if b1 > b0:
        lengths = np.frombuffer(span[:4 * n_bands], "<u4").astype(np.int64)
        start = 4 * n_bands + int(lengths[:b0].sum())
        stop = start + int(lengths[b0:b1].sum())
        if stop > len(span):
            raise ValueError(f"corrupt distance span (frames end at {stop}, span {len(span)})")
        raw = np.frombuffer(decompress(span[start:stop]), np.uint8)
        if _unpack_bands(raw, b1 - b0, rows, min(b1 * rows, h) - first, w, x0, out) != raw.size:
            raise ValueError(f"corrupt distance span (bands {b0}..{b1 - 1})")
    return out, (first, x0)


def decode_rows(span, shape: tuple[int, int], rows: int, y0: int, y1: int, decompress
                ) -> tuple[np.ndarray, int]:
    """Rows ``[y0, y1)`` (at least, clipped to the map) of a region's span of a map of
    ``shape``, whole (:func:`decode_box`): ``((n, w) uint8, first row)``."""
    out, (first, _) = decode_box(span, shape, rows, Box(y0, y1, 0, shape[1]), decompress)
    return out, first


def unpack_region(crop: np.ndarray, win: Box, shape: tuple[int, int], clip: int) -> np.ndarray:
    """One region's full-size quantised map ``(H, W) uint8`` from its map ``crop`` over the
    window ``win`` (saturated outside it)."""
    out = np.full(shape, clip, np.uint8)
    out[win.slices] = crop
    return out


def inside_outside(q: np.ndarray, mask: np.ndarray, coding: DistanceCoding,
                   scale: float | None = None, out: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split a quantised map ``(H, W) uint8`` into ``(inside, outside)`` ``(H, W) float32``
    distances in pixels: ``q * scale`` on the mask's side, 0 on the other.

    ``scale``: pixels per level, ``coding.step`` by default (a resized map passes the step
    times the resize factor); ``out``: two float32 arrays to fill instead of new ones.
    """
    if out is None:
        out = np.empty(q.shape, np.float32), np.empty(q.shape, np.float32)
    step = coding.step if scale is None else scale
    _split(q, mask, np.float32(step), out[0], out[1])
    return out


@njit(cache=True, nogil=True)
def _split(q, mask, scale, inside, outside):
    # one pass instead of numpy's four (convert, scale, two selects): the training stream
    # runs this on every sample
    zero = np.float32(0)
    for y in range(q.shape[0]):
        for x in range(q.shape[1]):
            v = np.float32(q[y, x]) * scale
            if mask[y, x]:
                inside[y, x], outside[y, x] = v, zero
            else:
                inside[y, x], outside[y, x] = zero, v
