"""The record schema, version 4: defined here once, used by the shard writer and every reader.

A record is one image with all its regions (image bytes are never duplicated). In a webdataset
tar it is the group of members ``{key}.{suffix}``:

==================  =======================================================================
suffix              content
==================  =======================================================================
``jpg``/``png``     the image: JPEG bytes untouched, or (``prepare --jpeg-restarts N``) re-coded
                    without loss with restart markers (the source's DCT coefficients, so its
                    pixels; see ``images.add_restart_markers``); other formats as PNG
``runs.npy.zst``    region masks as stacked label layers ``(L*H, W)`` (``masks``), stored as
                    the runs of equal labels along each row (``runs``)
``ignore.npy.zst``  ``(H, W)`` bool, True where pixels are ignored (void, boundaries, crowds)
``dt.npy.lz4``      per-region quantised distance maps over their windows (``distances``),
                    back to back, each an ``.npy`` cut into LZ4 frames: its header, then
                    bands of ``dt.band_rows`` rows (a reader decompresses the rows it needs)
``meta.json``       everything else (below)
==================  =======================================================================

Array members are compressed ``.npy`` files (see ``arrays``).

``meta.json`` (typed as :class:`RecordMeta`, its regions as :class:`RegionMeta`): ``schema``
(this version), ``key``, ``source``, ``split``, ``height``,
``width``, ``image`` (``{"ext", "file"}``), ``mask_files``, ``layers``, ``ignored`` (ignore
pixels: a reader skips an empty mask), ``dt``
(``{"step", "clip", "band_rows"}``), ``regions`` (per region: ``id``, ``layer``, ``label_id``
(its label in that layer), ``instance``, ``component``, ``area``, ``bbox`` ``[x, y, w, h]``,
``dt_window`` ``[y0, x0, h, w]``, ``dt_span`` ``[offset, length]`` of its frames in
``dt.npy.lz4``, ``dt_frames`` (their lengths), and the source's instance metadata such as
``label``) and ``dropped`` (parts removed by ``min_area``).

Older versions are still read. Versions 1 to 3 stored the label layers' pixels in
``regions.npy.zst``, an ``.npy`` cut into zstd frames (its header, then bands of 32 rows, their
lengths in ``layers_frames``); the stream decompressed and resized whole rows of them, slower
than reading a crop's masks from runs (figures in the README's benchmark notes). Version 2 also
stored the distance maps' bands as zstd frames in ``dt.npy.zst`` (LZ4 decodes them faster, for
a few more bytes). Version 1 also stored the layers and each map as one frame, without
``layers_frames``, ``band_rows`` and ``dt_frames``, and had no ``ignored``.
"""

# No ``from __future__ import annotations`` here: Python 3.11's TypedDict sees NotRequired only
# in evaluated annotations.
import hashlib
import json
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from iis_pipe.geometry.box import Box
from iis_pipe.images import decode_image
from iis_pipe.plain import to_plain
from iis_pipe.records import distances, masks, runs
from iis_pipe.records.arrays import (decode_array, decode_bands_header, decode_rows, encode_array,
                                     encode_array_bands)

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
# rows per frame of the distance maps (readers decompress the bands they need); finer bands
# compress worse: distances +17 % bytes at 32 rows, +30 % at 16 (DAVIS)
BAND_ROWS = 32
JPG, PNG = "jpg", "png"
IMAGE_SUFFIXES = (JPG, PNG)
RUNS, IGNORE, DT, META = "runs.npy.zst", "ignore.npy.zst", "dt.npy.lz4", "meta.json"
REGIONS = "regions.npy.zst"  # versions 1 to 3: label layers' pixels in bands
DT_ZSTD = "dt.npy.zst"  # versions 1 and 2
# The members every record has besides its image, each under this version's name first, then
# the names older versions gave it.
REQUIRED_MEMBERS = ((IGNORE,), (META,), (RUNS, REGIONS), (DT, DT_ZSTD))
MEMBER_SUFFIXES = IMAGE_SUFFIXES + (RUNS, REGIONS, IGNORE, DT, DT_ZSTD, META)
# Shards are ``{prefix}-{part:06d}.tar``.
SHARD_PREFIX = "shard"


