"""SA-1B (Segment Anything 1B): one JPEG and one JSON per image, as a folder or as the
distribution's ``sa_NNNNNN.tar`` files read in place (never unpacked).

Layout: ``sa_{N}.jpg`` + ``sa_{N}.json`` side by side in the root, and/or ``sa_*.tar`` files in
the root holding such pairs. Each JSON is ``{"image": {image_id, width, height, file_name},
"annotations": [{id, segmentation {size, counts: compressed RLE string}, bbox, area,
predicted_iou, stability_score, point_coords, crop_box}]}``.

Options: ``min_predicted_iou`` / ``min_stability_score`` keep only masks scoring at least that
much; ``max_objects`` then keeps the N largest masks (pixel area of the RLE, ties in file order),
listed in file order. The JSON's ``area`` and ``bbox`` are not trusted: both are recomputed.

Records name their files as the distribution does (``sa_1.jpg``, ``sa_1.json``), so an image
gives the same record whether read from the folder or from a tar; rejects name the full path,
``<tar>:<member>`` for tar members.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.images import read_bytes, read_image_bytes
from iis_pipe.sources._common import index_files, keyed, make_sample, record_key, scan_pairs
from iis_pipe.sources.coco import runs_mask, segmentation_runs
from iis_pipe.sources.types import Sample, SourceItem

NAME = "sa1b"
LAYOUT = "sa_N.jpg + sa_N.json pairs, or sa_NNNNNN.tar files of them"
TAR_END = 2 * tarfile.BLOCKSIZE  # the end-of-archive marker: two zero blocks


def detect(root: Path) -> bool:
    return root is not None and Path(root).is_dir() and any(
        next(Path(root).glob(pattern), None) is not None for pattern in ("sa_*.json", "sa_*.tar"))


def scan(root: Path, *, split: str = "train", min_predicted_iou: float = 0.0,
         min_stability_score: float = 0.0, max_objects: int | None = None
         ) -> Iterator[SourceItem | BadInput]:
    """Items of the loose pairs (sorted by stem), then of each tar (sorted by name, pairs in
    stem order); half pairs, cut members and unreadable tars come back as ``BadInput``."""
    root = Path(root)
    for name, value in (("min_predicted_iou", min_predicted_iou), ("min_stability_score", min_stability_score)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number from 0 to 1, not {value!r}")
    if max_objects is not None and (isinstance(max_objects, bool) or not isinstance(max_objects, int)
                                    or max_objects < 1):
        raise ValueError(f"max_objects must be a positive integer or None, not {max_objects!r}")
    extra = {"min_predicted_iou": float(min_predicted_iou), "min_stability_score": float(min_stability_score),
             "max_objects": max_objects}
    if next(root.glob("sa_*.json"), None) is not None:
        jsons, _ = index_files(root, [".json"])
        images, _ = index_files(root, [".jpg"])
        stems = sorted(s for s in jsons.keys() | images.keys() if s.startswith("sa_"))
        yield from scan_pairs(NAME, split, root, root, [".json"], stems=stems, extra=extra)
    for tar in sorted(root.glob("sa_*.tar")):
        yield from scan_tar(tar, split, extra)


def scan_tar(tar: Path, split: str, extra: dict) -> Iterator[SourceItem | BadInput]:
    """Items of one tar from its member headers (tarfile seeks over the data, so a 10 GB tar is
    listed in a fraction of a second); ``extra`` gets each member's ``(offset, size)``."""
    file_size = tar.stat().st_size
    pairs: dict[str, dict[str, tarfile.TarInfo]] = {}
    problems: list[BadInput] = []
    end = 0
    try:
        with tarfile.open(tar, "r:") as tf:
            for info in tf:
                name = PurePosixPath(info.name)
                if not info.isfile() or name.suffix not in (".jpg", ".json"):
                    continue
                if info.offset_data + info.size > file_size:
                    problems.append(BadInput(f"{tar}:{info.name}", "truncated tar: the member's data "
                                             "ends past the end of the file", record_key(name.stem)))
                    continue
                pairs.setdefault(name.stem, {})[name.suffix] = info
            end = tf.offset
    except (tarfile.TarError, OSError) as e:
        whole = sum(map(len, pairs.values()))
        reason = ("truncated tar: it ends inside a member, members after it are missing"
                  if "unexpected end of data" in str(e) else
                  f"unreadable tar after {whole} members ({type(e).__name__}: {e})")
        problems.append(BadInput(str(tar), reason, record_key(tar.stem)))
    else:
        with open(tar, "rb") as f:
            f.seek(end)
            if f.read(TAR_END) != bytes(TAR_END):
                problems.append(BadInput(str(tar), "truncated tar: no end-of-archive marker, members "
                                                   "after the last whole one are missing",
                                         record_key(tar.stem)))
    yield from problems
    for stem in sorted(pairs):
        found, key = pairs[stem], record_key(stem)
        image, ann = found.get(".jpg"), found.get(".json")
        if image is not None and ann is not None:
            yield SourceItem(key, NAME, split, {"image": f"{tar}:{image.name}", "mask": f"{tar}:{ann.name}",
                                                "tar": str(tar)},
                             {**extra, "image_span": (image.offset_data, image.size),
                              "mask_span": (ann.offset_data, ann.size)})
        elif image is not None:
            yield BadInput(f"{tar}:{image.name}", f"image without annotation (no {stem}.json in the tar)", key)
        else:
            yield BadInput(f"{tar}:{ann.name}", f"annotation without image (no {stem}.jpg in the tar)", key)


