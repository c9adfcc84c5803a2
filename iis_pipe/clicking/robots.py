"""Evaluation robots: the next click given ground truth, prediction and past clicks.

Every robot is ``robot(gt, pred, ignore=None, clicks=None, rng=None) -> Click | None`` with
``gt``, ``pred``, ``ignore`` ``(H, W) bool`` and ``clicks`` the past clicks (Clicks or a
``(K, >=2)`` array of ``(y, x, ...)`` rows, padding rows ``y < 0`` allowed). The error regions
are ``FN = gt & ~pred & ~ignore`` and ``FP = ~gt & pred & ~ignore``; a positive click corrects
FN, a negative one FP. Distances are exact Euclidean distances to the nearest non-error pixel,
the image border counting as boundary; pixels already clicked count as distance 0 (never chosen
again). Random robots need ``rng`` (``np.random.Generator``) and are reproducible from its seed.
Robots other than ``standard`` return None when no error pixel is left.

Work is confined to the bounding box (plus one pixel) of each error region: outside it the
region is empty, and inside it the transform is exact (see ``geometry.distance``).
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from numba import njit

from iis_pipe.clicking.format import Click, clicked_pixels
from iis_pipe.geometry.distance import row_pass, sq_distance_into, sq_distance_to_zero

Robot = Callable[..., "Click | None"]


@njit(cache=True, nogil=True)
def _grow(box, s, y, xa, xb):
    """Grow row ``s`` of ``box`` (inclusive bounds while scanning) by pixels ``(y, xa..xb)``."""
    if y < box[s, 0]:
        box[s, 0] = y
    box[s, 1] = y
    if xa < box[s, 2]:
        box[s, 2] = xa
    if xb > box[s, 3]:
        box[s, 3] = xb


@njit(cache=True, nogil=True)
def _byte_span(word):
    """First and last nonzero byte (little-endian index 0..7) of a nonzero ``uint64``."""
    lo, hi = 8, -1
    for j in range(8):
        if (word >> np.uint64(8 * j)) & np.uint64(0xFF):
            lo = min(lo, j)
            hi = j
    return lo, hi


@njit(cache=True, nogil=True)
def _error_boxes(gt, pred, ign, has_ign, gw, pw, iw):
    """Half-open boxes ``(y0, y1, x0, x1)`` of FN (row 0) and FP (row 1), ``y0 = -1`` if empty.

    ``gw, pw, iw``: the masks' bytes viewed as ``uint64`` (8 pixels a word, the ``H * W % 8``
    tail pixels left out; bool bytes are 0 or 1, so bitwise logic acts per pixel). Error-free
    stretches, the vast majority, are skipped 32 words at a time.
    """
    h, w = gt.shape
    box = np.array([[h, -1, w, -1], [h, -1, w, -1]], np.int64)
    gf, pf, jf = gt.reshape(-1), pred.reshape(-1), ign.reshape(-1)
    nw = gw.shape[0]
    for c in range(0, nw, 32):
        # A vectorized test of 32 words (256 pixels) skips error-free stretches.
        e = np.uint64(0)
        for i in range(c, min(c + 32, nw)):
            e |= gw[i] ^ pw[i]
        if e:
            _words_boxes(gt, pred, ign, has_ign, gw, pw, iw, c, min(c + 32, nw), box)
    for j in range(8 * nw, h * w):
        if gf[j] != pf[j] and not (has_ign and jf[j]):
            _grow(box, 0 if gf[j] else 1, j // w, j % w, j % w)
    for s in range(2):
        if box[s, 1] < 0:
            box[s, 0] = -1
        else:
            box[s, 1] += 1
            box[s, 3] += 1
    return box


@njit(cache=True, nogil=True)
def _words_boxes(gt, pred, ign, has_ign, gw, pw, iw, start, stop, box):
    """Grow ``box`` by the error pixels of words ``start..stop`` (see :func:`_error_boxes`)."""
    w = gt.shape[1]
    gf, pf, jf = gt.reshape(-1), pred.reshape(-1), ign.reshape(-1)
    for i in range(start, stop):
        if gw[i] == pw[i]:
            continue
        fn, fp = gw[i] & ~pw[i], pw[i] & ~gw[i]
        if has_ign:
            fn &= ~iw[i]
            fp &= ~iw[i]
        y = 8 * i // w
        x = 8 * i - y * w
        if x + 8 <= w:  # the word lies in one row (else: pixel by pixel)
            if fn:
                lo, hi = _byte_span(fn)
                _grow(box, 0, y, x + lo, x + hi)
            if fp:
                lo, hi = _byte_span(fp)
                _grow(box, 1, y, x + lo, x + hi)
            continue
        for j in range(8 * i, 8 * i + 8):
            if gf[j] != pf[j] and not (has_ign and jf[j]):
                _grow(box, 0 if gf[j] else 1, j // w, j % w, j % w)


@njit(cache=True, nogil=True)
def _window(box, shape):
    """``box`` grown by one pixel, clipped to ``shape``: ``(y0, y1, x0, x1)``."""
    return max(box[0] - 1, 0), min(box[1] + 1, shape[0]), max(box[2] - 1, 0), min(box[3] + 1, shape[1])


@njit(cache=True, nogil=True)
def _side_sq(gt, pred, ign, has_ign, positive, box, clicks):
    """Exact squared padded distance transform of one error region (FN if ``positive``) on its
    window, clicked pixels zeroed. Returns ``(oy, ox, (h, w) int32)``."""
    y0, y1, x0, x1 = _window(box, gt.shape)
    feat = np.empty((y1 - y0, x1 - x0), np.bool_)
    for y in range(y0, y1):
        for x in range(x0, x1):
            feat[y - y0, x - x0] = (gt[y, x] == positive and pred[y, x] != positive
                                    and not (has_ign and ign[y, x]))
    sq = np.empty(feat.shape, np.int32)
    sq_distance_into(feat, True, sq)
    for i in range(clicks.shape[0]):
        cy, cx = clicks[i, 0] - y0, clicks[i, 1] - x0
        if 0 <= cy < sq.shape[0] and 0 <= cx < sq.shape[1]:
            sq[cy, cx] = 0
    return y0, x0, sq


@njit(cache=True, nogil=True)
def _first_max(sq):
    """``(max, y, x)`` of ``(h, w) int32``, the first maximum in row-major order."""
    best, by, bx = 0, 0, 0
    for y in range(sq.shape[0]):
        for x in range(sq.shape[1]):
            if sq[y, x] > best:
                best, by, bx = sq[y, x], y, x
    return best, by, bx


@njit(cache=True, nogil=True)
def _side_max(gt, pred, ign, has_ign, positive, box, clicks):
    """``(max, y, x)`` of :func:`_side_sq` without building it: the first unclicked maximum of
    the squared padded distance transform of one error region, in image coordinates (``(0, 0,
    0)`` when every distance is 0).

    The column distances come straight from the masks (no feature array is built), then
    ``row_pass`` pruned to the first maximum runs the exact row envelope only where it can
    beat the best so far.
    """
    y0, y1, x0, x1 = _window(box, gt.shape)
    h, w = y1 - y0, x1 - x0
    pos = np.uint8(positive)
    gu, pu, iu = gt.view(np.uint8), pred.view(np.uint8), ign.view(np.uint8)
    # down[y, x]: distance to the nearest zero at or below (y, x) in its column, the padding
    # below the window counted. Branch-free inner loops so that they vectorize.
    down = np.empty((h, w), np.int32)
    padding = np.zeros(w, np.int32)
    for y in range(h - 1, -1, -1):
        gr, pr, cur = gu[y0 + y, x0:x1], pu[y0 + y, x0:x1], down[y]
        below = down[y + 1] if y + 1 < h else padding
        if has_ign:
            ir = iu[y0 + y, x0:x1]
            for x in range(w):
                cur[x] = np.int32((gr[x] == pos) & (pr[x] != pos) & (ir[x] == 0)) * (below[x] + 1)
        else:
            for x in range(w):
                cur[x] = np.int32((gr[x] == pos) & (pr[x] != pos)) * (below[x] + 1)
    local = np.empty(clicks.shape, np.int64)  # past clicks in the window's frame
    for i in range(clicks.shape[0]):
        local[i, 0], local[i, 1] = clicks[i, 0] - y0, clicks[i, 1] - x0
    best, by, bx = row_pass(down, True, True, local)
    if best == 0:
        return 0, 0, 0
    return best, y0 + by, x0 + bx


@njit(cache=True, nogil=True)
def _standard(gt, pred, ign, has_ign, gw, pw, iw, clicks):
    """``(is_positive, y, x)`` of the standard rule (see :func:`standard`)."""
    boxes = _error_boxes(gt, pred, ign, has_ign, gw, pw, iw)
    best = np.zeros(2, np.int64)
    at = np.zeros((2, 2), np.int64)
    for s in range(2):
        if boxes[s, 0] >= 0:
            best[s], at[s, 0], at[s, 1] = _side_max(gt, pred, ign, has_ign, s == 0, boxes[s], clicks)
    # Comparing squared integers is exact; a tie gives a negative click. When the winning side's
    # maximum is 0 every distance is 0 and the first maximum is pixel (0, 0).
    s = 0 if best[0] > best[1] else 1
    return s == 0, at[s, 0], at[s, 1]


def _words(mask: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous bool mask as ``uint64`` words (tail bytes left out)."""
    flat = mask.reshape(-1)
    return flat[: flat.size // 8 * 8].view(np.uint64)


def _inputs(gt, pred, ignore):
    """``(gt, pred, ign, has_ign, gw, pw, iw)``: the kernels' view of the masks."""
    gt = np.ascontiguousarray(gt, dtype=bool)
    pred = np.ascontiguousarray(pred, dtype=bool)
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} must be equal (H, W) masks")
    if ignore is None:
        ign = gt  # never read: has_ign is False
    else:
        ign = np.ascontiguousarray(ignore, dtype=bool)
        if ign.shape != gt.shape:
            raise ValueError(f"ignore {ign.shape} does not match gt {gt.shape}")
    return gt, pred, ign, ignore is not None, _words(gt), _words(pred), _words(ign)


