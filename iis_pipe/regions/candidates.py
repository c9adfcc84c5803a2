"""Region candidates per image: every instance, optionally split into connected components,
each as a ``BoxMask`` (its pixels over its tight box only)."""

from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np

from iis_pipe.geometry.box import Box, mask_bbox


class BoxMask(NamedTuple):
    """A region's ``mask (h, w) bool`` over its tight ``box`` (image pixels): what travels
    from the candidates to the record, so a dense image's 200 regions are not 200 full-size
    masks to copy, test and pack."""

    box: Box
    mask: np.ndarray


def box_mask(mask: np.ndarray) -> BoxMask:
    """``(H, W) bool`` non-empty region -> its ``BoxMask`` (a copy of the box's pixels)."""
    box = _bbox(mask)
    if box is None:
        raise ValueError("an empty mask has no box")
    return BoxMask(box, np.ascontiguousarray(mask[box.slices], dtype=bool))


def unbox(regions: list[BoxMask], shape: tuple[int, int]) -> np.ndarray:
    """BoxMasks -> ``(R, H, W) bool`` full-size masks."""
    out = np.zeros((len(regions), *shape), bool)
    for o, (box, m) in zip(out, regions):
        o[box.slices] = m
    return out


def _bbox(mask: np.ndarray) -> Box | None:
    """``mask_bbox`` without copying a column-major mask (pycocotools decodes those): its
    transpose is row-major."""
    if not mask.flags.c_contiguous and mask.T.flags.c_contiguous:
        box = mask_bbox(mask.T)
        return None if box is None else Box(box.x0, box.x1, box.y0, box.y1)
    return mask_bbox(mask)


def region_candidates(instances: np.ndarray, instance_meta: list[dict[str, Any]], *,
                      split_components: bool = False, min_area: int = 1
                      ) -> tuple[list[BoxMask], list[dict[str, Any]], list[dict[str, Any]]]:
    """Regions of one image.

    ``instances``: ``(K, H, W) bool``. Returns ``(masks, meta, dropped)``: ``masks`` the
    regions as ``BoxMask``s (``unbox`` makes them full size), each meta dict has
    ``instance`` (index into ``instances``), ``component`` (None unless split), ``area``,
    ``bbox`` ``(x, y, w, h)`` (the record's stored form of its ``Box``) and the instance's
    own metadata; ``dropped`` lists the parts removed by ``min_area`` (kept so that nothing
    disappears unaccounted). Work past finding each instance's box runs on the box only.
    """
    masks: list[BoxMask] = []
    meta: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for k, inst in enumerate(instances):
        box = _bbox(inst)
        if box is None:
            parts = [(None, None)]
        else:
            crop = np.ascontiguousarray(inst[box.slices], dtype=bool)
            if split_components:
                n, labels = cv2.connectedComponents(crop.view(np.uint8), connectivity=8)
                parts = [(c - 1, BoxMask(box, labels == c)) for c in range(1, n)]
            else:
                parts = [(None, BoxMask(box, crop))]
        for comp, bm in parts:
            area = 0 if bm is None else int(np.count_nonzero(bm.mask))
            if area < max(min_area, 1):
                dropped.append({"instance": k, "component": comp, "area": area,
                                "reason": f"area {area} < min_area {max(min_area, 1)}"})
                continue
            if comp is not None:  # a component's own tight box
                inner, m = box_mask(bm.mask)
                bm = BoxMask(Box(box.y0 + inner.y0, box.y0 + inner.y1, box.x0 + inner.x0,
                                 box.x0 + inner.x1), m)
            masks.append(bm)
            meta.append({**instance_meta[k], "instance": k, "component": comp, "area": area,
                         "bbox": bm.box.to_xywh()})
    return masks, meta, dropped
