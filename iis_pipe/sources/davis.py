"""DAVIS as used for interactive segmentation (345 frames), and COCO_MVal, which shares its layout.

Layout: ``img/{stem}.jpg`` and ``gt/{stem}.png``, masks in any of their distributed encodings:

- palette PNG (DAVIS): index 0 background, 255 void (ignore), every other index one object;
  an index past the file's palette is unknown (BadInput);
- 8-bit gray with only 0 and 255 (COCO_MVal) or only 0 and 1: one object, no void;
- other 8-bit or 16-bit gray maps (palette indices saved as gray): ids as for palettes;
- RGB renderings of the palette (standard VOC/DAVIS colours mapped back to their indices).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import box_mask
from iis_pipe.sources._common import (has_dirs, make_sample, present_values, read_image, require_dir,
                                      scan_pairs, split_ids)
from iis_pipe.sources.masks import binary_kind, read_values
from iis_pipe.sources.types import Sample, SourceItem

NAME = "davis"
LAYOUT = "img/ images + gt/{stem}.png palette or gray masks"
VOID = 255


def detect(root: Path) -> bool:
    return has_dirs(root, "img", "gt")


def scan(root: Path, *, split: str = "test", merge_instances: bool = False
         ) -> Iterator[SourceItem | BadInput]:
    """One item per image stem, sorted; half pairs come back as ``BadInput``.

    ``merge_instances=True`` makes the union of all objects one instance (RITM evaluates DAVIS
    that way); it travels in ``SourceItem.extra``.
    """
    if not isinstance(merge_instances, bool):
        raise TypeError(f"merge_instances must be True or False, not {merge_instances!r}")
    yield from scan_pairs(NAME, split, require_dir(root, "img"), require_dir(root, "gt"), [".png"],
                          extra={"merge_instances": merge_instances})


def load(item: SourceItem) -> Sample:
    """Instances in increasing index order, ``label`` = index (1 for a binary
    gray mask); void is ignore."""
    image = read_image(item, item.files["image"])
    values, container = read_values(item, item.files["mask"], image[2], colours="palette", void=VOID)
    kind = None if container in ("palette", "rgb colours") else binary_kind(present_values(values))
    if kind is None:
        ids, void, kind = values, VOID, "ids"
    else:  # one object; 255 is the object here, not void
        ids, void = (values > 0).astype(np.uint8), None
    instances, labels, ignore = split_ids(ids, void)
    if item.extra.get("merge_instances") and labels:
        merged = (ids != 0) & ~ignore  # every object: neither background nor void
        instances, meta = [box_mask(merged)], [{"label": 1, "merged": labels}]
    else:
        meta = [{"label": v} for v in labels]
    return make_sample(item, image, instances, meta, ignore, [item.files["mask"]],
                       mask_encoding=f"{container} {kind}")
