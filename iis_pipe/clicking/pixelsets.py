"""Counting and picking pixels of a set without listing them (numba).

A pixel set lives in a box ``(y0, y1, x0, x1)``; :func:`cumulative_counts` counts its pixels
row by row in one vectorized pass, and :func:`pick` finds the pixels of given ranks (the k-th
pixel of the set in row-major order, 0-based) by locating each rank's row from the cumulative
counts and scanning that row only. Two kinds of set cover the click samplers:

- range sets ``{lo < d * scale <= hi} \\ ignore`` of a distance map ``d`` (an inside or outside
  transform, or stored ``uint8`` levels with ``scale`` pixels per level), limited to the pixels
  where ``mask`` is True (``flip`` 0) or False (``flip`` 1) when ``has_mask``;
- masked sets ``mask \\ union \\ ignore`` (without ``mask``: the whole box).

``d`` and the union ``u`` come with the image coordinates of their ``[0, 0]`` pixel, so a crop
and a full-size array are handled alike; ``mask`` and ``ignore`` are full size. Absent masks are
passed as any bool array with their ``has_*`` flag False.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RANGE, MASKED = 0, 1


@njit(cache=True, nogil=True, inline="always")
def _in_range(v, lo, hi):
    return np.uint8(v > lo) & np.uint8(v <= hi)


@njit(cache=True, nogil=True)
def _row_flags(kind, y, box, d, dy, dx, lo, hi, scale, mask, has_mask, flip, u, uy, ux, ign,
               has_ign, out):
    """``out[x - x0] = 1`` where pixel ``(y, x)`` of the box row is in the set, else 0."""
    x0, x1 = box[2], box[3]
    n = x1 - x0
    if kind == RANGE:
        drow = d[y - dy, x0 - dx:x1 - dx]
        if has_mask:
            mrow = mask[y, x0:x1]
            for i in range(n):
                out[i] = _in_range(np.float32(drow[i]) * scale, lo, hi) & (np.uint8(mrow[i]) ^ flip)
        else:
            for i in range(n):
                out[i] = _in_range(np.float32(drow[i]) * scale, lo, hi)
    else:
        if has_mask:
            mrow = mask[y, x0:x1]
            for i in range(n):
                out[i] = np.uint8(mrow[i])
        else:
            out[:n] = 1
        if uy <= y < uy + u.shape[0]:
            a, b = max(x0, ux), min(x1, ux + u.shape[1])
            if a < b:
                urow = u[y - uy, a - ux:b - ux]
                for i in range(b - a):
                    out[a - x0 + i] &= np.uint8(1) - np.uint8(urow[i])
    if has_ign:
        irow = ign[y, x0:x1]
        for i in range(n):
            out[i] &= np.uint8(1) - np.uint8(irow[i])


@njit(cache=True, nogil=True)
def cumulative_counts(kind, box, d, dy, dx, lo, hi, scale, mask, has_mask, flip, u, uy, ux, ign,
                      has_ign):
    """``(y1 - y0,) int64`` pixels of the set in the rows of ``box`` up to each row."""
    y0, y1, x0, x1 = box
    n = max(x1 - x0, 0)
    out = np.zeros(max(y1 - y0, 0), np.int64)
    flags = np.empty(n, np.uint8)
    plain = kind == MASKED and not has_mask and not has_ign
    total = 0
    for y in range(y0, y1):
        c = 0
        if kind == RANGE and has_mask:  # stored levels on one side of a mask
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
            _row_flags(kind, y, box, d, dy, dx, lo, hi, scale, mask, has_mask, flip, u, uy, ux,
                       ign, has_ign, flags)
            for i in range(n):
                c += flags[i]
        total += c
        out[y - y0] = total
    return out


@njit(cache=True, nogil=True)
def pick(kind, box, d, dy, dx, lo, hi, scale, mask, has_mask, flip, u, uy, ux, ign, has_ign, cum,
         ks):
    """``(n, 2) int64`` pixels ``(y, x)`` of ranks ``ks`` (each ``< cum[-1]``), where ``cum`` is
    from :func:`cumulative_counts`."""
    y0, y1, x0, x1 = box
    out = np.empty((ks.shape[0], 2), np.int64)
    flags = np.empty(x1 - x0, np.uint8)
    for j in range(ks.shape[0]):
        r = np.searchsorted(cum, ks[j], side="right")
        rank = ks[j] - (cum[r - 1] if r > 0 else 0)
        _row_flags(kind, y0 + r, box, d, dy, dx, lo, hi, scale, mask, has_mask, flip, u, uy, ux,
                   ign, has_ign, flags)
        for i in range(x1 - x0):
            if flags[i]:
                if rank == 0:
                    out[j, 0], out[j, 1] = y0 + r, x0 + i
                    break
                rank -= 1
    return out
