"""One training sample from one record: decode, choose the target, crop around it, clicks.

Randomness comes from one ``np.random.Generator`` per sample, seeded by the sample's global
position, so a sample is the same whichever worker or rank makes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iis_pipe.clicking.encode import encode_clicks
from iis_pipe.clicking.samplers import SamplerConfig, sample_clicks
from iis_pipe.errors import IISError
from iis_pipe.geometry.box import Box
from iis_pipe.images import decode_image, decode_jpeg_window
from iis_pipe.records import schema
from iis_pipe.regions.select import choose_regions
from iis_pipe.stream import augment as aug
from iis_pipe.stream import nearest


@dataclass(frozen=True)
class TargetConfig:
    """Which region becomes the target and how the crop finds it."""

    min_object_area: int = 0       # smaller regions (after resize / after crop) are not targets
    merge_prob: float = 0.0        # RITM: 0.15
    max_merged: int = 2
    background_prob: float = 0.0   # an empty target on purpose (RITM emits a few percent)
    crop_tries: int = 10
    pad_ignore: bool = True        # padding around a small image is ignore (RITM: background)


@dataclass(frozen=True)
class MapsConfig:
    """Click maps computed in the loader (``mode=None``: leave it to the model)."""

    mode: str | None = None        # "disk" | "dist" | "gauss"
    radius: float = 5.0
    norm_radius: float = 260.0


@dataclass(frozen=True)
class SampleConfig:
    augment: aug.AugmentConfig = field(default_factory=aug.AugmentConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    maps: MapsConfig = field(default_factory=MapsConfig)
    reduced_decode: bool = True    # DCT-domain downscaling when the resize halves the image
    fast_decode: bool = True       # libjpeg-turbo's fast IDCT and chroma upsampling: ~10%
                                   # faster, differences far below what the resize blurs


class Timer:
    """Adds wall time per stage into ``totals`` (for ``iis-pipe profile loader``)."""

    def __init__(self, totals: dict[str, float] | None):
        self.totals = totals
        self.t = time.perf_counter()

    def lap(self, stage: str) -> None:
        if self.totals is not None:
            now = time.perf_counter()
            self.totals[stage] = self.totals.get(stage, 0.0) + now - self.t
            self.t = now


def _reduction(shape: tuple[int, int], scaled: tuple[int, int], enabled: bool) -> int:
    """DCT-domain reduction 1, 2, 4 or 8 when the resize goes at least that small (the
    intermediate M/8 scales are not faster than a full decode with libjpeg-turbo)."""
    f = 1
    while enabled and f < 8 and scaled[0] * f * 2 <= shape[0] and scaled[1] * f * 2 <= shape[1]:
        f *= 2
    return f


def _place_crop(shape, scaled, flip, box: Box, crop, rng: np.random.Generator) -> tuple[int, int]:
    """Crop origin in the padded scaled image that holds ``box`` (original pixels) whole when it
    fits, and overlaps it otherwise."""
    sy, sx = scaled[0] / shape[0], scaled[1] / shape[1]
    pad = aug.padding(scaled, crop)
    ys = (box.y0 * sy + pad[0], box.y1 * sy + pad[0])
    xs = (box.x0 * sx, box.x1 * sx)
    if flip:
        xs = (scaled[1] - xs[1], scaled[1] - xs[0])
    xs = (xs[0] + pad[1], xs[1] + pad[1])
    top = aug.origin_range(scaled, crop)

    def pick(span, size, top):
        lo_edge, hi_edge = int(np.floor(span[0])), int(np.ceil(span[1]))
        if hi_edge - lo_edge <= size:   # fits: keep it whole
            lo, hi = hi_edge - size, lo_edge
        else:                           # too big: overlap it
            lo, hi = lo_edge, hi_edge - size
        lo, hi = sorted((max(0, min(lo, top)), max(0, min(hi, top))))
        return int(rng.integers(lo, hi + 1))

    return pick(ys, crop[0], top[0]), pick(xs, crop[1], top[1])


def _choose(areas: np.ndarray, tcfg: TargetConfig, rng: np.random.Generator) -> list[int]:
    """Target region ids: none for a background sample, else RITM's single-or-merged rule among
    regions large enough (after the resize), falling back to the largest region."""
    if tcfg.background_prob > 0 and rng.random() < tcfg.background_prob:
        return []
    chosen = choose_regions(rng, areas, tcfg.merge_prob, tcfg.max_merged, tcfg.min_object_area)
    return chosen or [int(np.argmax(areas))]


def _fit_crop(layer_runs, table: schema.RegionTable, chosen: list[int], shape, scaled, flip,
              cfg: SampleConfig, reduce: int, n_layers: int, union: int,
              rng: np.random.Generator):
    """Place the crop (up to ``crop_tries`` times, until the target shows ``min_object_area``
    pixels; else the best try): ``(plan, target masks (M, Hc, Wc) bool, their union (Hc, Wc)
    bool, the other objects (Hc, Wc) bool)``. ``layer_runs(y0, y1)``: the label layers'
    ``LayerRuns`` holding rows [y0, y1)."""
    crop = cfg.augment.crop_size
    slots = table.slots(chosen)
    if chosen:
        box = Box.union(Box.from_xywh(xywh) for xywh in table.bbox[chosen].tolist())
    best = None
    found = None
    for _ in range(max(cfg.target.crop_tries, 1)):
        if chosen:
            origin = _place_crop(shape, scaled, flip, box, crop, rng)
        else:
            ymax, xmax = aug.origin_range(scaled, crop)
            origin = (int(rng.integers(ymax + 1)), int(rng.integers(xmax + 1)))
        p = aug.plan(shape, scaled, flip, crop, origin, align=reduce)
        y0, y1 = p.window[:2]
        if found is None or not found.holds(y0, y1, shape[0]):
            found = layer_runs(y0, y1)  # version 4: all rows; older: those under the window
        masks, target, other, visible = nearest.warp_labels(
            found, n_layers, p, slots, union, (box.y0, box.y1) if chosen else None)
        if best is None or visible > best[0]:
            best = (visible, p, masks, target, other)
        if not chosen or visible >= max(cfg.target.min_object_area, 1):
            break
    return best[1:]


def _levels(members: dict[str, bytes], meta: schema.RecordMeta, table: schema.RegionTable,
            chosen: list[int], p: aug.Plan, box: Box) -> tuple[np.ndarray, np.float32, int]:
    """The targets' stored distance maps over ``box``, a ``Box`` of the crop (where the click
    sampler reads them; only the stored bands under it are decompressed, and only the pixels
    that the resampling reads decoded),
    resampled with the nearest rule as the masks are, so each region's inside levels lie on its
    crop mask: ``((M, h, w) uint8 levels, crop pixels per level, reach)``: outside levels are
    exact up to the smallest reach of the targets (pixels off a stored window read as
    ``clip``, farther than any reach)."""
    coding = schema.coding_of(meta)
    y0, y1, x0, x1 = box
    levels = np.empty((len(chosen), y1 - y0, x1 - x0), np.uint8)
    src = nearest.source_box(p, box)
    for n, i in enumerate(chosen):
        q, origin = schema.decode_dt_box(members, meta, table, i, src)
        nearest.resample_box(q, origin, p, box, coding.clip, levels[n])
    return (levels, np.float32(coding.step * np.sqrt(p.scale[0] * p.scale[1])),
            int(table.reach[chosen].min()))


# members that make_sample reads in part (the distance maps: its targets' spans) or not at all
# (the regions' metadata): a local reader may hand them over unread (stream.reader.LazyMember)
PARTLY_READ = (schema.DT, schema.DT_LZ4, schema.DT_ZSTD, schema.REGION_META)


class ExpandBeyondRecords(IISError, ValueError):
    """The stream's ``expand_ratio`` is larger than the records' maps serve: a setting to
    change (or shards to prepare again), not a bad record to skip."""


def check_expand(meta: dict, cfg: SamplerConfig, where: str) -> None:
    """Refuse a border band wider than the record's stored distances hold (``where``: the
    shard or manifest to name)."""
    supported = schema.supported_expand(meta)
    if cfg.expand_ratio > supported:
        raise ExpandBeyondRecords(
            f"{where}: expand_ratio {cfg.expand_ratio} is larger than the {supported} the "
            f"records' distance maps were prepared for; stream with expand_ratio <= "
            f"{supported} or prepare again with --dt-expand {cfg.expand_ratio}")


def make_sample(members: dict[str, bytes], cfg: SampleConfig, rng: np.random.Generator,
                times: dict[str, float] | None = None,
                out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """A training sample: ``image (Hc, Wc, 3) uint8``, ``target (Hc, Wc) int8`` (1 target,
    0 background, -1 ignore; collate makes it float), ``clicks (2N, 3) int32``, optional
    ``maps (2, Hc, Wc) float32``, ``transform (2, 3) float32`` (original pixel ``(x, y, 1)``
    -> crop pixel), ``key`` and ``regions`` (the chosen region ids).

    ``members``: the record's suffix -> bytes; those in ``PARTLY_READ`` may be unread
    ``stream.reader.LazyMember``s. ``out``: ``image`` and ``target`` arrays of those shapes
    and dtypes (a batch's slots) to write into instead of new ones: the batch then needs no
    copy."""
    out = out or {}
    timer = Timer(times)
    meta = schema.decode_meta(members, regions=False)
    check_expand(meta, cfg.sampler, f"record {meta['key']}")
    table = schema.region_table(members, meta)
    shape = (meta["height"], meta["width"])
    crop = cfg.augment.crop_size
    scaled, flip = aug.draw_scale_flip(shape, cfg.augment, rng)
    growth = scaled[0] * scaled[1] / (shape[0] * shape[1])
    chosen = _choose(table.area * growth, cfg.target, rng)
    timer.lap("region")

    ignore_full = schema.decode_ignore_if_any(members, meta)
    image_ext = schema.image_member(members)
    image_bytes = members[image_ext] if image_ext == schema.JPG else None
    reduce = _reduction(shape, scaled, cfg.reduced_decode and image_bytes is not None)
    timer.lap("masks")
    union = schema.union_layer(meta)
    # with a union layer only it and the targets' layers are read (warp_labels)
    read = None if union < 0 else [*table.layer[chosen].tolist(), union]
    p, masks, target_mask, other = _fit_crop(
        lambda y0, y1: schema.decode_layer_runs(members, meta, y0, y1, read), table, chosen,
        shape, scaled, flip, cfg, reduce, meta["layers"], union, rng)
    timer.lap("fit")

    if image_bytes is not None:  # only the plan's window, at DCT scale 1/reduce
        img, origin = decode_jpeg_window(image_bytes, p.window, reduce, cfg.fast_decode,
                                         schema.jpeg_index(members, meta))
    else:
        img, origin = decode_image(members[image_ext], image_ext), (0, 0)
    timer.lap("decode")
    block = aug.apply(img, p, linear=True, reduce=reduce, offset=origin)
    timer.lap("resize")
    image = aug.photometric(block, cfg.augment, rng, out=out.get("image"))
    timer.lap("photometric")
    pad_ignore = cfg.target.pad_ignore
    if ignore_full is not None and ignore_full.any():
        ignore = nearest.resample_box(ignore_full.view(np.uint8), (0, 0), p,
                                      Box.of_shape(crop), int(pad_ignore),
                                      np.empty(crop, np.uint8)).view(bool)
    elif pad_ignore and p.size != p.crop:  # only padding can be ignored
        ignore = aug.padding_mask(p)
    else:  # None, not all False: the click sampler then tests no pixel for it
        ignore = None
    timer.lap("masks")
    if chosen:
        def levels(box):  # the sampler asks for the stored maps where it reads them
            timer.lap("clicks")
            found = _levels(members, meta, table, chosen, p, box)
            timer.lap("distances")
            return found

        clicks = sample_clicks(masks, cfg.sampler, rng, other=other, ignore=ignore,
                               levels=levels)
    else:
        clicks = np.full((2 * cfg.sampler.max_num_points, 3), -1, np.int32)
    timer.lap("clicks")

    target = out.get("target")
    if ignore is None and target is None:
        target = target_mask.view(np.int8)
    elif ignore is None:
        np.copyto(target, target_mask.view(np.int8))
    else:
        target = np.subtract((target_mask & ~ignore).view(np.int8), ignore.view(np.int8),
                             out=target)
    timer.lap("masks")
    sample = {"key": meta["key"], "image": image, "target": target, "clicks": clicks,
              "regions": chosen, "transform": p.matrix().astype(np.float32)}
    if cfg.maps.mode is not None:
        sample["maps"] = encode_clicks(clicks, crop, mode=cfg.maps.mode,
                                       radius=cfg.maps.radius, norm_radius=cfg.maps.norm_radius)
        timer.lap("encode")
    return sample
