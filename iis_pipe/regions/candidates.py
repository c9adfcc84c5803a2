"""Region candidates per image: every instance, optionally split into connected components."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from iis_pipe.geometry.box import mask_bbox


def region_candidates(instances: np.ndarray, instance_meta: list[dict[str, Any]], *,
                      split_components: bool = False, min_area: int = 1
                      ) -> tuple[np.ndarray, list[dict[str, Any]], list[dict[str, Any]]]:
    """Regions of one image.

    ``instances``: ``(K, H, W) bool``. Returns ``(masks (R, H, W) bool, meta, dropped)``: each
    meta dict has ``instance`` (index into ``instances``), ``component`` (None unless split),
    ``area``, ``bbox`` ``(x, y, w, h)`` (the record's stored form of its ``Box``) and the
    instance's own metadata; ``dropped`` lists the
    parts removed by ``min_area`` (kept so that nothing disappears unaccounted).
    """
    masks: list[np.ndarray] = []
    meta: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for k, inst in enumerate(instances):
        if split_components:
            n, labels = cv2.connectedComponents(inst.astype(np.uint8), connectivity=8)
            parts = [(c - 1, labels == c) for c in range(1, n)]
        else:
            parts = [(None, inst)]
        for comp, m in parts:
            area = int(np.count_nonzero(m))
            if area < max(min_area, 1):
                dropped.append({"instance": k, "component": comp, "area": area,
                                "reason": f"area {area} < min_area {max(min_area, 1)}"})
                continue
            masks.append(m)
            meta.append({**instance_meta[k], "instance": k, "component": comp,
                         "area": area, "bbox": mask_bbox(m).to_xywh()})
    shape = instances.shape[1:]
    stacked = np.stack(masks) if masks else np.zeros((0, *shape), bool)
    return stacked, meta, dropped
