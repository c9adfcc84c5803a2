"""First clicks of a training sample: RITM's multi-point sampler, without coordinate lists.

The rule (RITM's ``MultiPointSampler``; distances are Euclidean where RITM dilates and erodes
with 3x3 squares, so that the records' precomputed transforms answer every question):

- Positive clicks fall in the region, eroded with probability ``positive_erode_prob`` to the
  pixels whose inside distance exceeds ``positive_erode_iters`` (kept only if more than 10 pixels
  remain). ``1 + k`` of them, ``k`` in ``0..N-1`` drawn with probability proportional to
  ``prob_gamma ** k``. With ``first_click_center`` the first one is drawn among the pixels whose
  inside distance exceeds ``max / sfc_inner_k`` instead.
- Several merged regions (chosen by ``iis_pipe.regions.select``): one first click per region, then ``k``
  more (``k`` in ``0..N`` with probability proportional to ``gamma ** k``, at most ``N`` in
  all), each in a region drawn uniformly.
- Negative clicks: ``k`` in ``0..N`` as above, each from a strategy drawn with probabilities
  ``negative_bg_prob / negative_other_prob / negative_border_prob``: background (off the merged
  region), other objects (background when there are none) or a border band
  ``0 < outside distance <= ceil(expand_ratio * sqrt(area))`` around the merged region.
- Every pixel is drawn uniformly from its set; ignore pixels are never clicked; an empty set
  gives no click. Coordinates and counts are drawn from the ``np.random.Generator`` in a fixed
  order (:func:`draw_clicks`), so a seed reproduces a sample exactly.

Sets are never listed: :mod:`pixelsets` counts a set (a named ``PixelSet``) and picks the pixels of drawn ranks over the
bounding box that holds it (the region's box, the band's box, or row by row for the background).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from iis_pipe.clicking import pixelsets as ps
from iis_pipe.geometry.box import Box, mask_bbox
from iis_pipe.geometry.distance import sq_distance_to_zero, sq_to_distance

NEGATIVE_STRATEGIES = ("bg", "other", "border")


@dataclass(frozen=True)
class SamplerConfig:
    """Knobs of the multi-point sampler, with RITM's training defaults."""

    max_num_points: int = 24  # N, per side
    prob_gamma: float = 0.8
    expand_ratio: float = 0.1
    positive_erode_prob: float = 0.9
    positive_erode_iters: int = 3
    negative_bg_prob: float = 0.1
    negative_other_prob: float = 0.4
    negative_border_prob: float = 0.5
    first_click_center: bool = False
    sfc_inner_k: float = 1.7

    def __post_init__(self):
        total = self.negative_bg_prob + self.negative_other_prob + self.negative_border_prob
        if not math.isclose(total, 1.0):
            raise ValueError(f"negative strategy probabilities sum to {total}, not 1")
        if self.max_num_points < 1:
            raise ValueError("max_num_points must be at least 1")


@lru_cache(maxsize=None)
def _gamma_probs(n: int, gamma: float) -> tuple[float, ...]:
    """``n`` probabilities of ``k = 0..n-1`` proportional to ``gamma ** k``."""
    p = gamma ** np.arange(n, dtype=np.float64)
    return tuple((p / p.sum()).tolist())


@lru_cache(maxsize=None)
def _cdf(probs: tuple[float, ...]) -> tuple[np.ndarray, list[float]]:
    cdf = np.cumsum(probs)
    return cdf, cdf.tolist()