def read_member(item: SourceItem, name: str) -> bytes:
    """The bytes of ``item.files[name]``: a file, or a tar member read at its offset."""
    if "tar" not in item.files:
        with keyed(item.key):
            return read_bytes(item.files[name])
    offset, size = item.extra[f"{name}_span"]
    try:
        with open(item.files["tar"], "rb") as f:
            f.seek(offset)
            data = f.read(size)
    except OSError as e:
        raise BadInput(item.files[name], f"cannot read tar member ({e.strerror or e})", item.key) from None
    if len(data) != size:
        raise BadInput(item.files[name], "truncated tar: the member's data ends past the end of the file",
                       item.key)
    return data


def load(item: SourceItem) -> Sample:
    """Instances (each decoded into its box) in file order, ``{"source_id": id, "predicted_iou",
    "stability_score"}`` (SA-1B masks have no class). ``meta["dropped"]`` lists each mask left
    out, ``{"source_id", "kind", "reason"}``, kind ``predicted_iou``, ``stability_score``,
    ``max_objects`` or ``empty`` (recorded in the record's ``dropped``)."""
    image_name, ann_name = item.files["image"], item.files["mask"]
    image = read_image_bytes(read_member(item, "image"), image_name)
    h, w = image[2]
    try:
        doc = json.loads(read_member(item, "mask"))
        listed = (int(doc["image"]["height"]), int(doc["image"]["width"]))
        annotations = list(doc["annotations"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(ann_name, f"corrupt annotation file ({type(e).__name__}: {e})", item.key) from None
    if listed != (h, w):
        raise BadInput(ann_name, f"image is {h}x{w} but the annotation file says {listed[0]}x{listed[1]}",
                       item.key)
    x = item.extra
    dropped: list[dict] = []
    kept: list[tuple[dict, dict]] = []
    for ann in annotations:
        try:
            if not isinstance(ann, dict):
                raise TypeError("an annotation is not an object")
            scores = {k: _score(ann, k) for k in ("predicted_iou", "stability_score")}
            below = [k for k in scores if scores[k] is not None and scores[k] < x[f"min_{k}"]]
            if any(x[f"min_{k}"] > 0 and v is None for k, v in scores.items()):
                raise ValueError("a score threshold is set but the annotation has no score")
            rle, runs = segmentation_runs(ann["segmentation"], h, w)
        except (ValueError, TypeError, KeyError) as e:
            raise BadInput(ann_name, f"corrupt annotation {_ann_id(ann)}: {e}", item.key) from None
        if below:
            k = below[0]
            dropped.append({"source_id": ann.get("id"), "kind": k,
                            "reason": f"{k} {scores[k]} < {x[f'min_{k}']}"})
        else:
            kept.append((ann, runs))
    areas = np.array([int(runs[1::2].sum()) for _, runs in kept], np.int64)  # the set runs' pixels
    order = [int(i) for i in np.argsort(-areas, kind="stable")]
    chosen = [i for i in order if areas[i] > 0]
    dropped += [{"source_id": kept[i][0].get("id"), "kind": "empty", "reason": "no pixel"}
                for i in order if areas[i] == 0]
    if x["max_objects"] is not None and len(chosen) > x["max_objects"]:
        dropped += [{"source_id": kept[i][0].get("id"), "kind": "max_objects",
                     "reason": f"area {int(areas[i])}: not among the {x['max_objects']} largest"}
                    for i in chosen[x["max_objects"]:]]
        chosen = chosen[:x["max_objects"]]
    chosen.sort()
    if not chosen:
        kinds = Counter(d["kind"] for d in dropped)
        raise BadInput(ann_name, f"no mask left ({len(annotations)} annotations; left out: "
                                 + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")", item.key)
    instances, meta = [], []
    for i in chosen:
        ann, runs = kept[i]
        instances.append(runs_mask(runs, h, w))
        meta.append({"source_id": ann.get("id"), "predicted_iou": ann.get("predicted_iou"),
                     "stability_score": ann.get("stability_score")})
    sample = make_sample(item, image, instances, meta, np.zeros((h, w), bool), [_base(ann_name)],
                         image_file=_base(image_name), mask_encoding="compressed rle")
    sample.meta["dropped"] = dropped
    return sample


def _score(ann: dict, key: str) -> float | None:
    value = ann.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} is not a number ({value!r})")
    return float(value)


def _ann_id(ann) -> object:
    return ann.get("id") if isinstance(ann, dict) else repr(ann)[:40]


def _base(name: str) -> str:
    """``/data/sa_000000.tar:./sa_1.jpg`` or ``/data/sa_1.jpg`` -> ``sa_1.jpg``."""
    return PurePosixPath(name.rsplit(":", 1)[-1] if ".tar:" in name else name).name