def standard(gt, pred, ignore=None, clicks=None, rng=None) -> Click:
    """The RITM / SimpleClick / FocalClick / SAM evaluation click.

    Click the error pixel farthest from the error boundary: positive iff the largest FN distance
    is strictly greater than the largest FP distance (a tie is negative), at the first pixel of
    that maximum in row-major order. Deterministic (``rng`` unused). When no unclicked error pixel
    is left (e.g. ``pred == gt``) RITM's rule yields a negative click at ``(0, 0)``; it is kept for
    comparability of click counts with published numbers, so callers should stop on IoU first.
    """
    is_pos, y, x = _standard(*_inputs(gt, pred, ignore), clicked_pixels(clicks))
    return Click(int(y), int(x), bool(is_pos))


def _sides(gt, pred, ignore, clicks):
    """Per side (FN, FP): ``(oy, ox, (h, w) int32 squared distances)`` on the side's window, or
    None for an empty side."""
    args = _inputs(gt, pred, ignore)
    boxes = _error_boxes(*args)
    cl = clicked_pixels(clicks)
    return [None if boxes[s, 0] < 0 else _side_sq(*args[:4], s == 0, boxes[s], cl) for s in range(2)]


def _need_rng(rng, name):
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"robot {name!r} is random: pass rng=np.random.default_rng(seed)")
    return rng


