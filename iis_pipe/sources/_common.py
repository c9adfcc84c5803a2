"""Helpers shared by the source modules: keys, file pairing, id maps, building a Sample."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numba import njit

from iis_pipe import images
from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import EMPTY_MASK, Box, BoxMask, box_mask
from iis_pipe.sources.types import Sample, SourceItem

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-/]")


def record_key(*parts: str) -> str:
    """Stable record key from path parts, e.g. ``record_key("val2017", "0001.a")`` ->
    ``"val2017/0001_a"``.

    Every character outside ``[A-Za-z0-9_-/]`` becomes ``_``: webdataset splits a key at its first
    dot, and shells and URLs dislike the rest.
    """
    key = "/".join(_KEY_UNSAFE.sub("_", str(p)) for p in parts)
    if not key.strip("/"):
        raise ValueError(f"empty record key from parts {parts!r}")
    return key


def require_dir(root: Path, name: str) -> Path:
    """``root/name`` as a folder; a missing folder is a usage error, not a bad input."""
    path = Path(root) / name
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder (wrong root or wrong format?)")
    return path


def has_dirs(root: Path, *names: str) -> bool:
    return root is not None and all((Path(root) / n).is_dir() for n in names)


def index_files(folder: Path, exts: Iterable[str]) -> tuple[dict[str, Path], list[BadInput]]:
    """``stem -> path`` of the files in ``folder`` whose suffix is one of ``exts`` (any case).

    Two files with one stem (``a.jpg`` and ``a.png``) cannot both pair with ``a``'s mask: the
    first in sorted order wins and each other one comes back as a ``BadInput``.
    """
    exts = {e.lower() for e in exts}
    found: dict[str, Path] = {}
    clashes = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix.lower() not in exts:
            continue
        if path.stem in found:
            clashes.append(BadInput(str(path), f"another file has the same stem ({found[path.stem].name})",
                                    key=record_key(path.stem)))
        else:
            found[path.stem] = path
    return found, clashes


def option_path(root: Path, value: str | Path) -> Path:
    """A path option: absolute, or relative to the working folder when it exists there, else to
    ``root``."""
    path = Path(value)
    return path if path.is_absolute() or path.exists() else Path(root) / path


def read_list(path: Path) -> list[str]:
    """Stems listed one per line in a split file (blank lines skipped)."""
    if not Path(path).is_file():
        raise ValueError(f"split file {path} not found")
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def scan_pairs(source: str, split: str, image_dir: Path, mask_dir: Path, mask_exts: Iterable[str],
               *, stems: Iterable[str] | None = None, listed_in: Path | None = None,
               extra: dict | None = None) -> Iterator[SourceItem | BadInput]:
    """Items for layouts with one image and one mask per stem, sorted by stem (same-stem clashes
    from ``index_files`` come first).

    ``stems`` restricts the scan to a split list (``listed_in`` names that file); otherwise every
    stem seen in either folder counts. A half pair comes back as a ``BadInput`` naming what is there.
    ``extra`` (options the loader needs) is copied into every item.
    """
    image_files, clashes = index_files(image_dir, IMAGE_EXTS)
    mask_exts = tuple(mask_exts)
    mask_files, mask_clashes = index_files(mask_dir, mask_exts)
    yield from clashes + mask_clashes
    wanted = sorted(set(stems) if stems is not None else image_files.keys() | mask_files.keys())
    for stem in wanted:
        key = record_key(stem)
        image, mask = image_files.get(stem), mask_files.get(stem)
        if image is not None and mask is not None:
            yield SourceItem(key, source, split, {"image": str(image), "mask": str(mask)}, dict(extra or {}))
        elif image is not None:
            yield BadInput(str(image), f"image without mask (no {mask_dir / stem}{mask_exts[0]})", key)
        elif mask is not None:
            yield BadInput(str(mask), f"mask without image (no {stem}.* in {image_dir})", key)
        else:
            yield BadInput(str(listed_in), f"{stem!r} is listed but has neither image nor mask", key)


@contextmanager
def keyed(key: str) -> Iterator[None]:
    """Attach ``key`` to any ``BadInput`` raised inside (file readers do not know it)."""
    try:
        yield
    except BadInput as e:
        if e.key is None:
            e.key = key
        raise


def read_image(item: SourceItem, path: str) -> tuple[bytes, str, tuple[int, int]]:
    """``images.read_image_file`` with the item's key on failure."""
    with keyed(item.key):
        return images.read_image_file(path)


