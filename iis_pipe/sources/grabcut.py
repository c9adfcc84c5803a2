"""GrabCut (Rother et al. 2004) as distributed for interactive segmentation evaluation.

Layout: ``data_GT/{stem}.{jpg,JPG,bmp}`` images and ``boundary_GT/{stem}.bmp`` masks with
255 = object, 128 = the unlabeled band around its boundary (ignore), 0 = background; 8-bit
gray (or palette indices), or 24-bit with equal channels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.sources._common import (has_dirs, make_sample, present_values, read_image, require_dir,
                                      scan_pairs)
from iis_pipe.sources.masks import read_values
from iis_pipe.sources.types import Sample, SourceItem

NAME = "grabcut"
LAYOUT = "data_GT/ images + boundary_GT/{stem}.bmp masks"
OBJECT, BAND = 255, 128


def detect(root: Path) -> bool:
    return has_dirs(root, "data_GT", "boundary_GT")


def scan(root: Path, *, split: str = "test") -> Iterator[SourceItem | BadInput]:
    """One item per image stem, sorted; half pairs come back as ``BadInput``."""
    yield from scan_pairs(NAME, split, require_dir(root, "data_GT"), require_dir(root, "boundary_GT"),
                          [".bmp"])


def load(item: SourceItem) -> Sample:
    """One instance (the 255 pixels); the 128 band is ignore; any other value is a ``BadInput``."""
    image = read_image(item, item.files["image"])
    # Some copies store the gray mask as 24-bit BMP; its channels are equal.
    mask, container = read_values(item, item.files["mask"], image[2], colours="first")
    present = present_values(mask)
    unknown = np.setdiff1d(present, [0, BAND, OBJECT])
    if unknown.size:
        raise BadInput(item.files["mask"], f"unknown mask value {unknown.tolist()} (expected 0, 128, 255)",
                       item.key)
    kind = "0/128/255" if BAND in present else "0/255"
    return make_sample(item, image, (mask == OBJECT)[None], [{"label": 1}], mask == BAND,
                       [item.files["mask"]], mask_encoding=f"{container} {kind}")
