"""``Box``: the one rectangle that crosses module borders in memory.

``Box(y0, y1, x0, x1)``: rows ``y0 <= y < y1`` and columns ``x0 <= x < x1`` of an image, in
integer pixels, half-open as numpy slices take them (``array[box.slices]``). A NamedTuple: cheap,
immutable, unpackable as ``y0, y1, x0, x1 = box``, and numba kernels take it (fields by name
or index).

Stored forms convert at the schema's border only: a record's ``bbox`` (and the index's
``bbox_*`` columns) is ``[x, y, w, h]`` (``from_xywh`` / ``to_xywh``), a region's
``dt_window`` is ``[y0, x0, h, w]`` (``from_yxhw`` / ``to_yxhw``).

``BoxMask``: a mask over its box, how instances and regions travel from the sources to the
records (a dense image's 200 objects are not 200 full-size masks to decode, copy and test).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np
from numba import njit


class Box(NamedTuple):
    """Half-open box ``[y0, y1) x [x0, x1)`` of integer pixels (see the module doc)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def from_xywh(cls, xywh: Iterable[int]) -> Box:
        """The box of ``(x, y, w, h)`` (a record's ``bbox``)."""
        x, y, w, h = (int(v) for v in xywh)
        return cls(y, y + h, x, x + w)

    def to_xywh(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` as a record's ``bbox`` stores it."""
        return self.x0, self.y0, self.width, self.height

    @classmethod
    def from_yxhw(cls, yxhw: Iterable[int]) -> Box:
        """The box of ``(y0, x0, h, w)`` (a region's stored ``dt_window``)."""
        y, x, h, w = (int(v) for v in yxhw)
        return cls(y, y + h, x, x + w)

    def to_yxhw(self) -> tuple[int, int, int, int]:
        """``(y0, x0, h, w)`` as a region's ``dt_window`` stores it."""
        return self.y0, self.x0, self.height, self.width

    @classmethod
    def of_shape(cls, shape: tuple[int, int]) -> Box:
        """The whole of an ``(H, W)`` image."""
        return cls(0, int(shape[0]), 0, int(shape[1]))

    @classmethod
    def union(cls, boxes: Iterable[Box]) -> Box:
        """The smallest box holding every one of ``boxes`` (at least one)."""
        boxes = list(boxes)
        return cls(min(b.y0 for b in boxes), max(b.y1 for b in boxes),
                   min(b.x0 for b in boxes), max(b.x1 for b in boxes))

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the shape of ``array[box.slices]`` for a box inside ``array``."""
        return self.height, self.width

    @property
    def area(self) -> int:
        """Pixels of the box (0 when empty)."""
        return max(self.height, 0) * max(self.width, 0)

    @property
    def origin(self) -> tuple[int, int]:
        """``(y0, x0)``: the image pixel of ``array[box.slices][0, 0]``."""
        return self.y0, self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``array[box.slices]`` is the box's part of an ``(H, W, ...)`` array."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def empty(self) -> bool:
        """Whether the box holds no pixel."""
        return self.y1 <= self.y0 or self.x1 <= self.x0

    def clip(self, shape: tuple[int, int]) -> Box:
        """The box's part inside an ``(H, W)`` image: each edge clamped into it (a box off the
        image becomes empty)."""
        h, w = int(shape[0]), int(shape[1])
        return Box(min(max(self.y0, 0), h), max(min(self.y1, h), 0),
                   min(max(self.x0, 0), w), max(min(self.x1, w), 0))

    def grow(self, margin: int, shape: tuple[int, int] | None = None) -> Box:
        """The box grown by ``margin`` pixels on every side, clipped to ``shape`` when given."""
        m = int(margin)
        box = Box(self.y0 - m, self.y1 + m, self.x0 - m, self.x1 + m)
        return box if shape is None else box.clip(shape)


@njit(cache=True, nogil=True)
def _first_set(words, flat, reverse):
    """Flat index of the first (last if ``reverse``) True byte of ``flat`` (``-1`` if none);
    ``words`` is ``flat``'s head viewed as ``uint64``, so empty stretches cost a test per 8."""
    nw, n = words.shape[0], flat.shape[0]
    if not reverse:
        for i in range(nw):
            if words[i]:
                for j in range(8 * i, 8 * i + 8):
                    if flat[j]:
                        return j
        for j in range(8 * nw, n):
            if flat[j]:
                return j
        return -1
    for j in range(n - 1, 8 * nw - 1, -1):
        if flat[j]:
            return j
    for i in range(nw - 1, -1, -1):
        if words[i]:
            for j in range(8 * i + 7, 8 * i - 1, -1):
                if flat[j]:
                    return j
    return -1


@njit(cache=True, nogil=True)
def _mask_bbox(mask, words):
    """``(y0, y1, x0, x1)`` of the True pixels of ``(H, W) bool``; ``y0 = -1`` if none."""
    h, w = mask.shape
    flat = mask.reshape(-1)
    first = _first_set(words, flat, False)
    if first < 0:
        return -1, -1, -1, -1
    y0, y1 = first // w, _first_set(words, flat, True) // w + 1
    cols = np.zeros(w, np.uint8)
    for y in range(y0, y1):  # OR of the box's rows: a vectorized pass
        for x in range(w):
            cols[x] |= np.uint8(mask[y, x])
    x0, x1 = 0, w
    while not cols[x0]:
        x0 += 1
    while not cols[x1 - 1]:
        x1 -= 1
    return y0, y1, x0, x1


def mask_bbox(mask: np.ndarray) -> Box | None:
    """The tight ``Box`` of the True pixels of ``(H, W) bool``; None if there are none."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    flat = mask.reshape(-1)
    box = _mask_bbox(mask, flat[: flat.size // 8 * 8].view(np.uint64))
    return None if box[0] < 0 else Box(*(int(c) for c in box))


class BoxMask(NamedTuple):
    """A ``mask (h, w) bool`` (C-contiguous) over its ``box`` of image pixels: the mask's tight
    box for a non-empty mask; an empty mask is ``EMPTY_MASK``."""

    box: Box
    mask: np.ndarray


EMPTY_MASK = BoxMask(Box(0, 0, 0, 0), np.zeros((0, 0), bool))


def box_mask(mask: np.ndarray) -> BoxMask:
    """``(H, W) bool`` -> its ``BoxMask`` (a copy of the tight box's pixels; ``EMPTY_MASK``
    when no pixel is set)."""
    box = _tight_box(mask)
    if box is None:
        return EMPTY_MASK
    return BoxMask(box, np.ascontiguousarray(mask[box.slices], dtype=bool))


def unbox(masks: list[BoxMask], shape: tuple[int, int]) -> np.ndarray:
    """BoxMasks of an ``(H, W)`` image -> ``(K, H, W) bool`` full-size masks."""
    out = np.zeros((len(masks), *shape), bool)
    for o, (box, m) in zip(out, masks):
        o[box.slices] = m
    return out


def _tight_box(mask: np.ndarray) -> Box | None:
    """``mask_bbox`` without copying a column-major mask (pycocotools decodes those): its
    transpose is row-major."""
    if not mask.flags.c_contiguous and mask.T.flags.c_contiguous:
        box = mask_bbox(mask.T)
        return None if box is None else Box(box.x0, box.x1, box.y0, box.y1)
    return mask_bbox(mask)