def check_size(item: SourceItem, path: str, arr: np.ndarray, size: tuple[int, int]) -> None:
    if tuple(arr.shape[:2]) != tuple(size):
        raise BadInput(path, f"mask is {arr.shape[0]}x{arr.shape[1]} but image is {size[0]}x{size[1]}",
                       item.key)


def present_values(arr: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (flags per value for 8/16-bit maps: a
    fraction of ``np.unique``'s or ``np.bincount``'s time on a full image)."""
    if arr.dtype in (np.uint8, np.uint16) and arr.size:
        seen = np.zeros(256 if arr.dtype == np.uint8 else 65536, np.uint8)
        _mark(arr.ravel(), seen)
        return np.flatnonzero(seen).astype(arr.dtype)
    return np.unique(arr)


@njit(cache=True, nogil=True)
def _mark(values, seen):
    for v in values:
        seen[v] = 1


def split_ids(ids: np.ndarray, void: int | None = None) -> tuple[list[BoxMask], list[int], np.ndarray]:
    """Id map ``(H, W)`` -> ``(instances (K BoxMasks), ids (K,), ignore (H, W) bool)``.

    0 is background, ``void`` (if given) is ignore, every other value one instance, in increasing
    id order. 8/16-bit maps find every value's box in one pass, then compare over each box only.
    """
    values = present_values(ids)
    values = values[(values != 0) & (values != void)] if void is not None else values[values != 0]
    ignore = ids == void if void is not None else np.zeros(ids.shape, bool)
    if ids.dtype in (np.uint8, np.uint16) and ids.size:
        boxes = np.empty((256 if ids.dtype == np.uint8 else 65536, 4), np.int64)
        _value_boxes(np.ascontiguousarray(ids), boxes)
        instances = [BoxMask(box, ids[box.slices] == v)
                     for v in values.tolist() for box in [Box(*boxes[v].tolist())]]
    else:
        instances = [box_mask(ids == v) for v in values]
    return instances, [int(v) for v in values], ignore


@njit(cache=True, nogil=True)
def _value_boxes(ids, boxes):
    """``boxes[v] = (y0, y1, x0, x1)``: the box of value ``v`` in ``ids (H, W)`` (values not
    present keep ``y0 > y1``)."""
    h, w = ids.shape
    boxes[:, 0] = h
    boxes[:, 1] = 0
    boxes[:, 2] = w
    boxes[:, 3] = 0
    for y in range(h):
        for x in range(w):
            v = ids[y, x]
            if y < boxes[v, 0]:
                boxes[v, 0] = y
            boxes[v, 1] = y + 1
            if x < boxes[v, 2]:
                boxes[v, 2] = x
            if x >= boxes[v, 3]:
                boxes[v, 3] = x + 1


def make_sample(item: SourceItem, image: tuple[bytes, str, tuple[int, int]],
                instances: np.ndarray | list[np.ndarray] | list[BoxMask], instance_meta: list[dict],
                ignore: np.ndarray, mask_files: list[str], image_file: str | None = None,
                mask_encoding: str = "") -> Sample:
    """Assemble the Sample; an annotation without any instance pixel is a ``BadInput``.

    ``image`` is ``read_image``'s ``(bytes, ext, (H, W))``; ``instances`` K ``BoxMask``s, a
    ``(K, H, W)`` bool array or a list of K ``(H, W)`` masks (boxed here); ``image_file``
    defaults to ``item.files["image"]``; ``mask_encoding`` names how the masks were stored
    (``sources.masks``).
    """
    data, ext, size = image
    masks = [m if isinstance(m, BoxMask) else box_mask(m) for m in instances]
    if not any(m is not EMPTY_MASK and m.mask.any() for m in masks):
        raise BadInput(mask_files[0] if mask_files else item.files.get("image", item.key),
                       "empty mask (no instance pixels)", item.key)
    return Sample(
        key=item.key, image_bytes=data, image_ext=ext, size=size, instance_masks=masks,
        instance_meta=instance_meta, ignore=np.ascontiguousarray(ignore, dtype=bool),
        meta={"source": item.source, "split": item.split,
              "image_file": image_file if image_file is not None else item.files["image"],
              "mask_files": list(mask_files)},
        mask_encoding=mask_encoding,
    )
