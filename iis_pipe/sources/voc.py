"""Pascal VOC 2012 instance segmentation.

Layout: ``JPEGImages/{stem}.jpg``, ``SegmentationObject/{stem}.png`` palette masks (0 background,
255 void = ignore, every other index one object), optional ``SegmentationClass/{stem}.png``
(class index 0..20 per pixel, 255 void) and optional ``ImageSets/Segmentation/{split}.txt``.
Both maps may also be stored as 8-bit gray indices or as RGB in the VOC palette's colours
(mapped back to their indices).

Unknown values (BadInput): palette indices past the file's palette, and class indices other
than 0..20 and 255.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import BoxMask
from iis_pipe.sources._common import (has_dirs, make_sample, read_image, read_list, present_values,
                                      require_dir, scan_pairs, split_ids)
from iis_pipe.sources.masks import read_values
from iis_pipe.sources.types import Sample, SourceItem

NAME = "voc"
LAYOUT = "JPEGImages/ + SegmentationObject/{stem}.png palette masks"
VOID = 255
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def detect(root: Path) -> bool:
    return has_dirs(root, "JPEGImages", "SegmentationObject")


def scan(root: Path, *, split: str = "trainval") -> Iterator[SourceItem | BadInput]:
    """Items of ``ImageSets/Segmentation/{split}.txt``, sorted; without that folder, every
    ``SegmentationObject`` mask (most VOC JPEGs have no segmentation, so images alone do not count).
    """
    root = Path(root)
    images, objects = require_dir(root, "JPEGImages"), require_dir(root, "SegmentationObject")
    sets = root / "ImageSets" / "Segmentation"
    listed = None
    if sets.is_dir():
        listed = sets / f"{split}.txt"
        if not listed.is_file():
            known = sorted(p.stem for p in sets.glob("*.txt"))
            raise ValueError(f"VOC split {split!r} not found: no {listed} (splits there: {known})")
        stems = read_list(listed)
    else:
        stems = [p.stem for p in objects.glob("*.png")]
    for item in scan_pairs(NAME, split, images, objects, [".png"], stems=stems, listed_in=listed):
        if isinstance(item, SourceItem):
            class_file = root / "SegmentationClass" / Path(item.files["mask"]).name
            if class_file.is_file():
                item = dataclasses.replace(item, files={**item.files, "class": str(class_file)})
        yield item


def load(item: SourceItem) -> Sample:
    """Instances in increasing object index; with a class map each instance's label is the
    majority class of its pixels (``{"label": "chair", "class_id": 9, "source_id": 3}``), else
    ``{"label": index, "source_id": index}``."""
    image = read_image(item, item.files["image"])
    objects, container = read_values(item, item.files["mask"], image[2], colours="palette", void=VOID)
    instances, ids, ignore = split_ids(objects, VOID)
    class_file = item.files.get("class")
    if class_file is None:
        meta = [{"label": i, "source_id": i} for i in ids]
    else:
        classes, _ = read_values(item, class_file, image[2], colours="palette", void=VOID)
        unknown = np.setdiff1d(present_values(classes), [*range(len(VOC_CLASSES)), VOID])
        if unknown.size:
            raise BadInput(class_file, f"unknown class index {unknown.tolist()} (VOC has 0..20 and 255)",
                           item.key)
        meta = [class_meta(item, class_file, classes, m, i) for m, i in zip(instances, ids, strict=True)]
    mask_files = [item.files["mask"]] + ([class_file] if class_file else [])
    return make_sample(item, image, instances, meta, ignore, mask_files, mask_encoding=f"{container} ids")


def class_meta(item: SourceItem, class_file: str, classes: np.ndarray, instance: BoxMask,
               source_id: int) -> dict:
    """Majority VOC class of one instance in a class map ``(H, W)``; void and background pixels
    do not vote."""
    votes = np.bincount(classes[instance.box.slices][instance.mask],
                        minlength=len(VOC_CLASSES))[1:len(VOC_CLASSES)]
    if not votes.any():
        raise BadInput(class_file, f"object {source_id} has no class in the class map", item.key)
    class_id = int(votes.argmax()) + 1
    return {"label": VOC_CLASSES[class_id], "class_id": class_id, "source_id": source_id}
