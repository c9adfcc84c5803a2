"""The record schema, version 6: defined here once, used by the shard writer and every reader.

A record is one image with all its regions (image bytes are never duplicated). In a webdataset
tar it is the group of members ``{key}.{suffix}``:

==================  =======================================================================
suffix              content
==================  =======================================================================
``jpg``/``png``     the image: JPEG bytes untouched, or (``prepare --jpeg-restarts N``) re-coded
                    without loss with restart markers (the source's DCT coefficients, so its
                    pixels; see ``images.add_restart_markers``); other formats as PNG
``jpg.idx``         optional (version 6): with an untouched sequential JPEG, its entry-point
                    index (``images.jpeg_entry_index``: per 64-pixel segment of each MCU row,
                    where its codes start and the DC predictors there), so the stream decodes
                    only the segments under a window
``runs.npy.zst``    region masks as stacked label layers ``(L*H, W)`` (``masks``), stored as
                    the runs of equal labels along each row (``runs``)
``ignore.npy.zst``  ``(H, W)`` bool, True where pixels are ignored (void, boundaries, crowds)
``dt.q2.zst``       per-region quantised distance maps over their windows, back to back:
                    each a span of zstd frames, one per band of ``dt.band_rows`` rows, of
                    2-bit row/column deltas (``distances``; a reader decompresses the bands
                    under the rows it needs)
``table.npy.zst``   ``(R, 14) int32`` (``int64`` when a value needs it), one row per region,
                    the columns ``TABLE_COLUMNS``: what the training stream needs of each
                    region (read without parsing JSON)
``regions.json``    per region: ``id``, ``instance``, ``component`` and the source's instance
                    metadata (``label``, ...); the stream never parses it
``meta.json``       everything else (below)
==================  =======================================================================

Array members are compressed ``.npy`` files (see ``arrays``).

``meta.json`` (typed as :class:`RecordMeta`, its regions as :class:`RegionMeta`): ``schema``
(this version), ``key``, ``source``, ``split``, ``height``,
``width``, ``image`` (``{"ext", "file"}``), ``mask_files``, ``layers``, ``union_layer``
(version 5: when the regions take several layers, ``runs.npy.zst`` holds one more, labelled 1
wherever any region is, so the stream finds other objects without reading every layer),
``runs_frames`` (then: ``runs.npy.zst`` is
zstd frames, the ``.npy`` header then a frame per stored layer, their lengths here, so the
stream decompresses the targets' layers and the union only; one frame with one layer),
``ignored`` (ignore pixels: a reader skips an empty mask), ``dt`` (``{"step", "clip", "band_rows", "expand"}``:
``expand``, the largest ``expand_ratio`` of the click sampler's border band the maps hold, see
``distances.reach``), ``regions`` (the region count) and ``dropped`` (parts removed by
``min_area``). ``decode_meta`` gives ``meta["regions"]`` as version 4 did, a dict per region
(``id``, ``layer``, ``label_id`` (its label in that layer), ``instance``, ``component``,
``area``, ``bbox`` ``[x, y, w, h]``, ``dt_window`` ``[y0, x0, h, w]``, ``dt_span`` ``[offset,
length]`` in the distance member, ``dt_reach`` (outside levels kept exact) and the source's
metadata); the stream reads ``region_table`` instead (no JSON per region: figures in the
README).

Older versions are still read. Version 5 is version 6 without ``jpg.idx`` (a record without
it, of any version, decodes its JPEG windows with libjpeg-turbo's partial decoding). Version 4
stored every map over its bbox grown by the whole
clip (255 px) as an ``.npy`` cut into LZ4 frames (``dt.npy.lz4``, header frame then 32-row
bands, lengths in ``dt_frames``), and all of the regions' fields in ``meta.json``. Versions 1 to 3 stored the label layers' pixels in
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
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, NotRequired, TypedDict

import numpy as np

from iis_pipe.geometry.box import Box
from iis_pipe.images import decode_image
from iis_pipe.plain import to_plain
from iis_pipe.records import distances, masks, runs
from iis_pipe.records.arrays import (decode_array, decode_bands_header, decode_frames,
                                     decode_rows, encode_array, encode_array_frames,
                                     zstd_compressor, zstd_frames)

SCHEMA_VERSION = 6
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
# rows per frame of the distance maps (readers decompress the bands they need); finer bands
# compress worse: +6 % bytes at 64 rows against 128, +16 % at 32 (dense synthetic COCO);
# versions 1 to 4: 32
BAND_ROWS = 64
BAND_ROWS_V4 = 32
DT_LEVEL = 6  # zstd level of the distance bands: 9 is 1 % smaller and twice as slow to write
DEFAULT_EXPAND = 0.25  # prepare's default largest expand_ratio (RITM trains with 0.1)
JPG, PNG = "jpg", "png"
IMAGE_SUFFIXES = (JPG, PNG)
RUNS, IGNORE, DT, META = "runs.npy.zst", "ignore.npy.zst", "dt.q2.zst", "meta.json"
TABLE, REGION_META = "table.npy.zst", "regions.json"
JPEG_INDEX = "jpg.idx"  # version 6, optional
REGIONS = "regions.npy.zst"  # versions 1 to 3: label layers' pixels in bands
DT_LZ4 = "dt.npy.lz4"  # versions 3 and 4
DT_ZSTD = "dt.npy.zst"  # versions 1 and 2
MEMBER_SUFFIXES = IMAGE_SUFFIXES + (JPEG_INDEX, RUNS, REGIONS, IGNORE, DT, TABLE, REGION_META,
                                    DT_LZ4, DT_ZSTD, META)
# columns of the region table (version 5): layer and label in it, area, bbox x y w h, distance
# window y0 x0 h w, span offset and length in the distance member, reach (outside levels kept)
TABLE_COLUMNS = ("layer", "label_id", "area", "x", "y", "w", "h", "wy", "wx", "wh", "ww",
                 "offset", "length", "reach")


class RegionTable(NamedTuple):
    """What the stream needs of a record's R regions, as arrays (``int64``): ``layer (R,)``,
    ``label_id (R,)``, ``area (R,)``, ``bbox (R, 4)`` ``[x, y, w, h]``, ``window (R, 4)``
    ``[y0, x0, h, w]`` of the stored map, ``span (R, 2)`` ``[offset, length]`` in the distance
    member, ``reach (R,)``: outside levels exact up to it (``distances.reach``)."""

    layer: np.ndarray
    label_id: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    window: np.ndarray
    span: np.ndarray
    reach: np.ndarray

    @classmethod
    def from_array(cls, a: np.ndarray) -> "RegionTable":
        a = np.asarray(a, np.int64).reshape(-1, len(TABLE_COLUMNS))
        return cls(a[:, 0], a[:, 1], a[:, 2], a[:, 3:7], a[:, 7:11], a[:, 11:13], a[:, 13])

    def slots(self, ids) -> np.ndarray:
        """``(M, 2) int64`` ``[layer, label]`` of regions ``ids``."""
        ids = np.asarray(ids, np.int64)
        return np.stack([self.layer[ids], self.label_id[ids]], 1).reshape(-1, 2)


# The members every record has besides its image, each under this version's name first, then
# the names older versions gave it.
REQUIRED_MEMBERS = ((IGNORE,), (META,), (RUNS, REGIONS), (DT, DT_LZ4, DT_ZSTD))
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
    expand: NotRequired[float]  # version 5: the largest expand_ratio the maps serve


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
    dt_frames: NotRequired[list[int]]  # those frames' lengths; versions 2 to 4
    dt_reach: NotRequired[int]  # version 5: outside levels kept exact (distances.reach)
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
    union_layer: NotRequired[bool]  # version 5: one more layer, labelled where any region is
    runs_frames: NotRequired[list[int]]  # version 5, several layers: frames of runs.npy.zst
    ignored: NotRequired[int]  # ignored pixels; not in version 1
    dt: DtMeta
    regions: list[RegionMeta] | int  # version 5's meta.json: the count (decode_meta: dicts)
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
                  region_masks, region_meta: list[dict[str, Any]],
                  ignore: np.ndarray, info: dict[str, Any],
                  coding: distances.DistanceCoding, expand: float = DEFAULT_EXPAND,
                  jpeg_index: bytes | None = None) -> dict[str, bytes]:
    """Members of one record (suffix -> bytes). ``region_masks``: ``(R, H, W) bool`` with
    R >= 1, or R ``geometry.box.BoxMask``s; ``region_meta``: R dicts with ``area`` and ``bbox``
    ``(x, y, w, h)`` and the source's metadata; ``info`` carries ``source``, ``split``,
    ``image_file``, ``mask_files``, ``dropped``. ``expand``: the largest ``expand_ratio`` the
    distance maps serve (``distances.reach``). ``jpeg_index``: the JPEG's
    ``images.jpeg_entry_index``, stored as ``jpg.idx`` (None: no such member)."""
    if image_ext not in IMAGE_SUFFIXES:
        raise ValueError(f"image suffix must be one of {IMAGE_SUFFIXES}, got {image_ext!r}")
    if jpeg_index is not None and image_ext != JPG:
        raise ValueError(f"a JPEG index for a {image_ext!r} image")
    h, w = size
    boxed = masks.boxed(region_masks)
    layers, slots = masks.pack_layers(boxed, (h, w))
    n_layers = layers.shape[0] // h
    if n_layers > 1:  # the union layer: the stream's "labelled" without reading every layer
        union = (layers.reshape(n_layers, h, w) != 0).any(axis=0).astype(layers.dtype)
        layers = np.concatenate([layers, union])
    compress = zstd_compressor(DT_LEVEL)
    spans, table = [], np.zeros((len(boxed), len(TABLE_COLUMNS)), np.int64)
    offset = 0
    for i, (bm, rm) in enumerate(zip(boxed, region_meta)):
        x, y, bw, bh = (int(v) for v in rm["bbox"])
        r = distances.reach(int(rm["area"]), expand, coding)
        q, win = distances.encode_region(bm.mask, Box.from_xywh(rm["bbox"]), coding, r,
                                         bm.box.origin, (h, w))
        wy, wx, wh, ww = win.to_yxhw()
        span = distances.encode_bands(q, BAND_ROWS, compress)
        table[i] = (*slots[i], rm["area"], x, y, bw, bh, wy, wx, wh, ww, offset, len(span), r)
        spans.append(span)
        offset += len(span)
    regions = [{**to_plain({k: v for k, v in rm.items() if k not in ("area", "bbox")}), "id": i}
               for i, rm in enumerate(region_meta)]
    meta: RecordMeta = {
        "schema": SCHEMA_VERSION, "key": key, "source": info["source"], "split": info["split"],
        "height": int(h), "width": int(w),
        "image": {"ext": image_ext, "file": info.get("image_file")},
        "mask_files": info.get("mask_files", []),
        "layers": n_layers,
        "union_layer": n_layers > 1,
        "ignored": int(np.count_nonzero(ignore)),
        "dt": {"step": coding.step, "clip": coding.clip, "band_rows": BAND_ROWS,
               "expand": float(expand)},
        "regions": len(region_meta),
        "dropped": to_plain(info.get("dropped", [])),
    }
    # int32 when every value fits: the stream decompresses half the bytes (readers widen it)
    narrow = table.astype(np.int32)
    label_runs = runs.encode_runs(layers)
    if n_layers > 1:  # a frame per stored layer: the stream reads the targets' and the union
        first = runs.row_starts(label_runs, layers.shape[0], w)[:-1:h]
        runs_member, meta["runs_frames"] = encode_array_frames(label_runs, first.tolist())
    else:
        runs_member = encode_array(label_runs)
    dumps = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    return {
        image_ext: image_bytes,
        **({JPEG_INDEX: jpeg_index} if jpeg_index is not None else {}),
        RUNS: runs_member,
        IGNORE: encode_array(np.asarray(ignore, bool)),
        DT: b"".join(spans),
        TABLE: encode_array(narrow if np.array_equal(narrow, table) else table),
        REGION_META: dumps(regions),
        META: dumps(meta),
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


def decode_meta(members: dict[str, bytes], regions: bool = True) -> RecordMeta:
    """Parse and check ``meta.json``; raises ValueError on a missing member or other version.

    ``regions``: give ``meta["regions"]`` as a list of dicts (see the module doc) also for
    version 5, whose ``meta.json`` holds only their count (False: leave that, the stream's
    choice; it reads ``region_table``)."""
    if META not in members:
        raise ValueError(f"record has no {META} member")
    meta = json.loads(members[META])
    if meta.get("schema") not in READABLE_VERSIONS:
        raise ValueError(f"record schema {meta.get('schema')!r}, this reader knows "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    if regions and meta["schema"] >= 5:
        meta["regions"] = _region_dicts(members, meta)
    return meta


def _region_dicts(members: dict[str, bytes], meta: RecordMeta) -> list[dict[str, Any]]:
    """Version 5's per-region dicts, from ``regions.json`` and the region table."""
    for name in (REGION_META, TABLE):
        if name not in members:
            raise ValueError(f"record has no {name} member")
    t = region_table(members, meta)
    found = json.loads(members[REGION_META])
    if len(found) != len(t.area):
        raise ValueError(f"{REGION_META} lists {len(found)} regions, {TABLE} {len(t.area)}")
    return [{**r, "layer": int(t.layer[i]), "label_id": int(t.label_id[i]),
             "area": int(t.area[i]), "bbox": t.bbox[i].tolist(), "dt_window": t.window[i].tolist(),
             "dt_span": t.span[i].tolist(), "dt_reach": int(t.reach[i])}
            for i, r in enumerate(found)]


