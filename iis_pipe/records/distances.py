"""Stored per-region distance transforms: one quantised map per region, inside and outside.

For a region mask ``m`` the stored map is ``u = inside`` where ``m`` and ``u = outside``
elsewhere, so one map carries both (the mask gives the side):

- ``inside``  = Euclidean distance from a region pixel to the nearest non-region pixel, the
  image border counting as boundary (as the click robots pad it);
- ``outside`` = Euclidean distance from a non-region pixel to the nearest region pixel.

Encoding: ``q = min(round(u / step), clip)`` as uint8. Error bound against an exact EDT:
``|q * step - u| <= step / 2`` wherever ``u < (clip - 0.5) * step``; elsewhere ``q == clip``
(saturated: "at least that far"). Only a window of the region's bbox plus ``clip * step + 1``
pixels can hold unsaturated values, so that window is all that is stored; the crops of all
regions are stacked vertically into one uint8 canvas (one PNG per record).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


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


def _edt(zero_is_feature: np.ndarray) -> np.ndarray:
    # Exact L2 (Felzenszwalb). The IPP path is off by an ulp at most, far below rounding.
    return cv2.distanceTransform(zero_is_feature, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def window(bbox_xywh: tuple[int, int, int, int], shape: tuple[int, int], margin: int
           ) -> tuple[int, int, int, int]:
    """``(y0, x0, h, w)`` of the bbox grown by ``margin``, clipped to the image."""
    x, y, w, h = bbox_xywh
    y0, x0 = max(y - margin, 0), max(x - margin, 0)
    y1, x1 = min(y + h + margin, shape[0]), min(x + w + margin, shape[1])
    return y0, x0, y1 - y0, x1 - x0


def exact_map(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` region -> ``(H, W) float32`` exact combined distance map ``u``."""
    m = mask.astype(np.uint8)
    u = _edt(1 - m)  # outside; 0 on the region
    # Inside only needs the region's bbox plus one pixel (or the border): nearer sites than
    # that ring cannot lie beyond it.
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, m.shape[0])
    x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, m.shape[1])
    inside = _edt(np.pad(m[y0:y1, x0:x1], 1))[1:-1, 1:-1]
    box = u[y0:y1, x0:x1]
    np.copyto(box, inside, where=mask[y0:y1, x0:x1])
    return u


def encode_region(mask: np.ndarray, bbox_xywh, coding: DistanceCoding
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Quantised map of one region over its window: ``((h, w) uint8, (y0, x0, h, w))``."""
    y0, x0, h, w = window(bbox_xywh, mask.shape, coding.margin)
    # Inside the window every region pixel and its nearest outside pixel are present; the 1 px
    # zero pad stands for the image border (where the window touches it) and is never nearer
    # than a real non-region pixel elsewhere, because the window extends past the bbox there.
    u = exact_map(mask[y0:y0 + h, x0:x0 + w])
    # Rounds to nearest and saturates at 255 in one pass (distances never sit on a .5 tie:
    # sqrt of an integer is not k + 1/2).
    q = cv2.convertScaleAbs(u, alpha=1.0 / coding.step)
    if coding.clip < 255:
        np.minimum(q, coding.clip, out=q)
    return q, (y0, x0, h, w)


def pack_canvas(crops: list[np.ndarray], clip: int) -> tuple[np.ndarray, list[int]]:
    """Stack crops vertically into one ``(sum h, max w) uint8`` canvas; returns row offsets."""
    width = max(c.shape[1] for c in crops)
    rows = np.cumsum([0] + [c.shape[0] for c in crops]).tolist()
    canvas = np.full((rows[-1], width), clip, np.uint8)
    for c, r in zip(crops, rows):
        canvas[r:r + c.shape[0], :c.shape[1]] = c
    return canvas, rows[:-1]


def unpack_region(canvas: np.ndarray, row: int, win: tuple[int, int, int, int],
                  shape: tuple[int, int], clip: int) -> np.ndarray:
    """One region's full-size quantised map ``(H, W) uint8`` (saturated outside its window)."""
    y0, x0, h, w = win
    out = np.full(shape, clip, np.uint8)
    out[y0:y0 + h, x0:x0 + w] = canvas[row:row + h, :w]
    return out


def inside_outside(q: np.ndarray, mask: np.ndarray, coding: DistanceCoding
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split a quantised map into ``(inside, outside)`` float32 distances in pixels."""
    d = q.astype(np.float32) * np.float32(coding.step)
    return np.where(mask, d, 0).astype(np.float32), np.where(mask, 0, d).astype(np.float32)
