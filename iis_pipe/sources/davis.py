"""DAVIS as used for interactive segmentation (345 frames), and COCO_MVal, which shares its layout.

Layout: ``img/{stem}.jpg`` and ``gt/{stem}.png`` palette masks: index 0 background, 255 void
(ignore), every other index one object. An index past the file's palette is unknown (BadInput).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from iis_pipe.errors import BadInput
from iis_pipe.sources._common import (has_dirs, make_sample, read_ids, read_image, require_dir,
                                      scan_pairs, split_ids)
from iis_pipe.sources.types import Sample, SourceItem

NAME = "davis"
LAYOUT = "img/ images + gt/{stem}.png palette masks"
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
    """Instances ``(K, H, W)`` in increasing index order, ``label`` = index; void is ignore."""
    image = read_image(item, item.files["image"])
    ids = read_ids(item, item.files["mask"], image[2], void=VOID)
    instances, labels, ignore = split_ids(ids, VOID)
    if item.extra.get("merge_instances") and labels:
        instances, meta = instances.any(0, keepdims=True), [{"label": 1, "merged": labels}]
    else:
        meta = [{"label": v} for v in labels]
    return make_sample(item, image, instances, meta, ignore, [item.files["mask"]])