def region_table(members: dict[str, bytes], meta: RecordMeta) -> RegionTable:
    """The regions' ``RegionTable``: version 5's table member, or built from the region dicts
    of older versions (their maps hold outside levels to ``clip - 1``)."""
    if meta["schema"] >= 5:
        if TABLE not in members:
            raise ValueError(f"record has no {TABLE} member")
        t = RegionTable.from_array(decode_array(members[TABLE]))
        count = meta["regions"] if isinstance(meta["regions"], int) else len(meta["regions"])
        if len(t.area) != count:
            raise ValueError(f"{TABLE} holds {len(t.area)} regions, meta says {count}")
        return t
    clip = int(meta["dt"]["clip"])
    return RegionTable.from_array(np.array(
        [[r["layer"], r["label_id"], r["area"], *r["bbox"], *r["dt_window"], *r["dt_span"],
          clip - 1] for r in meta["regions"]], np.int64))


def coding_of(meta: RecordMeta) -> distances.DistanceCoding:
    return distances.DistanceCoding(step=float(meta["dt"]["step"]), clip=int(meta["dt"]["clip"]))


def supported_expand(meta: RecordMeta) -> float:
    """The largest ``expand_ratio`` whose border band the record's maps hold exactly (in the
    image's pixels, before any resize): version 5's ``dt.expand``; older maps hold outside
    levels to the clip (``(clip - 1) * step`` pixels), whatever the region."""
    return float(meta["dt"].get("expand", math.inf))