def _pick(sides, weights, rng) -> Click | None:
    """Draw one pixel of the side windows with probability proportional to ``weights`` (a list
    of per-side float arrays, or None for a side), FN pixels first."""
    totals = [0.0 if w is None else float(w.sum()) for w in weights]
    total = totals[0] + totals[1]
    if total <= 0:
        return None
    u = rng.random() * total
    s = 0 if u < totals[0] or totals[1] == 0 else 1
    u = u - totals[0] if s == 1 else u
    cum = np.cumsum(weights[s], dtype=np.float64).reshape(-1)
    i = min(int(np.searchsorted(cum, u, side="right")), cum.size - 1)
    while weights[s].reshape(-1)[i] == 0:  # rounding at the end of the cumsum
        i -= 1
    oy, ox, sq = sides[s]
    y, x = divmod(i, sq.shape[1])
    return Click(int(oy + y), int(ox + x), s == 0)


def uniform(gt, pred, ignore=None, clicks=None, rng=None) -> Click | None:
    """A uniformly random unclicked error pixel (FN or FP)."""
    rng = _need_rng(rng, "uniform")
    sides = _sides(gt, pred, ignore, clicks)
    return _pick(sides, [None if t is None else (t[2] > 0).astype(np.float64) for t in sides], rng)


def dt_weighted(gt, pred, ignore=None, clicks=None, rng=None) -> Click | None:
    """A random unclicked error pixel drawn with probability proportional to its distance."""
    rng = _need_rng(rng, "dt_weighted")
    sides = _sides(gt, pred, ignore, clicks)
    return _pick(sides, [None if t is None else np.sqrt(t[2].astype(np.float64)) for t in sides], rng)