def _draw(rng: np.random.Generator, probs, size=None):
    """Index drawn with ``probs`` by inverting the cumulative sum (``rng.choice`` with ``p``
    re-validates ``p`` on every call, a large share of a sample's time); one draw (``size``
    None) bisects the sum's float64 values as a list, no numpy scalar on the way."""
    cdf, values = _cdf(probs)
    if size is None:
        return min(bisect_right(values, rng.random()), len(values) - 1)
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def draw_clicks(cfg: SamplerConfig, rng: np.random.Generator, sets) -> np.ndarray:
    """The sampling protocol, independent of how pixel sets are stored.

    ``sets`` answers ``num_regions``, ``inside_max(m)``, ``size(key)`` and ``pick(key, ks)``
    (``(n, 2)`` pixels of ranks ``ks``) for keys ``("in", m, t)`` (region ``m``'s pixels with
    inside distance above ``t``) and ``"bg"``, ``"other"``, ``"border"``.
    """
    n = cfg.max_num_points
    m_count = min(sets.num_regions, n)
    eroded = [("in", m, float(cfg.positive_erode_iters)) for m in range(m_count)]
    pos_sets = [eroded[m] if rng.random() < cfg.positive_erode_prob and sets.size(eroded[m]) > 10
                else ("in", m, 0.0) for m in range(m_count)]
    first = [("in", m, sets.inside_max(m) / cfg.sfc_inner_k) for m in range(m_count)] \
        if cfg.first_click_center else pos_sets
    if m_count == 1:
        k = 1 + int(_draw(rng, _gamma_probs(n, cfg.prob_gamma)))
        pos_keys = first[:1] + pos_sets * (k - 1)
    else:
        k = min(int(_draw(rng, _gamma_probs(n + 1, cfg.prob_gamma))), n - m_count)
        pos_keys = first + [pos_sets[j] for j in rng.integers(m_count, size=k)]
    pos = _pick_all(sets, pos_keys, rng.random(len(pos_keys)))

    k = int(_draw(rng, _gamma_probs(n + 1, cfg.prob_gamma)))
    probs = (cfg.negative_bg_prob, cfg.negative_other_prob, cfg.negative_border_prob)
    strategies = _draw(rng, probs, size=k).tolist()
    other = "other" if 1 in strategies and sets.size("other") > 0 else "bg"
    neg_keys = [other if s == 1 else NEGATIVE_STRATEGIES[s] for s in strategies]
    neg = _pick_all(sets, neg_keys, rng.random(k))

    out = np.full((2 * n, 3), -1, np.int32)
    pos = [(*p, i) for i, p in enumerate(p for p in pos if p is not None)]
    neg = [(*p, len(pos) + i) for i, p in enumerate(p for p in neg if p is not None)]
    if pos:  # one assignment per side: a row at a time costs a numpy call per click
        out[:len(pos)] = pos
    if neg:
        out[n:n + len(neg)] = neg
    return out


def _pick_all(sets, keys, u) -> list:
    """Pixel ``(y, x)`` (or None: empty set) for each ``keys[i]``, of rank ``floor(u[i] * size)``."""
    out = [None] * len(keys)
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        size = sets.size(key)
        if size == 0:
            continue
        ks = np.minimum((u[idx] * size).astype(np.int64), size - 1)
        for i, (y, x) in zip(idx, sets.pick(key, ks).tolist()):
            out[i] = (y, x)
    return out


