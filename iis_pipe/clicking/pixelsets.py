"""Counting and picking pixels of a set without listing them (numba).

A pixel set (:class:`PixelSet`) lives in a box ``(y0, y1, x0, x1)``; :func:`cumulative_counts`
counts its pixels row by row in one vectorized pass, and :func:`pick` finds the pixels of given
ranks (the k-th pixel of the set in row-major order, 0-based) by locating each rank's row from
the cumulative counts and scanning that row only. Two kinds of set cover the click samplers:

- range sets ``{lo < d * scale <= hi} \\ ignore`` of a distance map ``d`` (an inside or outside
  transform, or stored ``uint8`` levels with ``scale`` pixels per level), limited to the pixels
  where ``mask`` is True (``flip`` 0) or False (``flip`` 1) when ``has_mask``
  (:meth:`PixelSet.inside`, :meth:`PixelSet.band`);
- masked sets ``mask \\ union \\ ignore`` (without ``mask``: the whole box)
  (:meth:`PixelSet.background`).

``d`` and the union come with the image coordinates ``(y, x)`` of their ``[0, 0]`` pixel, so a
crop and a full-size array are handled alike; ``mask`` and ``ignore`` are full size. Absent masks
are empty arrays with their ``has_*`` flag False. Build sets with the named constructors: the
kernels read the fields by name, so no argument can land in another's place.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import overload

RANGE, MASKED = 0, 1

_NO_MAP = np.zeros((1, 1), np.float32)
_NO_MASK = np.zeros((0, 0), bool)
_ONE = np.float32(1)


class PixelSet(NamedTuple):
    """One pixel set, as the kernels read it (a numba-typed NamedTuple: fixed field types).

    - ``kind``: ``RANGE`` or ``MASKED``; ``box``: ``(y0, y1, x0, x1)`` half-open, holds the set.
    - ``dist``: ``(h, w) float32`` distances or ``uint8`` levels, ``dist_origin`` ``(y, x)`` of
      its ``[0, 0]``; ``lo``, ``hi``, ``scale``: the range ``lo < dist * scale <= hi``.
    - ``mask``: ``(H, W) bool`` (``has_mask``), kept where it is True xor ``flip``.
    - ``union``: ``(h, w) bool`` pixels a masked set excludes, ``union_origin`` ``(y, x)``.
    - ``ignore``: ``(H, W) bool`` (``has_ignore``), pixels never in the set.
    """

    kind: int
    box: tuple[int, int, int, int]
    dist: np.ndarray
    dist_origin: tuple[int, int]
    lo: float
    hi: float
    scale: np.float32
    mask: np.ndarray
    has_mask: bool
    flip: int
    union: np.ndarray
    union_origin: tuple[int, int]
    ignore: np.ndarray
    has_ignore: bool

    @staticmethod
    def empty(ignore: np.ndarray | None = None) -> PixelSet:
        """The set with no pixel (an empty region's, or no other objects)."""
        return PixelSet.inside((0, 0, 0, 0), _NO_MAP, (0, 0), 0.0, ignore=ignore)

    @staticmethod
    def inside(box, dist: np.ndarray, origin, above: float, scale: float = 1.0,
               region: np.ndarray | None = None, ignore: np.ndarray | None = None) -> PixelSet:
        """Pixels of ``box`` whose inside distance ``dist * scale`` exceeds ``above``; with
        ``region`` (``(H, W) bool``: ``dist`` holds stored levels, outside distances off it) only
        those on it."""
        return PixelSet(RANGE, tuple(box), dist, tuple(origin), float(above), np.inf,
                        np.float32(scale), _NO_MASK if region is None else region,
                        region is not None, 0, _NO_MASK, (0, 0),
                        _NO_MASK if ignore is None else ignore, ignore is not None)

    @staticmethod
    def band(box, dist: np.ndarray, origin, radius: float, scale: float = 1.0,
             merged: np.ndarray | None = None, ignore: np.ndarray | None = None) -> PixelSet:
        """Pixels of ``box`` with outside distance ``0 < dist * scale <= radius``; with
        ``merged`` (``(H, W) bool``: ``dist`` holds stored levels, inside distances on it) only
        those off it."""
        return PixelSet(RANGE, tuple(box), dist, tuple(origin), 0.0, float(radius),
                        np.float32(scale), _NO_MASK if merged is None else merged,
                        merged is not None, 1, _NO_MASK, (0, 0),
                        _NO_MASK if ignore is None else ignore, ignore is not None)

    @staticmethod
    def background(box, union: np.ndarray, union_origin, within: np.ndarray | None = None,
                   ignore: np.ndarray | None = None) -> PixelSet:
        """Pixels of ``box`` off ``union`` (``(h, w) bool`` at ``union_origin``); with ``within``
        (``(H, W) bool``) only those in it."""
        return PixelSet(MASKED, tuple(box), _NO_MAP, (0, 0), 0.0, 0.0, _ONE,
                        _NO_MASK if within is None else within, within is not None, 0,
                        union, tuple(union_origin),
                        _NO_MASK if ignore is None else ignore, ignore is not None)


@njit(cache=True, nogil=True, inline="always")
def _in_range(v, lo, hi):
    return np.uint8(v > lo) & np.uint8(v <= hi)


@njit(cache=True, nogil=True)
def _row_flags(s, y, out):
    """``out[x - x0] = 1`` where pixel ``(y, x)`` of the box row of set ``s`` is in it, else 0."""
    x0, x1 = s.box[2], s.box[3]
    n = x1 - x0
    lo, hi, scale, flip = s.lo, s.hi, s.scale, s.flip
    if s.kind == RANGE:
        dy, dx = s.dist_origin
        drow = s.dist[y - dy, x0 - dx:x1 - dx]
        if s.has_mask:
            mrow = s.mask[y, x0:x1]
            for i in range(n):
                out[i] = _in_range(np.float32(drow[i]) * scale, lo, hi) & (np.uint8(mrow[i]) ^ flip)
        else:
            for i in range(n):
                out[i] = _in_range(np.float32(drow[i]) * scale, lo, hi)
    else:
        if s.has_mask:
            mrow = s.mask[y, x0:x1]
            for i in range(n):
                out[i] = np.uint8(mrow[i])
        else:
            out[:n] = 1
        u = s.union
        uy, ux = s.union_origin
        if uy <= y < uy + u.shape[0]:
            a, b = max(x0, ux), min(x1, ux + u.shape[1])
            if a < b:
                urow = u[y - uy, a - ux:b - ux]
                for i in range(b - a):
                    out[a - x0 + i] &= np.uint8(1) - np.uint8(urow[i])
    if s.has_ignore:
        irow = s.ignore[y, x0:x1]
        for i in range(n):
            out[i] &= np.uint8(1) - np.uint8(irow[i])


def _level_span(dist, lo, hi, scale):
    """For ``uint8`` levels: ``(a, n, True)`` such that ``lo < float32(q) * scale <= hi``
    exactly when ``q - a`` (in uint8) is at most ``n`` (``n < 0``: no level passes); float
    maps: ``(0, 0, False)``."""


@overload(_level_span)
def _level_span_impl(dist, lo, hi, scale):
    if isinstance(dist.dtype, types.Integer):
        def impl(dist, lo, hi, scale):
            # float32(q) * scale grows with q: the levels in range are one run of 0..255
            a, b = 256, -1
            for q in range(256):
                if _in_range(np.float32(q) * scale, lo, hi):
                    a, b = min(a, q), q
            return min(a, 255), b - a, True
        return impl
    return lambda dist, lo, hi, scale: (0, 0, False)


def cumulative_counts(s: PixelSet) -> np.ndarray:
    """``(y1 - y0,) int64`` pixels of :class:`PixelSet` ``s`` in the rows of its box up to each
    row."""
    return _cumulative_counts(*s)


def pick(s: PixelSet, cum: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``(n, 2) int64`` pixels ``(y, x)`` of :class:`PixelSet` ``s`` of ranks ``ks`` (each
    ``< cum[-1]``), where ``cum`` is from :func:`cumulative_counts`."""
    return _pick(cum, ks, *s)


# The entry kernels take the set's fields, in PixelSet's order (a test checks the names), and
# rebuild it: numba dispatches a call on plain arguments faster than on a NamedTuple (it types
# those in Python), which counted for several per cent of a sample.
@njit(cache=True, nogil=True)
def _cumulative_counts(kind, box, dist, dist_origin, lo, hi, scale, mask, has_mask, flip, union,
                       union_origin, ignore, has_ignore):
    s = PixelSet(kind, box, dist, dist_origin, lo, hi, scale, mask, has_mask, flip, union,
                 union_origin, ignore, has_ignore)
    y0, y1, x0, x1 = s.box
    n = max(x1 - x0, 0)
    out = np.zeros(max(y1 - y0, 0), np.int64)
    flags = np.empty(n, np.uint8)
    kind, lo, hi, scale, flip = s.kind, s.lo, s.hi, s.scale, s.flip
    d, (dy, dx), mask, ign = s.dist, s.dist_origin, s.mask, s.ignore
    u, (uy, ux) = s.union, s.union_origin
    has_mask, has_ign = s.has_mask, s.has_ignore
    plain = kind == MASKED and not has_mask and not has_ign
    a, span, levels = _level_span(d, lo, hi, scale)
    if kind == RANGE and levels and span < 0:  # no level in range
        return out
    a8, span8, flip8 = np.uint8(a), np.uint8(max(span, 0)), np.uint8(flip)
    one = np.uint8(1)
    total = 0
    for y in range(y0, y1):
        c = 0
        if kind == RANGE and levels and has_mask:  # stored levels on one side of a mask
            # uint8 lanes: the range as one unsigned compare (see _level_span), no floats
            drow = d[y - dy, x0 - dx:x1 - dx]
            mrow = mask[y, x0:x1]
            c32 = np.int32(0)
            if has_ign:
                irow = ign[y, x0:x1]
                for i in range(n):
                    c32 += np.uint8(np.uint8(drow[i]) - a8 <= span8) \
                        & (np.uint8(mrow[i]) ^ flip8) & (one - np.uint8(irow[i]))
            else:
                for i in range(n):
                    c32 += np.uint8(np.uint8(drow[i]) - a8 <= span8) & (np.uint8(mrow[i]) ^ flip8)
            c = c32
        elif kind == RANGE and has_mask:  # float maps on one side of a mask
            drow = d[y - dy, x0 - dx:x1 - dx]
            mrow = mask[y, x0:x1]
            if has_ign:
                irow = ign[y, x0:x1]
                for i in range(n):
                    c += (_in_range(np.float32(drow[i]) * scale, lo, hi) & (np.uint8(mrow[i]) ^ flip)
                          & (np.uint8(1) - np.uint8(irow[i])))
            else:
                for i in range(n):
                    c += _in_range(np.float32(drow[i]) * scale, lo, hi) & (np.uint8(mrow[i]) ^ flip)
        elif kind == RANGE:  # counted in place: twice as fast as flags then sum
            drow = d[y - dy, x0 - dx:x1 - dx]
            if has_ign:
                irow = ign[y, x0:x1]
                for i in range(n):
                    c += _in_range(np.float32(drow[i]) * scale, lo, hi) & (np.uint8(1) - np.uint8(irow[i]))
            else:
                for i in range(n):
                    c += _in_range(np.float32(drow[i]) * scale, lo, hi)
        elif plain:  # the whole row less the union's pixels in it: no per-pixel flags
            c = n
            if uy <= y < uy + u.shape[0]:
                a, b = max(x0, ux), min(x1, ux + u.shape[1])
                urow = u[y - uy, a - ux:b - ux]
                for i in range(b - a):
                    c -= np.int64(urow[i])
        else:
            _row_flags(s, y, flags)
            for i in range(n):
                c += flags[i]
        total += c
        out[y - y0] = total
    return out


@njit(cache=True, nogil=True)
def _pick(cum, ks, kind, box, dist, dist_origin, lo, hi, scale, mask, has_mask, flip, union,
          union_origin, ignore, has_ignore):
    s = PixelSet(kind, box, dist, dist_origin, lo, hi, scale, mask, has_mask, flip, union,
                 union_origin, ignore, has_ignore)
    y0, y1, x0, x1 = s.box
    out = np.empty((ks.shape[0], 2), np.int64)
    flags = np.empty(x1 - x0, np.uint8)
    for j in range(ks.shape[0]):
        r = np.searchsorted(cum, ks[j], side="right")
        rank = ks[j] - (cum[r - 1] if r > 0 else 0)
        _row_flags(s, y0 + r, flags)
        for i in range(x1 - x0):
            if flags[i]:
                if rank == 0:
                    out[j, 0], out[j, 1] = y0 + r, x0 + i
                    break
                rank -= 1
    return out