class ImageMeta(TypedDict):
    """``meta["image"]``: the image member's suffix and the source file it came from."""

    ext: str  # "jpg" or "png"
    file: str | None


class DtMeta(TypedDict):
    """``meta["dt"]``: the distance maps' quantisation (``distances.DistanceCoding``) and bands."""

    step: float
    clip: int
    band_rows: NotRequired[int]  # rows per LZ4/zstd frame; not in version 1


class RegionMeta(TypedDict):
    """One entry of ``meta["regions"]``. It also carries the source's instance metadata (such
    as ``label``) under the source's own keys."""

    id: int  # index of the region in the record
    layer: int  # label layer holding its mask
    label_id: int  # its label in that layer
    instance: int  # the source instance it comes from
    component: int | None  # connected component of that instance (None: not split)
    area: int  # pixels
    bbox: list[int]  # [x, y, w, h]
    dt_window: list[int]  # [y0, x0, h, w] of its stored distance map
    dt_span: list[int]  # [offset, length] of its frames in the distance member
    dt_frames: NotRequired[list[int]]  # those frames' lengths; not in version 1
    label: NotRequired[Any]


class RecordMeta(TypedDict):
    """``meta.json`` of a record (see the module doc; keys that older versions lack are
    ``NotRequired``)."""

    schema: int
    key: str
    source: str
    split: str
    height: int
    width: int
    image: ImageMeta
    mask_files: list[str]
    layers: int  # label layers stacked in the mask member
    ignored: NotRequired[int]  # ignored pixels; not in version 1
    dt: DtMeta
    regions: list[RegionMeta]
    dropped: list[dict[str, Any]]  # parts removed by min_area (instance, component, area...)
    layers_frames: NotRequired[list[int]]  # versions 2 and 3: frame lengths of regions.npy.zst


@dataclass
class Record:
    """A decoded record. Arrays: ``image (H, W, 3) uint8`` RGB, ``regions (R, H, W) bool``,
    ``ignore (H, W) bool``, ``dt (R, H, W) uint8`` quantised maps (see ``distances``)."""

    key: str
    meta: RecordMeta
    image: np.ndarray
    regions: np.ndarray
    ignore: np.ndarray
    dt: np.ndarray

    @property
    def coding(self) -> distances.DistanceCoding:
        return coding_of(self.meta)

    def inside_outside(self, region: int) -> tuple[np.ndarray, np.ndarray]:
        """``(inside, outside)`` distances of one region, ``(H, W) float32`` pixels."""
        return distances.inside_outside(self.dt[region], self.regions[region], self.coding)


