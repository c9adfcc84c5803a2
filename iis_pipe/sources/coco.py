"""COCO-style instance annotations (COCO ``instances_*.json``; LVIS v1 uses the same form).

Layout: ``annotations/*.json`` and the images under ``images/``, ``<split>/`` or the root (or
the ``images=`` option). Each non-crowd annotation is one instance, overlaps kept (each instance
has its own mask); ``iscrowd=1`` regions become ignore, as in RITM. Segmentations may be
polygons, uncompressed RLE (``counts`` a list) or compressed RLE (``counts`` a string).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from pycocotools import mask as mask_utils

from iis_pipe.errors import BadInput
from iis_pipe.sources._common import make_sample, option_path, read_image, record_key, require_dir
from iis_pipe.sources.types import Sample, SourceItem

NAME = "coco"
LAYOUT = "annotations/*.json (COCO/LVIS instances) + images/ or <split>/ image folders"
SPLIT_PREFIXES = ("instances_", "lvis_v1_", "lvis_v0.5_")


def detect(root: Path) -> bool:
    return root is not None and any((Path(root) / "annotations").glob("*.json"))


def scan(root: Path, *, split: str | None = None, annotations: str | Path | None = None,
         images: str | Path | None = None) -> Iterator[SourceItem | BadInput]:
    """One item per listed image, sorted by file name, annotations in ``extra``.

    ``annotations``: the JSON (default: the one ``annotations/*.json`` whose split is ``split``, or
    the only one). ``split`` defaults to the file's name less its prefix (``instances_val2017``
    -> ``val2017``). Images without annotations, missing image files and annotations of unlisted
    images come back as ``BadInput``; an unreadable JSON is raised as one.
    """
    root = Path(root)
    ann_path = option_path(root, annotations) if annotations is not None else find_annotations(root, split)
    split = split or split_name(ann_path)
    entries, by_image = index_annotations(ann_path)
    bases = [option_path(root, images)] if images is not None else [root / "images", root / split, root]
    for entry in entries:
        rel = image_relpath(entry)
        key = record_key(*PurePosixPath(rel).with_suffix("").parts)
        anns = by_image.pop(entry.get("id"), [])
        path = next((b / rel for b in bases if (b / rel).is_file()), None)
        if path is None:
            looked = [str(b) for b in bases]
            yield BadInput(str(bases[0] / rel), f"image file missing (looked in {looked})", key)
        elif not anns:
            yield BadInput(str(path), "no instances (the image has no annotations)", key)
        else:
            yield SourceItem(key, NAME, split, {"image": str(path), "annotations": str(ann_path)},
                             {"image_id": entry.get("id"), "height": entry.get("height"),
                              "width": entry.get("width"), "annotations": anns})
    for image_id, anns in sorted(by_image.items(), key=lambda kv: str(kv[0])):
        yield BadInput(str(ann_path), f"{len(anns)} annotation(s) of image id {image_id!r}, which is not "
                                      "in the images list", record_key(f"image_id_{image_id}"))


def find_annotations(root: Path, split: str | None) -> Path:
    """The single ``annotations/*.json`` (of ``split`` when given)."""
    found = sorted(require_dir(root, "annotations").glob("*.json"))
    if split is not None and len(found) > 1:
        found = [p for p in found if split_name(p) == split]
    if len(found) != 1:
        raise ValueError(f"cannot choose the annotation file in {root / 'annotations'} for split "
                         f"{split!r} (candidates: {[p.name for p in found]}); pass annotations=<json>")
    return found[0]


def split_name(path: Path) -> str:
    """``instances_val2017.json`` -> ``val2017``, ``lvis_v1_val.json`` -> ``val``."""
    stem = Path(path).stem
    return next((stem[len(p):] for p in SPLIT_PREFIXES if stem.startswith(p)), stem)


def image_relpath(entry: dict) -> str:
    """An image's path below the image folder; LVIS lists only ``coco_url``, whose last two parts
    (``val2017/000000000139.jpg``) are the COCO layout."""
    if entry.get("file_name"):
        return str(entry["file_name"])
    return "/".join(str(entry.get("coco_url", "")).split("/")[-2:])


def index_annotations(path: Path) -> tuple[list[dict], dict]:
    """``(image entries sorted by path, {image_id: [compact annotation, ...]})`` of a JSON file.

    The compact annotations keep what ``load`` needs, as plain data. A missing file is a usage
    error; an unreadable or malformed one is fatal for the scan (raised as ``BadInput``).
    """
    try:
        with open(path, "rb") as f:
            data = json.load(f)
        names = {c["id"]: c.get("name", str(c["id"])) for c in data["categories"]}
        by_image: dict = {}
        for ann in data["annotations"]:
            by_image.setdefault(ann.get("image_id"), []).append(
                {"id": ann.get("id"), "category_id": ann.get("category_id"),
                 "category": names.get(ann.get("category_id")), "iscrowd": int(ann.get("iscrowd", 0)),
                 "segmentation": ann.get("segmentation")})
        entries = sorted(data["images"], key=image_relpath)
    except FileNotFoundError:
        raise ValueError(f"annotation file {path} not found") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadInput(str(path), f"corrupt annotation file ({type(e).__name__}: {e})") from None
    return entries, by_image


def load(item: SourceItem) -> Sample:
    """Instances ``(K, H, W)`` in file order, ``{"label": name, "category_id", "source_id": ann id}``;
    crowd regions are ignore. Annotations decoding to no pixel (sub-pixel polygons) are dropped."""
    image = read_image(item, item.files["image"])
    h, w = image[2]
    listed = (item.extra.get("height"), item.extra.get("width"))
    if None not in listed and tuple(listed) != (h, w):
        raise BadInput(item.files["image"], f"image is {h}x{w} but the annotation file says "
                                            f"{listed[0]}x{listed[1]}", item.key)
    ann_file = item.files["annotations"]
    instances, meta, ignore, forms = [], [], np.zeros((h, w), bool), set()
    for ann in item.extra["annotations"]:
        forms.add(segmentation_form(ann["segmentation"]))
        try:
            mask = decode_segmentation(ann["segmentation"], h, w)
        except (ValueError, TypeError) as e:
            raise BadInput(ann_file, f"corrupt annotation {ann['id']}: {e}", item.key) from None
        if ann["iscrowd"]:
            ignore |= mask
        elif mask.any():
            instances.append(mask)
            meta.append({"label": ann["category"], "category_id": ann["category_id"], "source_id": ann["id"]})
    return make_sample(item, image, instances, meta, ignore, [ann_file], mask_encoding=" + ".join(sorted(forms)))


def segmentation_form(seg) -> str:
    """``"polygon"``, ``"rle"`` (uncompressed counts) or ``"compressed rle"`` (a counts string)."""
    if isinstance(seg, dict):
        return "compressed rle" if isinstance(seg.get("counts"), str) else "rle"
    return "polygon"


def decode_segmentation(seg, h: int, w: int) -> np.ndarray:
    """COCO segmentation (polygons, uncompressed or compressed RLE) -> ``(H, W) bool``."""
    return mask_utils.decode(segmentation_rle(seg, h, w)).astype(bool)


def segmentation_rle(seg, h: int, w: int) -> dict:
    """COCO segmentation -> pycocotools' compressed RLE ``{"size", "counts": bytes}``, raising
    ``ValueError`` for a malformed one.

    Validated first: pycocotools decodes run lengths without bounds checks, so a bad RLE could
    write past its buffer instead of failing.
    """
    if isinstance(seg, list):
        if not seg or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                              and all(isinstance(v, (int, float)) for v in p) for p in seg):
            raise ValueError("polygons must be lists of at least 3 x,y pairs")
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if not (isinstance(seg, dict) and "counts" in seg and "size" in seg):
        raise ValueError(f"unknown segmentation form {type(seg).__name__}")
    if list(seg["size"]) != [h, w]:
        raise ValueError(f"RLE size {seg['size']} is not the image's [{h}, {w}]")
    counts = seg["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) for c in counts):
            raise ValueError("uncompressed RLE counts must be integers")
        runs = np.array(counts, np.int64)
    elif isinstance(counts, str):
        runs = rle_string_counts(counts)
    else:
        raise ValueError(f"RLE counts must be a list or a string, not {type(counts).__name__}")
    if (runs < 0).any() or int(runs.sum()) != h * w:
        raise ValueError(f"RLE runs cover {int(runs.sum())} pixels, not {h}x{w}")
    if isinstance(counts, list):
        return mask_utils.frPyObjects(seg, h, w)
    return {"size": [h, w], "counts": counts.encode("ascii")}


def rle_string_counts(s: str) -> np.ndarray:
    """Run lengths ``(N,) int64`` of a compressed COCO RLE string, as pycocotools' ``rleFrString``
    reads them: 6-bit chars from ``"0"``, 5 value bits each (least significant first, bit 5 says
    another char follows), sign-extended, every run after the second a delta on the run two
    before. Vectorised: SA-1B's hundred masks per image would cost a Python loop 0.1 s."""
    try:
        c = np.frombuffer(s.encode("ascii"), np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise ValueError("invalid compressed RLE character (not ASCII)") from None
    if not c.size:
        return c
    bad = np.flatnonzero((c < 0) | (c >= 64))
    if bad.size:
        raise ValueError(f"invalid compressed RLE character {s[bad[0]]!r}")
    last = (c & 0x20) == 0  # the last char of a number
    if not last[-1]:
        raise ValueError("compressed RLE ends inside a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 7:  # 35 bits: more than any image's pixel count
        raise ValueError("compressed RLE number of more than 7 characters")
    shift = 5 * (np.arange(c.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((c & 0x1F) << shift, starts)
    values -= ((c[ends] & 0x10) != 0).astype(np.int64) << (5 * lengths)  # sign extension
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])  # run i > 2 adds run i - 2: two running sums
    counts[2::2] = np.cumsum(values[2::2])
    return counts
