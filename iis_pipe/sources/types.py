"""The two value types every source produces: a cheap picklable item and a loaded sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iis_pipe.geometry.box import BoxMask, unbox


@dataclass(frozen=True)
class SourceItem:
    """One image of a dataset, as found by a source's ``scan`` (no pixels read yet).

    Cheap and picklable, so it can travel to worker processes. ``files`` holds the paths the
    loader needs (format specific, e.g. ``{"image": ..., "mask": ...}``); ``extra`` holds any
    other per-image annotation (e.g. COCO annotations) as plain Python data.
    """

    key: str
    source: str
    split: str
    files: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """One loaded image with its instance annotation.

    - ``image_bytes``: the file's bytes, passed through untouched when ``image_ext == "jpg"``;
      other formats are re-encoded once, losslessly, to PNG (``image_ext == "png"``).
    - ``size``: ``(H, W)`` of the decoded image.
    - ``instance_masks``: K ``BoxMask``s, each instance's pixels over its box (C-contiguous
      ``bool``; ``EMPTY_MASK`` for an instance without pixels); instances may overlap (COCO,
      LVIS). Readers decode each mask into its box only: a dense image's 100 objects are not
      100 full-size masks. ``instances`` gives them full size.
    - ``instance_meta``: K dicts (e.g. ``{"category": "person", "source_id": 3}``).
    - ``ignore``: ``(H, W) bool``, pixels excluded from training targets and metrics.
    - ``meta``: source, split and the original file paths.
    - ``mask_encoding``: how the annotation was stored (``"palette ids"``, ``"gray 0/255"``,
      ``"polygon"``...; see ``sources.masks``), counted in the manifest, not in the record.
    """

    key: str
    image_bytes: bytes
    image_ext: str
    size: tuple[int, int]
    instance_masks: list[BoxMask]
    instance_meta: list[dict[str, Any]]
    ignore: np.ndarray
    meta: dict[str, Any]
    mask_encoding: str = ""

    @property
    def instances(self) -> np.ndarray:
        """``(K, H, W) bool``: the instances full size, built at each call (checks and small
        sets; the pipelines take ``instance_masks``)."""
        return unbox(self.instance_masks, self.size)
