"""Lossless, compact storage of possibly overlapping region masks as stacked label layers.

Regions are assigned greedily to the first layer where they overlap nothing already there, so
disjoint masks (VOC, DAVIS) need one layer and overlapping ones (COCO, LVIS) a few. The layers
are stacked vertically into one ``(L*H, W)`` label image, which records store as runs (``runs``).

A region travels from the candidates to the record as a ``geometry.box.BoxMask``, its pixels
over its bbox only: a dense image's 200 regions would otherwise be 200 full-size masks to copy,
test and pack (DAVIS-sized: 82 MB, and most of prepare's time).
"""

from __future__ import annotations

import numpy as np

from iis_pipe.geometry.box import EMPTY_MASK, BoxMask, box_mask


def boxed(regions) -> list[BoxMask]:
    """``(R, H, W) bool`` masks, or a list of ``BoxMask`` (returned as it is), as BoxMasks."""
    if isinstance(regions, np.ndarray):
        out = [box_mask(m) for m in regions]
        if any(bm is EMPTY_MASK for bm in out):
            raise ValueError("an empty region has no box")
        return out
    return list(regions)


def pack_layers(regions, shape: tuple[int, int] | None = None
                ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Pack regions (``(R, H, W) bool``, or BoxMasks of an image of ``shape``) into
    ``(L*H, W)`` uint8/uint16 label layers; overlaps are tested on each region's box only.

    Returns the stacked layers and, per region, ``(layer, label)`` with ``label >= 1``.
    """
    if isinstance(regions, np.ndarray):
        shape = regions.shape[1:]
    h, w = shape
    regions = boxed(regions)
    occupied: list[np.ndarray] = []
    counts: list[int] = []
    slots: list[tuple[int, int]] = []
    for box, m in regions:
        sl = box.slices
        for layer, occ in enumerate(occupied):
            if not np.any(occ[sl] & m):
                break
        else:
            layer = len(occupied)
            occupied.append(np.zeros((h, w), bool))
            counts.append(0)
        occupied[layer][sl] |= m
        counts[layer] += 1
        slots.append((layer, counts[layer]))
    dtype = np.uint8 if max(counts, default=0) < 256 else np.uint16
    stacked = np.zeros((max(len(occupied), 1) * h, w), dtype)
    for (box, m), (layer, label) in zip(regions, slots):
        stacked[layer * h:(layer + 1) * h][box.slices][m] = label
    return stacked, slots


def unpack_layers(stacked: np.ndarray, slots: list[tuple[int, int]], height: int,
                  ids: list[int] | None = None) -> np.ndarray:
    """Inverse of ``pack_layers``: ``(R, H, W) bool`` for all regions or those in ``ids``."""
    ids = range(len(slots)) if ids is None else ids
    out = np.empty((len(ids), height, stacked.shape[1]), bool)
    for i, rid in enumerate(ids):
        layer, label = slots[rid]
        np.equal(stacked[layer * height:(layer + 1) * height], label, out=out[i])
    return out
