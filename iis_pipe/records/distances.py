"""Stored per-region distance transforms: one quantised map per region, inside and outside.

For a region mask ``m`` the stored map is ``u = inside`` where ``m`` and ``u = outside``
elsewhere, so one map carries both (the mask gives the side):

- ``inside``  = Euclidean distance from a region pixel to the nearest non-region pixel, the
  image border counting as boundary (as the click robots pad it);
- ``outside`` = Euclidean distance from a non-region pixel to the nearest region pixel.

Encoding: ``q = min(round(u / step), clip)`` as uint8. Error bound against an exact EDT:
``|q * step - u| <= step / 2`` wherever ``u < (clip - 0.5) * step``; elsewhere ``q == clip``
(saturated: "at least that far"). Only a window of the region's bbox plus ``clip * step + 1``
pixels can hold unsaturated values, so that window is all that is stored, one array per
region (so a reader decodes only the regions it uses). Boxes and windows are ``Box``es here;
the schema stores a window as ``dt_window`` ``[y0, x0, h, w]`` (``Box.to_yxhw``).
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


def encode_region(mask: np.ndarray, bbox: Box, coding: DistanceCoding
                  ) -> tuple[np.ndarray, Box]:
    """Quantised map of one region ``(H, W) bool`` whose tight box is ``bbox``, over its window
    (``bbox`` grown by ``coding.margin``, clipped to the image): ``((h, w) uint8, window)``."""
    win = bbox.grow(coding.margin, mask.shape)
    # Every region pixel and every non-region pixel nearer than the margin lies in the window,
    # so the transforms over it are exact where it matters; the rest saturates anyway. The
    # image border counts as boundary only where the window reaches it (the bbox ring is
    # non-region elsewhere and nearer).
    d2 = _sq_map(np.ascontiguousarray(mask[win.slices]))
    limit, table = _quantiser(coding)
    out = np.empty(d2.shape, np.uint8)
    _quantise(d2, limit, table, out)
    return out, win


@njit(cache=True, nogil=True)
def _quantise(d2, limit, table, out):
    # table[np.minimum(d2, limit)] in one pass (numpy: a clip pass and a gather, 5x the time)
    for y in range(d2.shape[0]):
        for x in range(d2.shape[1]):
            out[y, x] = table[min(d2[y, x], limit)]


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