def union_layer(meta: RecordMeta) -> int:
    """Index of the stored layer that is labelled wherever a region is (version 5, when the
    regions take several layers; it follows them), or -1."""
    return meta["layers"] if meta.get("union_layer") else -1


def _stored_layers(meta: RecordMeta) -> int:
    return meta["layers"] + (union_layer(meta) >= 0)


def decode_layers(members: dict[str, bytes], meta: RecordMeta) -> np.ndarray:
    """``(L*H, W)`` stacked label layers (see ``masks``)."""
    if RUNS not in members:  # versions 1 to 3
        return decode_array(members[REGIONS])
    h = meta["height"]
    return runs.decode_runs(decode_array(members[RUNS]), _stored_layers(meta) * h,
                            meta["width"])[:meta["layers"] * h]


def decode_regions(members: dict[str, bytes], meta: RecordMeta,
                   ids: list[int] | None = None) -> np.ndarray:
    """``(R, H, W) bool`` masks of all regions, or of ``ids``."""
    t = region_table(members, meta)
    slots = list(zip(t.layer.tolist(), t.label_id.tolist()))
    return masks.unpack_layers(decode_layers(members, meta), slots, meta["height"], ids)


def decode_layer_runs(members: dict[str, bytes], meta: RecordMeta, y0: int, y1: int,
                      read_layers: list[int] | None = None) -> runs.LayerRuns:
    """At least rows ``[y0, y1)`` of every label layer (and the union layer, see
    ``union_layer``) as runs: all rows from the runs of versions 4 and 5; from the bands of
    versions 2 and 3 only those that hold the rows (version 1: all).

    ``read_layers``: the stored layers the caller reads; the others may come back without
    runs (version 5 stores a frame per layer, ``runs_frames``: only those are decompressed)."""
    h, w, n_layers = meta["height"], meta["width"], meta["layers"]
    if RUNS in members and read_layers is not None and "runs_frames" in meta:
        return _some_layer_runs(members[RUNS], meta["runs_frames"], sorted(set(read_layers)),
                                _stored_layers(meta), h, w)
    if RUNS in members:
        found = decode_array(members[RUNS])
        return runs.LayerRuns(found, runs.row_starts(found, _stored_layers(meta) * h, w), 0, h,
                              w)
    y0, y1 = max(y0, 0), min(y1, h)
    if "layers_frames" not in meta:
        layers, y0, y1 = decode_array(members[REGIONS]).reshape(n_layers, h, w), 0, h
    else:
        data, frames = members[REGIONS], meta["layers_frames"]
        dtype, shape = decode_bands_header(data, frames)
        parts = []
        for j in range(n_layers):  # stacked (L * H, W): each layer's rows are a run of bands
            rows, first = decode_rows(data, frames, BAND_ROWS_V4, j * h + y0, j * h + y1, shape,
                                      dtype)
            parts.append(rows[j * h + y0 - first:j * h + y1 - first])
        layers = np.stack(parts)
    found = runs.encode_runs(layers.reshape(-1, w))
    return runs.LayerRuns(found, runs.row_starts(found, n_layers * (y1 - y0), w), y0, y1 - y0,
                          w)


