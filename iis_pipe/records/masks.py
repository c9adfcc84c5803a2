"""Lossless, compact storage of possibly overlapping region masks as stacked label layers.

Regions are assigned greedily to the first layer where they overlap nothing already there, so
disjoint masks (VOC, DAVIS) need one layer and overlapping ones (COCO, LVIS) a few. The layers
are stacked vertically into one ``(L*H, W)`` label image, which records store as runs (``runs``).
"""

from __future__ import annotations

import numpy as np


def pack_layers(masks: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Pack ``(R, H, W) bool`` masks into ``(L*H, W)`` uint8/uint16 label layers.

    Returns the stacked layers and, per region, ``(layer, label)`` with ``label >= 1``.
    """
    r, h, w = masks.shape
    occupied: list[np.ndarray] = []
    counts: list[int] = []
    slots: list[tuple[int, int]] = []
    for m in masks:
        for layer, occ in enumerate(occupied):
            if not np.any(occ & m):
                break
        else:
            layer = len(occupied)
            occupied.append(np.zeros((h, w), bool))
            counts.append(0)
        occupied[layer] |= m
        counts[layer] += 1
        slots.append((layer, counts[layer]))
    dtype = np.uint8 if max(counts, default=0) < 256 else np.uint16
    stacked = np.zeros((max(len(occupied), 1) * h, w), dtype)
    for m, (layer, label) in zip(masks, slots):
        stacked[layer * h:(layer + 1) * h][m] = label
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
