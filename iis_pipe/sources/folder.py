"""Generic folder of images and masks, for any custom data set.

Layout: ``images/{stem}.*`` and in ``masks/`` either

- ``{stem}.png``, one mask for the whole image (palette, 8- or 16-bit gray, RGB in the standard
  VOC/DAVIS palette's colours): a binary mask (values ``{0, 255}``, ``{0, 1}`` or
  ``{0, 65535}``) is one instance; any other mask is an id map, every nonzero value one
  instance, except ``ignore_value`` (option, default none) which is ignore; or
- ``{stem}_{suffix}.png``, one binary instance per file (``masks.read_binary``: > 127, or
  nonzero for 0/1 masks). A suffix ending in a name (``voc_sample_00_bottle``) gives the label
  ``"bottle"``.

A mask belongs to the longest image stem that equals its stem or prefixes it followed by ``_``,
so images ``a.jpg`` and ``a_1.jpg`` can live side by side (``a_1.png`` is then ``a_1``'s mask).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.sources import berkeley
from iis_pipe.sources._common import (IMAGE_EXTS, has_dirs, index_files, make_sample, present_values,
                                      read_image, record_key, require_dir, split_ids)
from iis_pipe.sources.masks import binary_kind, read_binary, read_values
from iis_pipe.sources.types import Sample, SourceItem

NAME = "folder"
LAYOUT = "images/ + masks/{stem}.png or masks/{stem}_{suffix}.png (not Berkeley's RGB masks)"
PART = "mask/"  # prefix of the SourceItem.files keys of per-instance mask files


def detect(root: Path) -> bool:
    """Any images/ + masks/ folder that is not Berkeley's stricter layout."""
    return has_dirs(root, "images", "masks") and not berkeley.detect(root)


def scan(root: Path, *, split: str = "all", ignore_value: int | None = None
         ) -> Iterator[SourceItem | BadInput]:
    """One item per image, sorted by stem; files are ``{"image", "mask"}`` for a whole-image
    mask or ``{"image", "mask/<suffix>", ...}`` for per-instance masks."""
    if ignore_value is not None and not (isinstance(ignore_value, int) and 0 < ignore_value < 65536):
        raise ValueError(f"ignore_value must be a nonzero mask value or None, not {ignore_value!r}")
    image_files, clashes = index_files(require_dir(root, "images"), IMAGE_EXTS)
    mask_files, mask_clashes = index_files(require_dir(root, "masks"), [".png"])
    yield from clashes + mask_clashes
    whole: dict[str, Path] = {}
    parts: dict[str, dict[str, Path]] = {}
    for mask_stem, path in mask_files.items():
        stem = owner(mask_stem, image_files)
        if stem is None:
            yield BadInput(str(path), "mask without image (no image stem prefixes it)", record_key(mask_stem))
        elif stem == mask_stem:
            whole[stem] = path
        else:
            parts.setdefault(stem, {})[mask_stem[len(stem) + 1:]] = path
    for stem, image in sorted(image_files.items()):
        key = record_key(stem)
        if stem in whole and stem in parts:
            yield BadInput(str(whole[stem]), "image has both a whole mask and per-instance masks", key)
        elif stem in whole:
            yield SourceItem(key, NAME, split, {"image": str(image), "mask": str(whole[stem])},
                             {"ignore_value": ignore_value})
        elif stem in parts:
            files = {PART + suffix: str(p) for suffix, p in sorted(parts[stem].items())}
            yield SourceItem(key, NAME, split, {"image": str(image), **files})
        else:
            yield BadInput(str(image), f"image without mask (no masks/{stem}.png or {stem}_*.png)", key)


def owner(mask_stem: str, image_stems: dict[str, Path]) -> str | None:
    """The longest image stem equal to ``mask_stem`` or prefixing it followed by ``_``."""
    if mask_stem in image_stems:
        return mask_stem
    cut = mask_stem.rfind("_")
    while cut > 0:
        if mask_stem[:cut] in image_stems:
            return mask_stem[:cut]
        cut = mask_stem.rfind("_", 0, cut)
    return None


def load(item: SourceItem) -> Sample:
    """Instances: the id map's values in increasing order, or the per-instance files
    in suffix order with ``{"label": <name or 1>, "source_id": <suffix>}``."""
    image = read_image(item, item.files["image"])
    if "mask" in item.files:
        return load_whole(item, image)
    paths, instances, meta, encodings = [], [], [], set()
    for name, path in item.files.items():
        if not name.startswith(PART):
            continue
        instance, encoding = read_binary(item, path, image[2])
        encodings.add(encoding)
        # Each file claims one object; an empty one is a broken export, not a missing object.
        if not instance.any():
            raise BadInput(path, "empty mask (no instance pixels)", item.key)
        paths.append(path)
        instances.append(instance)
        suffix = name[len(PART):]
        meta.append({"label": suffix_label(suffix), "source_id": suffix})
    return make_sample(item, image, instances, meta, np.zeros(image[2], bool), paths,
                       mask_encoding=" + ".join(sorted(encodings)) + " (a file per object)")


def load_whole(item: SourceItem, image: tuple[bytes, str, tuple[int, int]]) -> Sample:
    path = item.files["mask"]
    ignore_value = item.extra.get("ignore_value")
    ids, container = read_values(item, path, image[2], colours="palette", void=ignore_value)
    kind = binary_kind(present_values(ids)) if ignore_value is None else None
    if kind is not None:
        return make_sample(item, image, (ids > 0)[None], [{"label": 1}], np.zeros(ids.shape, bool), [path],
                           mask_encoding=f"{container} {kind}")
    instances, labels, ignore = split_ids(ids, ignore_value)
    return make_sample(item, image, instances, [{"label": v} for v in labels], ignore, [path],
                       mask_encoding=f"{container} ids")


def suffix_label(suffix: str) -> str | int:
    """``"00_bottle"`` / ``"bottle"`` -> ``"bottle"``; a purely numeric suffix -> 1 (no name)."""
    name = suffix.split("_", 1)[1] if "_" in suffix and suffix.split("_", 1)[0].isdigit() else suffix
    return 1 if name.isdigit() else name