def _some_layer_runs(data: bytes, frames: list[int], wanted: list[int], stored: int, h: int,
                     w: int) -> runs.LayerRuns:
    """``LayerRuns`` of all rows of the ``wanted`` layers of a member with a frame per layer;
    the rows of the other layers hold no run."""
    if len(frames) != stored + 1 or not all(0 <= i < stored for i in wanted):
        raise ValueError(f"runs_frames lists {len(frames) - 1} layers, the record stores "
                         f"{stored} (layers asked: {wanted})")
    return runs.some_layer_runs(decode_frames(data, frames, wanted), wanted, stored, h, w)


def decode_ignore(members: dict[str, bytes]) -> np.ndarray:
    """``(H, W) bool`` ignore mask."""
    return decode_array(members[IGNORE]).astype(bool, copy=False)


def decode_ignore_if_any(members: dict[str, bytes], meta: RecordMeta) -> np.ndarray | None:
    """``(H, W) bool`` ignore mask, or None when ``meta`` counts no ignored pixel (version 1
    records do not count them: decoded to find out)."""
    return decode_ignore(members) if meta.get("ignored", 1) > 0 else None


def dt_member(members: dict[str, bytes]) -> bytes:
    """The distance maps' member: ``dt.q2.zst``, or ``dt.npy.lz4`` / ``dt.npy.zst`` of
    versions 3-4 / 1-2 (bytes, or what slices to bytes: see ``stream.reader.LazyMember``)."""
    for name in (DT, DT_LZ4, DT_ZSTD):
        if name in members:
            return members[name]
    raise ValueError(f"record has no {DT} member")