class _BoxSets:
    """Pixel sets of one sample, counted and picked on bounding boxes (see module doc).

    Distances come as float maps (``inside``, ``outside``), as stored ``levels`` (each region's
    map ``q``: inside distances on the region, outside ones elsewhere; ``q * scale`` pixels; the
    region masks say which side), or are computed here."""

    def __init__(self, regions, boxes, union, other, ignore, inside, outside, expand_ratio,
                 origin=(0, 0), levels=None, scale=1.0, reach=None):
        self.regions = regions
        self.shape = regions.shape[1:]
        self.num_regions = regions.shape[0]
        self.ignore = None if ignore is None else np.ascontiguousarray(ignore, dtype=bool)
        self.other = None if other is None else np.ascontiguousarray(other, dtype=bool)
        self.expand_ratio = expand_ratio
        self.boxes = boxes  # mask_bbox of each region
        self.union = union  # _union of the regions
        self.levels = levels
        self.scale = np.float32(scale)
        self.reach = reach
        # Inside transforms: (map, y, x of its [0, 0]) per region; an empty region has none.
        self.inside = []
        for m, box in enumerate(self.boxes):
            if box is None:
                self.inside.append(None)
            elif levels is not None:
                _check_covers(levels[m], origin, box, "levels")
                self.inside.append((levels[m], *origin))
            elif inside is not None:
                _check_covers(inside[m], origin, box, "inside")
                self.inside.append((np.ascontiguousarray(inside[m], dtype=np.float32), *origin))
            else:
                y0, y1, x0, x1 = box.grow(1, self.shape)
                crop = sq_to_distance(sq_distance_to_zero(regions[m, y0:y1, x0:x1], pad_border=True))
                self.inside.append((crop, y0, x0))
        self.outside = outside
        self.origin = origin
        self._sets = {}
        self._band = None

    def inside_max(self, m):
        if self.inside[m] is None:
            return 0.0
        d, dy, dx = self.inside[m]
        y0, y1, x0, x1 = self.boxes[m]
        d = d[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
        if self.levels is None:
            return float(d.max())
        # float32(q) * scale grows with q: the largest level on the region gives the maximum
        return float(np.float32(d.max(where=self.regions[m, y0:y1, x0:x1], initial=0))
                     * self.scale)

    def band(self):
        """``(d, dy, dx, box, r, side)``: outside distances of the merged region on the box that
        holds the band ``0 < d <= r``; ``side``: the full-size merged region when ``d`` holds
        stored levels (the band lies off it), else None."""
        if self._band is None:
            u, uy, ux, ubox, area = self.union
            if ubox is None:
                self._band = (np.zeros((0, 0), np.float32), 0, 0, Box(0, 0, 0, 0), 0, None)
                return self._band
            win, r = _band_window(ubox, area, self.expand_ratio, self.shape)
            y0, y1, x0, x1 = win
            side = None
            maps = self.outside if self.levels is None else self.levels
            if self.levels is not None and not levels_hold_band(self.reach, self.scale, r):
                maps = None  # beyond what the levels hold: computed from the masks below
            if maps is not None:
                _check_covers(maps[0], self.origin, win, "outside")
            if maps is not None and len(maps) == 1:
                d = maps[0] if self.levels is not None else \
                    np.ascontiguousarray(maps[0], dtype=np.float32)
                y0, x0 = self.origin
            elif maps is not None:
                # the nearest region's distance; levels: float32(q) * scale grows with q
                oy, ox = self.origin
                d = np.ascontiguousarray(np.min(maps[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox], axis=0))
            else:
                feat = np.ones((y1 - y0, x1 - x0), bool)
                feat[uy - y0:uy - y0 + u.shape[0], ux - x0:ux - x0 + u.shape[1]] = ~u
                d = sq_to_distance(sq_distance_to_zero(feat))
            if maps is not None and self.levels is not None:
                side = self.regions[0] if len(self.regions) == 1 else self.regions.any(axis=0)
            self._band = (d, y0, x0, win, r, side)
        return self._band

    def size(self, key):
        cum = self._set(key)[1]
        return int(cum[-1]) if cum.size else 0

    def pick(self, key, ks):
        pset, cum = self._set(key)
        return ps.pick(pset, cum, np.ascontiguousarray(ks, dtype=np.int64))

    def _set(self, key):
        """``(pset, cum)``: the :class:`pixelsets.PixelSet` of a set and its cumulative row
        counts."""
        if key not in self._sets:
            pset = self._pixel_set(key)
            self._sets[key] = (pset, ps.cumulative_counts(pset))
        return self._sets[key]

    def _pixel_set(self, key) -> ps.PixelSet:
        ign = self.ignore
        if key[0] == "in":
            _, m, t = key
            if self.inside[m] is None:
                return ps.PixelSet.empty(ign)
            d, dy, dx = self.inside[m]
            if self.levels is not None:  # levels on the region only
                return ps.PixelSet.inside(self.boxes[m], d, (dy, dx), t, self.scale,
                                          region=self.regions[m], ignore=ign)
            return ps.PixelSet.inside(self.boxes[m], d, (dy, dx), t, ignore=ign)
        if key == "border":
            d, dy, dx, box, r, side = self.band()  # side: levels off the merged region only
            return ps.PixelSet.band(box, d, (dy, dx), float(r),
                                    1.0 if side is None else self.scale, merged=side, ignore=ign)
        u, uy, ux, _, _ = self.union
        if key == "bg":
            full = Box.of_shape(self.shape)
            return ps.PixelSet.background(full, u, (uy, ux), ignore=ign)
        obox = None if self.other is None else mask_bbox(self.other)
        if obox is None:
            return ps.PixelSet.empty(ign)
        return ps.PixelSet.background(obox, u, (uy, ux), within=self.other, ignore=ign)


def levels_hold_band(reach: int | None, scale, r: int) -> bool:
    """Whether stored levels exact up to ``reach`` (larger ones read as at least
    ``reach + 1``; None: no limit) decide the band ``float32(q) * scale <= r`` as the exact
    levels would: every level that can pass is exact."""
    return reach is None or float(np.float32(reach + 1) * np.float32(scale)) > r


def _check_covers(a: np.ndarray, origin, box, name: str) -> None:
    """The kernels index maps without bounds checks: refuse a map that misses part of ``box``."""
    y0, y1, x0, x1 = box
    oy, ox = origin
    if y0 < oy or x0 < ox or y1 > oy + a.shape[0] or x1 > ox + a.shape[1]:
        raise ValueError(f"{name} map at {tuple(origin)} of shape {a.shape} does not cover the "
                         f"box {tuple(box)} the sampler reads (see distance_window)")


def _band_window(box: Box, area: int, expand_ratio: float, shape) -> tuple[Box, int]:
    """``(window, r)``: the band ``0 < outside <= r`` of a merged region of ``area`` pixels on
    ``box`` lies within r (Chebyshev) of the box; one more pixel so the window's own transform
    (when computed here) sees every region pixel it needs."""
    r = math.ceil(expand_ratio * math.sqrt(area))  # float64 as numpy's, no numpy scalars
    return box.grow(r + 1, shape), r


def distance_window(regions: np.ndarray, cfg: SamplerConfig) -> Box | None:
    """The ``Box`` of ``(M, H, W) bool`` regions where ``sample_clicks`` reads
    the ``inside`` and ``outside`` maps (the band window: it holds every region's box): a caller
    that prepares those maps needs them there only (pass its corner as ``origin``). None for
    empty regions."""
    regions = np.asarray(regions, bool)
    return _window(_union(regions, [mask_bbox(r) for r in regions]), cfg, regions.shape[1:])


def _union(regions: np.ndarray, boxes) -> tuple:
    """``(u, uy, ux, box, area)``: the merged regions on the box that holds them (``box`` None
    when all are empty), from the regions' ``mask_bbox``es."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return np.zeros((0, 0), bool), 0, 0, None, 0
    y0, y1 = min(b[0] for b in boxes), max(b[1] for b in boxes)
    x0, x1 = min(b[2] for b in boxes), max(b[3] for b in boxes)
    crop = regions[:, y0:y1, x0:x1]
    u = np.ascontiguousarray(crop[0] if len(crop) == 1 else crop.any(axis=0))
    return u, y0, x0, Box(y0, y1, x0, x1), int(np.count_nonzero(u))


def _window(union, cfg: SamplerConfig, shape):
    """``distance_window`` of a ``_union`` (None: all regions empty)."""
    _, _, _, box, area = union
    return None if box is None else _band_window(box, area, cfg.expand_ratio, shape)[0]


def check_inputs(regions, other=None, ignore=None, inside=None, outside=None, windowed=False):
    """``regions`` as ``(M, H, W) bool`` after checking every shape against it (``windowed``:
    the distance maps may cover a window only; the sampler checks that when it reads them)."""
    regions = np.asarray(regions, dtype=bool)
    if regions.ndim == 2:
        regions = regions[None]
    if regions.ndim != 3 or regions.shape[0] == 0:
        raise ValueError(f"regions must be (H, W) or (M, H, W) with M >= 1, got {regions.shape}")
    shape = regions.shape[1:]
    for name, a in (("other", other), ("ignore", ignore)):
        if a is not None and np.shape(a) != shape:
            raise ValueError(f"{name} {np.shape(a)} does not match regions {shape}")
    for name, a in (("inside", inside), ("outside", outside)):
        if a is None:
            continue
        if windowed and np.ndim(a) not in (2, 3):
            raise ValueError(f"{name} {np.shape(a)} must be (h, w) or (M, h, w)")
        if not windowed and np.shape(a)[-2:] != shape:
            raise ValueError(f"{name} {np.shape(a)} does not match regions {regions.shape}")
    return np.ascontiguousarray(regions)


def per_region(a, m):
    """``(M, H, W)`` view of an optional per-region array given as ``(H, W)`` for one region."""
    return None if a is None else (a[None] if np.ndim(a) == 2 else a)[:m]


def sample_clicks(regions, cfg: SamplerConfig, rng: np.random.Generator, other=None, ignore=None,
                  inside=None, outside=None, origin: tuple[int, int] = (0, 0), levels=None,
                  scale: float = 1.0, reach: int | None = None) -> np.ndarray:
    """First clicks for one training sample: ``(2N, 3) int32`` (see ``format``; a batch is
    ``format.stack_clicks`` of these). The ``order`` column numbers the positives ``0..P-1``,
    then the negatives ``P..P+Q-1`` (RITM's 0 / 100 first-click marks are not kept).

    - ``regions``: ``(H, W) bool`` or ``(M, H, W) bool``, the merged regions of the target.
    - ``other``: ``(H, W) bool``, the image's other objects (for the "other" strategy).
    - ``ignore``: ``(H, W) bool``, never clicked.
    - ``inside``, ``outside``: the regions' precomputed ``(M, H, W) float32`` transforms (see
      ``geometry.distance``), full size or over a window at ``origin`` ``(y, x)`` that holds
      ``distance_window`` (only that box is read); computed on the regions' boxes when absent.
    - ``levels``: instead of ``inside`` and ``outside``, the regions' stored maps ``(M, h, w)
      uint8`` over such a window (``records.distances``: inside distances on each region,
      outside ones elsewhere, ``float32(q) * scale`` pixels): the same clicks as the float
      maps that ``distances.inside_outside`` makes of them, without making them. Or a function
      ``levels(window) -> (levels, scale, reach)`` of the ``distance_window`` ``Box`` (then
      ``origin`` is its corner): called once, with the box the sampler finds anyway, and not
      at all when the regions are empty.
    - ``reach``: the levels' outside values are exact up to ``reach`` only (larger ones are
      at least ``reach + 1``; schema 5's maps, ``distances.reach``; None: exact throughout):
      when the border band could pass a larger level (``levels_hold_band``), its outside
      distances are computed from the masks over the band's window instead (exact, in crop
      pixels), the inside ones still read from the levels.
    """
    if levels is not None and (inside is not None or outside is not None):
        raise ValueError("give levels or inside/outside maps, not both")
    regions = check_inputs(regions, other, ignore, inside, outside, windowed=True)
    m = regions.shape[0]
    boxes = [mask_bbox(r) for r in regions]
    union = _union(regions, boxes)
    if callable(levels):
        window = _window(union, cfg, regions.shape[1:])
        levels, scale, reach, origin = (None, scale, reach, origin) if window is None else \
            (*levels(window), window.origin)
    if levels is not None:
        levels = np.asarray(levels, np.uint8)
        levels = (levels[None] if levels.ndim == 2 else levels)[:m]
        if levels.ndim != 3 or len(levels) != m:
            raise ValueError(f"levels {levels.shape} must be (h, w) or (M, h, w) for {m} regions")
    sets = _BoxSets(regions, boxes, union, other, ignore, per_region(inside, m),
                    per_region(outside, m), cfg.expand_ratio, tuple(origin), levels, scale,
                    reach)
    return draw_clicks(cfg, rng, sets)
