"""Region candidates per image: every instance, optionally split into connected components,
each as a ``BoxMask`` (its pixels over its tight box only)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from iis_pipe.geometry.box import EMPTY_MASK, Box, BoxMask, box_mask, mask_bbox


def region_candidates(instances: list[BoxMask] | np.ndarray, instance_meta: list[dict[str, Any]], *,
                      split_components: bool = False, min_area: int = 1
                      ) -> tuple[list[BoxMask], list[dict[str, Any]], list[dict[str, Any]]]:
    """Regions of one image.

    ``instances``: K ``BoxMask``s (a ``Sample``'s ``instance_masks``) or ``(K, H, W) bool``.
    Returns ``(masks, meta, dropped)``: ``masks`` the regions as ``BoxMask``s over their tight
    boxes (``unbox`` makes them full size), each meta dict has ``instance`` (index into
    ``instances``), ``component`` (None unless split), ``area``, ``bbox`` ``(x, y, w, h)`` (the
    record's stored form of its ``Box``) and the instance's own metadata; ``dropped`` lists the
    parts removed by ``min_area`` (kept so that nothing disappears unaccounted). Work past
    finding each instance's box runs on the box only.
    """
    masks: list[BoxMask] = []
    meta: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for k, inst in enumerate(instances):
        bm = _tight(inst) if isinstance(inst, BoxMask) else box_mask(inst)
        if bm is EMPTY_MASK:
            parts = [(None, None)]
        elif split_components:
            n, labels = cv2.connectedComponents(bm.mask.view(np.uint8), connectivity=8)
            parts = [(c - 1, BoxMask(bm.box, labels == c)) for c in range(1, n)]
        else:
            parts = [(None, bm)]
        for comp, part in parts:
            area = 0 if part is None else int(np.count_nonzero(part.mask))
            if area < max(min_area, 1):
                dropped.append({"instance": k, "component": comp, "area": area,
                                "reason": f"area {area} < min_area {max(min_area, 1)}"})
                continue
            if comp is not None:  # a component's own tight box
                part = _tight(part)
            masks.append(part)
            meta.append({**instance_meta[k], "instance": k, "component": comp, "area": area,
                         "bbox": part.box.to_xywh()})
    return masks, meta, dropped


def _tight(bm: BoxMask) -> BoxMask:
    """``bm`` over its mask's tight box (``bm`` itself when it is already; ``EMPTY_MASK`` for
    no pixel): a source's box need not be tight."""
    inner = mask_bbox(bm.mask) if bm.mask.size else None
    if inner is None:
        return EMPTY_MASK
    if inner.shape == bm.mask.shape:
        return bm
    y0, x0 = bm.box.origin
    return BoxMask(Box(y0 + inner.y0, y0 + inner.y1, x0 + inner.x0, x0 + inner.x1),
                   np.ascontiguousarray(bm.mask[inner.slices]))