def encode_record(key: str, image_bytes: bytes, image_ext: str, size: tuple[int, int],
                  region_masks: np.ndarray, region_meta: list[dict[str, Any]],
                  ignore: np.ndarray, info: dict[str, Any],
                  coding: distances.DistanceCoding) -> dict[str, bytes]:
    """Members of one record (suffix -> bytes). ``region_masks`` is ``(R, H, W) bool`` with
    R >= 1; ``info`` carries ``source``, ``split``, ``image_file``, ``mask_files``, ``dropped``."""
    if image_ext not in IMAGE_SUFFIXES:
        raise ValueError(f"image suffix must be one of {IMAGE_SUFFIXES}, got {image_ext!r}")
    h, w = size
    layers, slots = masks.pack_layers(region_masks)
    crops, windows = [], []
    for m, rm in zip(region_masks, region_meta):
        q, win = distances.encode_region(m, Box.from_xywh(rm["bbox"]), coding)
        crops.append(q)
        windows.append(win)
    frames, lengths = zip(*[encode_array_bands(q, BAND_ROWS, "lz4") for q in crops])
    offsets = np.cumsum([0] + [len(f) for f in frames]).tolist()
    regions = [
        {**to_plain(rm), "id": i, "layer": layer, "label_id": label, "bbox": list(rm["bbox"]),
         "dt_window": list(win.to_yxhw()), "dt_span": [offsets[i], len(frames[i])],
         "dt_frames": lengths[i]}
        for i, (rm, (layer, label), win) in enumerate(zip(region_meta, slots, windows))
    ]
    meta: RecordMeta = {
        "schema": SCHEMA_VERSION, "key": key, "source": info["source"], "split": info["split"],
        "height": int(h), "width": int(w),
        "image": {"ext": image_ext, "file": info.get("image_file")},
        "mask_files": info.get("mask_files", []),
        "layers": int(layers.shape[0] // h),
        "ignored": int(np.count_nonzero(ignore)),
        "dt": {"step": coding.step, "clip": coding.clip, "band_rows": BAND_ROWS},
        "regions": regions,
        "dropped": to_plain(info.get("dropped", [])),
    }
    return {
        image_ext: image_bytes,
        RUNS: encode_array(runs.encode_runs(layers)),
        IGNORE: encode_array(np.asarray(ignore, bool)),
        DT: b"".join(frames),
        META: json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(),
    }


def checksum(members: dict[str, bytes]) -> str:
    """sha256 over the members in suffix order (name, length, bytes): the record's identity."""
    h = hashlib.sha256()
    for name in sorted(members):
        if name.startswith("__"):
            continue
        h.update(name.encode())
        h.update(len(members[name]).to_bytes(8, "little"))
        h.update(members[name])
    return h.hexdigest()


def decode_meta(members: dict[str, bytes]) -> RecordMeta:
    """Parse and check ``meta.json``; raises ValueError on a missing member or other version."""
    if META not in members:
        raise ValueError(f"record has no {META} member")
    meta = json.loads(members[META])
    if meta.get("schema") not in READABLE_VERSIONS:
        raise ValueError(f"record schema {meta.get('schema')!r}, this reader knows "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    return meta


def coding_of(meta: RecordMeta) -> distances.DistanceCoding:
    return distances.DistanceCoding(step=float(meta["dt"]["step"]), clip=int(meta["dt"]["clip"]))


def decode_layers(members: dict[str, bytes], meta: RecordMeta) -> np.ndarray:
    """``(L*H, W)`` stacked label layers (see ``masks``)."""
    if RUNS not in members:  # versions 1 to 3
        return decode_array(members[REGIONS])
    return runs.decode_runs(decode_array(members[RUNS]), meta["layers"] * meta["height"],
                            meta["width"])


def decode_regions(members: dict[str, bytes], meta: RecordMeta,
                   ids: list[int] | None = None) -> np.ndarray:
    """``(R, H, W) bool`` masks of all regions, or of ``ids``."""
    slots = [(r["layer"], r["label_id"]) for r in meta["regions"]]
    return masks.unpack_layers(decode_layers(members, meta), slots, meta["height"], ids)


def decode_layer_runs(members: dict[str, bytes], meta: RecordMeta, y0: int, y1: int
                      ) -> runs.LayerRuns:
    """At least rows ``[y0, y1)`` of every label layer as runs: all rows from version 4's
    runs; from the bands of versions 2 and 3 only those that hold the rows (version 1: all)."""
    h, w, n_layers = meta["height"], meta["width"], meta["layers"]
    if RUNS in members:
        found = decode_array(members[RUNS])
        return runs.LayerRuns(found, runs.row_starts(found, n_layers * h, w), 0, h, w)
    y0, y1 = max(y0, 0), min(y1, h)
    if "layers_frames" not in meta:
        layers, y0, y1 = decode_array(members[REGIONS]).reshape(n_layers, h, w), 0, h
    else:
        data, frames = members[REGIONS], meta["layers_frames"]
        dtype, shape = decode_bands_header(data, frames)
        parts = []
        for j in range(n_layers):  # stacked (L * H, W): each layer's rows are a run of bands
            rows, first = decode_rows(data, frames, BAND_ROWS, j * h + y0, j * h + y1, shape,
                                      dtype)
            parts.append(rows[j * h + y0 - first:j * h + y1 - first])
        layers = np.stack(parts)
    found = runs.encode_runs(layers.reshape(-1, w))
    return runs.LayerRuns(found, runs.row_starts(found, n_layers * (y1 - y0), w), y0, y1 - y0,
                          w)


def decode_ignore(members: dict[str, bytes]) -> np.ndarray:
    """``(H, W) bool`` ignore mask."""
    return decode_array(members[IGNORE]).astype(bool, copy=False)


def decode_ignore_if_any(members: dict[str, bytes], meta: RecordMeta) -> np.ndarray | None:
    """``(H, W) bool`` ignore mask, or None when ``meta`` counts no ignored pixel (version 1
    records do not count them: decoded to find out)."""
    return decode_ignore(members) if meta.get("ignored", 1) > 0 else None


def dt_member(members: dict[str, bytes]) -> bytes:
    """The distance maps' member: ``dt.npy.lz4``, or ``dt.npy.zst`` of version 1 and 2 records."""
    data = members.get(DT, members.get(DT_ZSTD))
    if data is None:
        raise ValueError(f"record has no {DT} member")
    return data


def decode_dt_window(members: dict[str, bytes], region: RegionMeta) -> np.ndarray:
    """One region's stored map over its ``dt_window``: ``(h, w) uint8`` quantised levels."""
    offset, length = region["dt_span"]
    return decode_array(memoryview(dt_member(members))[offset:offset + length])


def decode_dt_rows(members: dict[str, bytes], meta: RecordMeta, region: RegionMeta,
                   y0: int, y1: int) -> tuple[np.ndarray, tuple[int, int]]:
    """At least image rows ``[y0, y1)`` of one region's stored map, decompressing only the
    bands that hold them (version 1: the whole window): ``((n, w) uint8 levels, (y, x) of its
    first pixel in the image)``; rows off the window are not there (they read as ``clip``)."""
    wy, wx, h, w = region["dt_window"]
    offset, length = region["dt_span"]
    data = memoryview(dt_member(members))[offset:offset + length]
    if "dt_frames" not in region:
        return decode_array(data), (wy, wx)
    rows, first = decode_rows(data, region["dt_frames"], int(meta["dt"]["band_rows"]),
                              y0 - wy, y1 - wy, (h, w), np.dtype(np.uint8))
    return rows, (wy + first, wx)


def decode_dt(members: dict[str, bytes], meta: RecordMeta,
              ids: list[int] | None = None) -> np.ndarray:
    """``(R, H, W) uint8`` full-size quantised maps (multiply by ``meta["dt"]["step"]``)."""
    regs = meta["regions"]
    ids = range(len(regs)) if ids is None else ids
    shape = (meta["height"], meta["width"])
    clip = int(meta["dt"]["clip"])
    return np.stack([distances.unpack_region(decode_dt_window(members, regs[i]),
                                             Box.from_yxhw(regs[i]["dt_window"]), shape, clip)
                     for i in ids])


def find_image_member(members: dict[str, bytes]) -> str | None:
    """Suffix of the record's image member (``jpg`` or ``png``), None when it has none."""
    for ext in IMAGE_SUFFIXES:
        if ext in members:
            return ext
    return None


def image_member(members: dict[str, bytes]) -> str:
    """Suffix of the record's image member (``jpg`` or ``png``); ValueError when it has none."""
    ext = find_image_member(members)
    if ext is None:
        raise ValueError("record has no image member (jpg or png)")
    return ext


def missing_members(members: dict[str, bytes]) -> list[str]:
    """This version's names of the members, other than the image (see ``find_image_member``),
    that a record lacks under every name a readable version gave them (empty: none missing)."""
    return [names[0] for names in REQUIRED_MEMBERS if not any(n in members for n in names)]


def shard_name(part: int, prefix: str = SHARD_PREFIX) -> str:
    """File name of shard number ``part``: ``shard-000042.tar``."""
    return f"{prefix}-{part:06d}.tar"


def shard_glob(prefix: str = SHARD_PREFIX) -> str:
    """Glob pattern matching every ``shard_name`` of ``prefix``: ``shard-*.tar``."""
    return f"{prefix}-*.tar"


def decode_record(members: dict[str, bytes]) -> Record:
    """Decode every member of one record (use the ``decode_*`` functions for less)."""
    meta = decode_meta(members)
    ext = image_member(members)
    image = decode_image(members[ext], ext)
    h, w = meta["height"], meta["width"]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image is {image.shape[:2]}, meta says {(h, w)}")
    return Record(key=meta["key"], meta=meta, image=image,
                  regions=decode_regions(members, meta), ignore=decode_ignore(members),
                  dt=decode_dt(members, meta))

