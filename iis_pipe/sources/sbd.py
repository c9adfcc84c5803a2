"""Semantic Boundaries Dataset (Hariharan et al. 2011), the usual interactive-segmentation
training set.

Layout: ``img/{stem}.jpg`` and ``inst/{stem}.mat`` holding a ``GTinst`` struct:
``Segmentation`` ``(H, W)`` instance ids (0 background, 255 void/boundary if present -> ignore),
``Boundaries`` (per-instance sparse edge maps, unused) and ``Categories`` (one VOC class 1..20 per
id). Split lists ``train.txt`` / ``val.txt`` name stems one per line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.images import read_bytes
from iis_pipe.sources._common import (check_size, has_dirs, keyed, make_sample, option_path, read_image,
                                      read_list, require_dir, scan_pairs, split_ids)
from iis_pipe.sources.types import Sample, SourceItem
from iis_pipe.sources.voc import VOC_CLASSES

NAME = "sbd"
LAYOUT = "img/ images + inst/{stem}.mat GTinst annotations"
VOID = 255


def detect(root: Path) -> bool:
    return has_dirs(root, "img", "inst")


def scan(root: Path, *, split: str = "all", split_file: str | Path | None = None
         ) -> Iterator[SourceItem | BadInput]:
    """Items sorted by stem. ``split="all"``: every stem in img/ or inst/; another split name reads
    ``root/{split}.txt``; ``split_file`` names the list explicitly (the split is then its stem
    unless given)."""
    root = Path(root)
    if split_file is None and split != "all":
        split_file = root / f"{split}.txt"
    listed = option_path(root, split_file) if split_file is not None else None
    if listed is not None and split == "all":
        split = listed.stem
    yield from scan_pairs(NAME, split, require_dir(root, "img"), require_dir(root, "inst"), [".mat"],
                          stems=read_list(listed) if listed else None, listed_in=listed)


def load(item: SourceItem) -> Sample:
    """Instances in increasing id order, ``{"label": "person", "class_id": 15, "source_id": id}``."""
    image = read_image(item, item.files["image"])
    path = item.files["mask"]
    ids, categories = read_gtinst(item, path)
    check_size(item, path, ids, image[2])
    instances, source_ids, ignore = split_ids(ids, VOID)
    meta = []
    for i in source_ids:
        if i > len(categories):
            raise BadInput(path, f"unknown instance id {i} (Categories has {len(categories)} entries)",
                           item.key)
        class_id = int(categories[i - 1])
        if not 1 <= class_id < len(VOC_CLASSES):
            raise BadInput(path, f"unknown category {class_id} for instance {i} (VOC has 1..20)", item.key)
        meta.append({"label": VOC_CLASSES[class_id], "class_id": class_id, "source_id": i})
    return make_sample(item, image, instances, meta, ignore, [path], mask_encoding="mat GTinst ids")


def read_gtinst(item: SourceItem, path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(Segmentation (H, W) int, Categories (N,) int)`` of an SBD ``inst/*.mat`` file."""
    with keyed(item.key):
        data = read_bytes(path)
    try:
        from scipy.io import loadmat  # here: scipy.io costs every worker 0.3 s to import

        gt = loadmat(io.BytesIO(data), squeeze_me=True, struct_as_record=False)["GTinst"]
        ids = np.asarray(gt.Segmentation)
        categories = np.atleast_1d(np.asarray(gt.Categories)).ravel()
    # loadmat parses untrusted bytes and fails with many unrelated exception types.
    except Exception as e:  # noqa: BLE001
        raise BadInput(path, f"corrupt annotation ({type(e).__name__}: {e})", item.key) from None
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or categories.dtype.kind not in "iuf":
        raise BadInput(path, f"corrupt annotation (Segmentation {ids.dtype}{ids.shape}, "
                             f"Categories {categories.dtype})", item.key)
    return ids, categories
