"""Exact Euclidean distance transforms in numba (Felzenszwalb-Huttenlocher, integer exact).

Convention: ``distance_to_zero(mask)`` is ``scipy.ndimage.distance_transform_edt(mask)``: every
True pixel gets the Euclidean distance to the nearest False pixel, False pixels get 0.
``pad_border=True`` adds a virtual ring of False pixels around the image, so the image border counts
as boundary (what the click robots and the records' inside transforms use).

Records store per region::

    inside = distance_to_zero(region, pad_border=True)   # > 0 exactly on the region
    outside = distance_to_zero(~region)                  # > 0 exactly off the region

Squared distances are integers and computed exactly (``int32``); the square root is taken last,
so equal distances are bit-equal and every result is deterministic. A pixel with no False pixel
to reach (an all-True mask without padding) is ``inf``.

Kernels for other numba code: :func:`sq_distance_into` is :func:`column_pass` then
:func:`row_pass`; a caller that has the column distances already (the click robots make them
straight from their masks) calls :func:`row_pass` itself, in full, or pruned to the first
maximum (the farthest pixel, without the whole transform).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from iis_pipe.geometry.box import Box

SQ_INF = np.iinfo(np.int32).max  # squared distance of a pixel that reaches no zero
_FAR = 1 << 20  # column distance meaning "no zero in this column" (such sites are skipped)


@njit(cache=True, nogil=True)
def column_pass(feat, pad, out):
    """The column pass: ``out (h, w) int32`` gets, per True pixel of ``feat (h, w) bool``, the
    distance down its column to the nearest False one (or the virtual padding when ``pad``),
    capped at ``_FAR``; 0 on False pixels (what :func:`row_pass` takes). Branch-free rows, so
    that they vectorize."""
    h, w = feat.shape
    last = 1 if pad else _FAR
    for x in range(w):
        out[h - 1, x] = np.int32(feat[h - 1, x]) * last
    for y in range(h - 2, -1, -1):
        for x in range(w):
            out[y, x] = np.int32(feat[y, x]) * min(out[y + 1, x] + 1, _FAR)


@njit(cache=True, nogil=True)
def _row_envelope(g, a, b, left, right, env, out_row):
    """Squared distances of the run ``a..b`` of one row, given column distances ``g`` (1-D).

    Only the run and its two bounding zeros can be nearest sites for pixels of the run: any site
    beyond a bounding zero is farther than that zero. ``left``/``right`` say whether the zero at
    ``a - 1``/``b + 1`` exists (a real False pixel or the padding).

    The lower envelope of parabolas (Felzenszwalb-Huttenlocher) in integers: ``env`` rows hold
    the sites, their squared column distances, and each parabola's left end as a fraction
    ``num / den`` (``den == 0``: minus infinity), compared by cross-multiplication.
    """
    v, fv, zn, zd = env[0], env[1], env[2], env[3]
    k = -1
    for q in range(a - 1, b + 2):
        if q == a - 1:
            if not left:
                continue
            fq = 0
        elif q == b + 1:
            if not right:
                continue
            fq = 0
        else:
            if g[q] >= _FAR:
                continue
            fq = g[q] * g[q]
        num, den = 0, 0
        while k >= 0:
            # Parabolas q and v[k] meet at num / den (den > 0).
            num = (fq + q * q) - (fv[k] + v[k] * v[k])
            den = 2 * (q - v[k])
            if zd[k] != 0 and num * zd[k] <= zn[k] * den:
                k -= 1
                num, den = 0, 0
            else:
                break
        k += 1
        v[k], fv[k], zn[k], zd[k] = q, fq, num, den
    if k < 0:
        for x in range(a, b + 1):
            out_row[x] = SQ_INF
        return
    j = 0
    for x in range(a, b + 1):
        while j < k and zn[j + 1] < x * zd[j + 1]:
            j += 1
        d = x - v[j]
        out_row[x] = d * d + fv[j]


@njit(cache=True, nogil=True)
def _excluded(y, x, exclude):
    for i in range(exclude.shape[0]):
        if exclude[i, 0] == y and exclude[i, 1] == x:
            return True
    return False


@njit(cache=True, nogil=True)
def row_pass(cols, pad, prune, exclude):
    """The row pass of the exact squared distance transform, from column distances.

    ``cols (h, w) int32``: per pixel, the distance down its column to the nearest zero at or
    below it (0 on zeros, so the True pixels are ``cols > 0``), capped at ``_FAR``, the padding
    counted when ``pad`` (pixels beyond the image are zeros). The distance up each column is
    kept as the rows go; the exact envelope (:func:`_row_envelope`) runs per run of True pixels.

    - ``prune=False``: ``cols`` becomes the squared distances (``SQ_INF`` where no zero can be
      reached); returns ``(0, 0, 0)``.
    - ``prune=True``: ``cols`` is left as it is; returns ``(max, y, x)``, the first maximum of
      the squared distances in row-major order over pixels not in ``exclude`` (``(0, 0, 0)`` if
      there is none above 0). Rows and runs whose bound (their largest column distance and, with
      zeros at both ends, half their length) does not beat the best so far are skipped, and only
      a strictly larger value replaces the best, so the first maximum is kept.

    ``exclude``: ``(K, 2) int64`` pixels ``(y, x)`` of ``cols``' frame never taken as the
    maximum (past clicks); read only when ``prune``.
    """
    h, w = cols.shape
    # the distance up each column, one step above the first row: the padding, or none
    up = np.full(w, 0 if pad else _FAR - 1, np.int32)
    g = np.zeros(w, np.int64)
    env = np.zeros((4, w + 2), np.int64)
    scratch = np.zeros(w if prune else 0, np.int32)
    best, by, bx = 0, 0, 0
    for y in range(h):
        d = cols[y]
        top = 0
        for x in range(w):  # column distance: the nearer of the zeros above and below
            u = np.int32(d[x] > 0) * min(up[x] + 1, _FAR)
            up[x] = u
            g[x] = min(u, d[x])
            top = max(top, g[x])
        if top * top <= best:  # (best is 0 without prune: only rows without True pixels)
            continue
        out_row = scratch if prune else d
        x = 0
        while x < w:
            if g[x] == 0:
                x += 1
                continue
            a, top = x, 0
            while x < w and g[x] > 0:
                top = max(top, g[x])
                x += 1
            left, right = a > 0 or pad, x < w or pad
            if prune:
                bound = min(top, (x - a + 1) // 2) if left and right else top
                if bound * bound <= best:
                    continue
            _row_envelope(g, a, x - 1, left, right, env, out_row)
            if prune:
                for c in range(a, x):
                    if out_row[c] > best and not _excluded(y, c, exclude):
                        best, by, bx = out_row[c], y, c
    return best, by, bx


@njit(cache=True, nogil=True)
def sq_distance_into(feat, pad, out):
    """Exact squared distance from each True pixel of ``feat (h, w) bool`` to the nearest False
    pixel (virtual False ring outside when ``pad``), into ``out (h, w) int32`` (``SQ_INF``
    where no False pixel can be reached)."""
    h, w = feat.shape
    if h == 0 or w == 0:
        return
    column_pass(feat, pad, out)
    row_pass(out, pad, False, np.zeros((0, 2), np.int64))


def sq_distance_to_zero(mask: np.ndarray, pad_border: bool = False) -> np.ndarray:
    """``(H, W) int32`` exact squared distances of :func:`distance_to_zero`; ``SQ_INF`` where no
    False pixel can be reached."""
    feat = np.ascontiguousarray(mask, dtype=bool)
    out = np.empty(feat.shape, np.int32)
    sq_distance_into(feat, pad_border, out)
    return out


@njit(cache=True, nogil=True)
def _sqrt_into(sq, out):
    """``out = sqrt(sq)`` as float32 (``SQ_INF`` gives ``inf``). The float64 square root
    rounded to float32 is the correctly rounded float32 square root."""
    for y in range(sq.shape[0]):
        for x in range(sq.shape[1]):
            out[y, x] = np.inf if sq[y, x] == SQ_INF else np.float32(np.sqrt(np.float64(sq[y, x])))


def sq_to_distance(sq: np.ndarray) -> np.ndarray:
    """``float32`` distances from exact squared ones (``SQ_INF`` becomes ``inf``)."""
    out = np.empty(sq.shape, np.float32)
    _sqrt_into(sq, out)
    return out


def distance_to_zero(mask: np.ndarray, pad_border: bool = False,
                     bbox: Box | None = None) -> np.ndarray:
    """Euclidean distance from each True pixel of ``mask (H, W) bool`` to the nearest False pixel.

    Returns ``(H, W) float32``, 0 on False pixels (``scipy.ndimage.distance_transform_edt(mask)``
    when ``pad_border`` is False). ``pad_border=True``: pixels beyond the image count as False.

    ``bbox``: a ``Box`` holding every True pixel (e.g. ``geometry.box.mask_bbox``);
    the transform then runs on the box grown by one pixel only, which is exact: any pixel outside
    that ring is farther than the ring pixel obtained by clamping it to the ring.
    """
    mask = np.asarray(mask, dtype=bool)
    if bbox is None:
        return sq_to_distance(sq_distance_to_zero(mask, pad_border))
    out = np.zeros(mask.shape, np.float32)
    win = bbox.grow(1, mask.shape)
    if not win.empty:
        out[win.slices] = sq_to_distance(sq_distance_to_zero(mask[win.slices], pad_border))
    return out
