"""Berkeley interactive segmentation set (McGuinness & O'Connor 2010, 100 objects of BSDS images).

Layout: ``images/{stem}.{jpg,png}`` and ``masks/{stem}.png``, masks RGB (or gray, or palette)
0/255 with a few anti-aliased edge values: the object is the first channel > 127 (nonzero in
0/1 masks). No ignore region.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.sources._common import (IMAGE_EXTS, has_dirs, index_files, make_sample, read_image,
                                      require_dir, scan_pairs)
from iis_pipe.sources.masks import read_binary
from iis_pipe.sources.types import Sample, SourceItem

NAME = "berkeley"
LAYOUT = "images/ + masks/{stem}.png, RGB masks named exactly after the images"
PNG_COLOR_TYPE_OFFSET = 25  # byte of the IHDR chunk holding the colour type (2 = RGB, 6 = RGBA)


def detect(root: Path) -> bool:
    """Berkeley ships one RGB mask per image, named exactly like it; the generic ``folder`` layout
    (gray/palette masks, or several masks per image) claims every other images/ + masks/ folder."""
    if not has_dirs(root, "images", "masks"):
        return False
    image_files, _ = index_files(Path(root) / "images", IMAGE_EXTS)
    masks = sorted(p for p in (Path(root) / "masks").iterdir() if p.suffix.lower() == ".png")
    if not masks or any(p.stem not in image_files for p in masks):
        return False
    with open(masks[0], "rb") as f:
        header = f.read(PNG_COLOR_TYPE_OFFSET + 1)
    return len(header) > PNG_COLOR_TYPE_OFFSET and header[PNG_COLOR_TYPE_OFFSET] in (2, 6)


def scan(root: Path, *, split: str = "test") -> Iterator[SourceItem | BadInput]:
    """One item per image stem, sorted; half pairs come back as ``BadInput``."""
    yield from scan_pairs(NAME, split, require_dir(root, "images"), require_dir(root, "masks"), [".png"])


def load(item: SourceItem) -> Sample:
    """One instance (``masks.read_binary``: first channel > 127); no ignore pixels."""
    image = read_image(item, item.files["image"])
    mask, encoding = read_binary(item, item.files["mask"], image[2])
    return make_sample(item, image, mask[None], [{"label": 1}], np.zeros_like(mask), [item.files["mask"]],
                       mask_encoding=encoding)
