"""Region candidates per image: every instance, optionally split into connected components,
each as a ``BoxMask`` (its pixels over its bbox only)."""

from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np

from iis_pipe.clicking.edt import mask_bbox


class BoxMask(NamedTuple):
    """A region's ``mask (h, w) bool`` over its tight bbox, whose corner is pixel ``(y, x)``
    of the image."""

    y: int
    x: int
    mask: np.ndarray


def box_mask(mask: np.ndarray) -> BoxMask:
    """``(H, W) bool`` non-empty region -> its ``BoxMask`` (a copy of the bbox's pixels)."""
    box = mask_bbox(mask)
    if box is None:
        raise ValueError("an empty mask has no box")
    y0, y1, x0, x1 = box
    return BoxMask(y0, x0, np.array(mask[y0:y1, x0:x1], bool))


def unbox(regions: list[BoxMask], shape: tuple[int, int]) -> np.ndarray:
    """BoxMasks -> ``(R, H, W) bool`` full-size masks."""
    out = np.zeros((len(regions), *shape), bool)
    for o, (y, x, m) in zip(out, regions):
        o[y:y + m.shape[0], x:x + m.shape[1]] = m
    return out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``mask_bbox`` without copying a column-major mask (pycocotools decodes those): its
    transpose is row-major."""
    if not mask.flags.c_contiguous and mask.T.flags.c_contiguous:
        box = mask_bbox(mask.T)
        return None if box is None else (box[2], box[3], box[0], box[1])
    return mask_bbox(mask)


def bbox_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight bounding box ``(x, y, w, h)`` of a non-empty ``(H, W) bool`` mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def region_candidates(instances: np.ndarray, instance_meta: list[dict[str, Any]], *,
                      split_components: bool = False, min_area: int = 1
                      ) -> tuple[list[BoxMask], list[dict[str, Any]], list[dict[str, Any]]]:
    """Regions of one image.

    ``instances``: ``(K, H, W) bool``. Returns ``(masks, meta, dropped)``: ``masks`` the
    regions as ``BoxMask``s (``unbox`` makes them full size), each meta dict has
    ``instance`` (index into ``instances``), ``component`` (None unless split), ``area``,
    ``bbox`` ``(x, y, w, h)`` and the instance's own metadata; ``dropped`` lists the parts
    removed by ``min_area`` (kept so that nothing disappears unaccounted). Work past finding
    each instance's box runs on the box only.
    """
    masks: list[BoxMask] = []
    meta: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for k, inst in enumerate(instances):
        box = _bbox(inst)
        if box is None:
            parts = [(None, None)]
        else:
            y0, y1, x0, x1 = box
            crop = np.ascontiguousarray(inst[y0:y1, x0:x1], dtype=bool)
            if split_components:
                n, labels = cv2.connectedComponents(crop.view(np.uint8), connectivity=8)
                parts = [(c - 1, BoxMask(y0, x0, labels == c)) for c in range(1, n)]
            else:
                parts = [(None, BoxMask(y0, x0, crop))]
        for comp, bm in parts:
            area = 0 if bm is None else int(np.count_nonzero(bm.mask))
            if area < max(min_area, 1):
                dropped.append({"instance": k, "component": comp, "area": area,
                                "reason": f"area {area} < min_area {max(min_area, 1)}"})
                continue
            if comp is not None:  # a component's own tight box
                y, x, m = box_mask(bm.mask)
                bm = BoxMask(bm.y + y, bm.x + x, m)
            masks.append(bm)
            meta.append({**instance_meta[k], "instance": k, "component": comp, "area": area,
                         "bbox": (bm.x, bm.y, bm.mask.shape[1], bm.mask.shape[0])})
    return masks, meta, dropped