def iterative(gt, pred, ignore=None, clicks=None, rng=None) -> Click | None:
    """RITM's iterative-training rule: take the side with the larger maximum distance D (a tie is
    negative), click a uniformly random pixel of it whose distance exceeds D / 2.

    RITM uses OpenCV's approximate 5x5 mask transform here; this uses the exact one.
    """
    rng = _need_rng(rng, "iterative")
    sides = _sides(gt, pred, ignore, clicks)
    best = [0 if t is None else int(t[2].max()) for t in sides]
    s = 0 if best[0] > best[1] else 1
    if best[s] == 0:
        return None
    # d > D / 2  <=>  4 d^2 > D^2, exact in integers.
    inner = (4 * sides[s][2].astype(np.int64) > best[s]).astype(np.float64)
    return _pick([sides[s] if i == s else None for i in range(2)],
                 [inner if i == s else None for i in range(2)], rng)


def largest_component(gt, pred, ignore=None, clicks=None, rng=None) -> Click | None:
    """The centre of the largest error component ("Getting to 99% accuracy", Forte et al.).

    Components are 8-connected within FN and within FP; the largest by area wins (FN on a tie,
    then the first in row-major order). The click is the first unclicked pixel of maximal distance
    to the component's boundary (image border included). Deterministic (``rng`` unused).
    """
    best = None  # (area, side, component mask on the side's window, oy, ox)
    for s, side in enumerate(_sides(gt, pred, ignore, None)):
        if side is None:
            continue
        oy, ox, sq = side
        n, labels, stats, _ = cv2.connectedComponentsWithStats((sq > 0).view(np.uint8), connectivity=8)
        lab = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[lab, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, s, labels == lab, oy, ox)
    if best is None:
        return None
    _, s, comp, oy, ox = best
    sq = sq_distance_to_zero(comp, pad_border=True)
    for cy, cx in clicked_pixels(clicks) - (oy, ox):
        if 0 <= cy < sq.shape[0] and 0 <= cx < sq.shape[1]:
            sq[cy, cx] = 0
    m, y, x = _first_max(sq)
    return None if m == 0 else Click(int(oy + y), int(ox + x), s == 0)


ROBOTS: dict[str, Robot] = {
    "standard": standard,
    "uniform": uniform,
    "dt_weighted": dt_weighted,
    "largest_component": largest_component,
    "iterative": iterative,
}