def decode_dt_rows(members: dict[str, bytes], meta: RecordMeta, table: RegionTable, i: int,
                   y0: int, y1: int) -> tuple[np.ndarray, tuple[int, int]]:
    """At least image rows ``[y0, y1)`` of region ``i``'s stored map, decompressing only the
    bands that hold them (version 1: the whole window): ``((n, w) uint8 levels, (y, x) of its
    first pixel in the image)``; rows off the window are not there (they read as ``clip``)."""
    wy, wx, h, w = (int(v) for v in table.window[i])
    return decode_dt_box(members, meta, table, i, Box(y0, y1, wx, wx + w))


def decode_dt_box(members: dict[str, bytes], meta: RecordMeta, table: RegionTable, i: int,
                  box: Box) -> tuple[np.ndarray, tuple[int, int]]:
    """At least the image pixels of ``box`` that region ``i``'s stored map holds,
    decompressing only the bands under its rows (schema 5 decodes only the rows down to its
    last and its columns; older ones whole rows, version 1 the whole window): ``((n, m) uint8
    levels, (y, x) of its first pixel in the image)``; pixels off the window are not there
    (they read as ``clip``)."""
    wy, wx, h, w = (int(v) for v in table.window[i])
    offset, length = (int(v) for v in table.span[i])
    data = dt_member(members)[offset:offset + length]  # a reader's LazyMember reads it only
    if meta["schema"] >= 5:
        rows, (y, x) = distances.decode_box(
            data, (h, w), int(meta["dt"]["band_rows"]),
            Box(box.y0 - wy, box.y1 - wy, box.x0 - wx, box.x1 - wx), zstd_frames)
        return rows, (wy + y, wx + x)
    region = meta["regions"][i]
    if "dt_frames" not in region:
        return decode_array(data), (wy, wx)
    rows, first = decode_rows(data, region["dt_frames"], int(meta["dt"]["band_rows"]),
                              box.y0 - wy, box.y1 - wy, (h, w), np.dtype(np.uint8))
    return rows, (wy + first, wx)


def decode_dt_window(members: dict[str, bytes], meta: RecordMeta, table: RegionTable,
                     i: int) -> np.ndarray:
    """Region ``i``'s stored map over its ``dt_window``: ``(h, w) uint8`` quantised levels."""
    wy, _, h, _ = (int(v) for v in table.window[i])
    return decode_dt_rows(members, meta, table, i, wy, wy + h)[0]


def decode_dt(members: dict[str, bytes], meta: RecordMeta,
              ids: list[int] | None = None) -> np.ndarray:
    """``(R, H, W) uint8`` full-size quantised maps (multiply by ``meta["dt"]["step"]``)."""
    t = region_table(members, meta)
    ids = range(len(t.area)) if ids is None else ids
    shape = (meta["height"], meta["width"])
    clip = int(meta["dt"]["clip"])
    return np.stack([distances.unpack_region(decode_dt_window(members, meta, t, i),
                                             Box.from_yxhw(t.window[i]), shape, clip) for i in ids])


def jpeg_index(members: dict[str, bytes], meta: RecordMeta) -> bytes | None:
    """The JPEG's entry-point index (version 6's optional ``jpg.idx``), None without one."""
    return members.get(JPEG_INDEX) if meta["schema"] >= 6 else None


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

