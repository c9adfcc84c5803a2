"""Prepare throughput, one core: DAVIS, then dense COCO-style images (``--objects``).

    python benchmarks/bench_prepare.py [--objects 1,10,50,100,200] [--images 48]
                                       (IIS_DATA: folder holding DAVIS/)

DAVIS: images/s of the real ``prepare`` (workers=1), the per-image time of each step (read,
mask decode, regions, distance transforms, the JPEG entry index, encode, write), loading the
stored distance maps vs computing them exactly (scipy, and the numba EDT), and distance-map
and entry-index bytes vs JPEG bytes.

Dense (``--objects N,...``): real DAVIS JPEGs with N synthetic polygon objects each (areas
log-uniform between 0.01 % and 20 % of the image, ``_dense.py``, seeded), written as a COCO
JSON into a temporary folder and prepared with ``-f coco --workers 1``: per density images/s,
ms per region, distance bytes / JPEG bytes, record bytes (JPEG included) / JPEG bytes, and per
sample the stored-load vs exact-recompute ratio: the time to get what the click sampler reads
(one region's levels over its band window, ``expand_ratio`` = the records' largest) from the
record, against computing those distances exactly from the region's mask (the numba EDT the
sampler runs when it has no maps: inside over the region's box, outside over the window).
"""

from __future__ import annotations

import _single_core  # noqa: F401  (must come first)

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from _dense import write_dense_coco
from iis_pipe import sources
from iis_pipe.data_root import data_root
from iis_pipe.geometry.distance import sq_distance_to_zero, sq_to_distance
from iis_pipe.images import jpeg_entry_index, read_image_file
from iis_pipe.records import distances, schema
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.shards.tar import iter_records
from iis_pipe.pipelines.prepare import RecordParams, make_record, prepare

TARGET_IMAGES_PER_S = 40.0
# objects per image -> (images/s, distance bytes / JPEG, record bytes / JPEG) targets
DENSE_TARGETS = {10: (30.0, 0.5, 1.6), 100: (8.0, 2.0, 3.5)}


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def sample_ratio(out: Path, expand: float, per_record: int = 4, seed: int = 0
                 ) -> tuple[float, float, int]:
    """``(stored-load ms, exact-recompute ms, samples)`` per sample over the shards in ``out``
    (see the module doc)."""
    rng = np.random.default_rng(seed)
    load = exact = 0.0
    n = 0
    for shard in sorted(out.glob(schema.shard_glob())):
        for _, members in iter_records(shard):
            meta = schema.decode_meta(members, regions=False)
            table = schema.region_table(members, meta)
            shape = (meta["height"], meta["width"])
            picks = rng.choice(len(table.area), min(per_record, len(table.area)), replace=False)
            full = schema.decode_regions(members, meta, picks.tolist())
            for i, m in zip(picks.tolist(), full):
                x, y, w, h = table.bbox[i].tolist()
                r = math.ceil(expand * math.sqrt(int(table.area[i])))
                y0, y1 = max(y - r - 1, 0), min(y + h + r + 1, shape[0])
                x0, x1 = max(x - r - 1, 0), min(x + w + r + 1, shape[1])
                t0 = time.perf_counter()
                q, (oy, ox) = schema.decode_dt_rows(members, meta, table, i, y0, y1)
                np.ascontiguousarray(q[max(y0 - oy, 0):y1 - oy, max(x0 - ox, 0):x1 - ox])
                t1 = time.perf_counter()
                b0, b1 = max(y - 1, 0), min(y + h + 1, shape[0])
                c0, c1 = max(x - 1, 0), min(x + w + 1, shape[1])
                sq_to_distance(sq_distance_to_zero(m[b0:b1, c0:c1], pad_border=True))
                sq_to_distance(sq_distance_to_zero(~m[y0:y1, x0:x1]))
                t2 = time.perf_counter()
                load += t1 - t0
                exact += t2 - t1
                n += 1
    return 1000 * load / max(n, 1), 1000 * exact / max(n, 1), n


def davis(davis_dir: Path) -> None:
    items = [it for it in sources.get_format("davis").scan(davis_dir)
             if isinstance(it, sources.SourceItem)]
    params = RecordParams()
    make_record(items[0], "davis", params)  # warm caches and imports

    # 1. the real thing, end to end, one process
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "davis"
        res = prepare(davis_dir, out, format="davis", params=params, workers=1, progress=False)
        n, ips = res.processed, res.images_per_s

        # 2. split of the per-image time by step
        read_t, dt_t = [], []
        for it in items:
            t0 = time.perf_counter()
            read_image_file(it.files["image"])
            read_t.append(time.perf_counter() - t0)
        load_t, region_t, encode_t, index_t = [], [], [], []
        for it in items:
            data = read_image_file(it.files["image"])[0]
            t0 = time.perf_counter()
            jpeg_entry_index(data)
            index_t.append(time.perf_counter() - t0)
            r = make_record(it, "davis", params)
            load_t.append(r["timings"]["load"])
            region_t.append(r["timings"]["regions"])
            encode_t.append(r["timings"]["encode"])
            sample = sources.get_format("davis").load(it)
            masks, meta, _ = region_candidates(sample.instance_masks, sample.instance_meta)
            t0 = time.perf_counter()
            for bm, rm in zip(masks, meta):
                distances.encode_region(bm.mask, bm.box, params.coding, distances.reach(
                    rm["area"], params.dt_expand, params.coding), bm.box.origin, sample.size)
            dt_t.append(time.perf_counter() - t0)
        write_s = res.timings["write"] / max(n, 1)

        # 3. stored distances vs exact recomputation, 4. bytes
        load_dt, exact_scipy, exact_cv, n_regions = [], [], [], 0
        for shard in sorted(out.glob(schema.shard_glob())):
            for _, members in iter_records(shard):
                meta = schema.decode_meta(members)
                t0 = time.perf_counter()
                schema.decode_dt(members, meta)
                load_dt.append(time.perf_counter() - t0)
                regions = schema.decode_regions(members, meta)
                t0 = time.perf_counter()
                for m in regions:
                    ndimage.distance_transform_edt(np.pad(m, 1))
                    ndimage.distance_transform_edt(~m)
                exact_scipy.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for m in regions:
                    distances.exact_map(m)
                exact_cv.append(time.perf_counter() - t0)
                n_regions += len(regions)
        per_sample = sample_ratio(out, params.dt_expand)

    ms = lambda xs: 1000 * statistics.fmean(xs)  # noqa: E731
    read_ms, load_ms = ms(read_t), ms(load_t)
    dt_ratio = res.bytes["dt"] / res.bytes["image"]
    print(f"DAVIS {n} images, {n_regions} regions, one core")
    print(f"prepare end to end (workers=1): {ips:.1f} images/s  (target "
          f"{TARGET_IMAGES_PER_S:.0f}: {_verdict(ips >= TARGET_IMAGES_PER_S)}, "
          f"{ips / TARGET_IMAGES_PER_S:.2f}x)")
    print("per-image time by step (ms):")
    steps = {"read + check image": read_ms, "mask decode": load_ms - read_ms,
             "regions": ms(region_t), "distance transforms": ms(dt_t),
             "JPEG entry index": ms(index_t),
             "encode (runs, bands, meta)": ms(encode_t) - ms(dt_t) - ms(index_t),
             "write (tar)": 1000 * write_s}
    for name, v in steps.items():
        print(f"  {name:<27}{v:8.2f}")
    print(f"  {'sum':<27}{sum(v for v in steps.values() if v == v):8.2f}"
          f"   (end to end: {1000 / ips:.2f})")
    print(f"stored distances, whole maps per image: load {ms(load_dt):.2f} ms  vs exact scipy "
          f"{ms(exact_scipy):.2f} ms "
          f"({statistics.fmean(exact_scipy) / statistics.fmean(load_dt):.1f}x)"
          f"  vs exact numba EDT {ms(exact_cv):.2f} ms "
          f"({statistics.fmean(exact_cv) / statistics.fmean(load_dt):.1f}x)")
    print(f"per sample (one region, its band window): stored {per_sample[0]:.3f} ms vs exact "
          f"{per_sample[1]:.3f} ms ({per_sample[1] / per_sample[0]:.1f}x, {per_sample[2]} samples)")
    print(f"distance bytes {res.bytes['dt']:,} vs JPEG bytes {res.bytes['image']:,}: "
          f"{dt_ratio:.2f}x (target <= 1.0: {_verdict(dt_ratio <= 1.0)}); JPEG entry index "
          f"{res.bytes['jpeg_index']:,} bytes ({res.bytes['jpeg_index'] / res.bytes['image']:.3f}x)")


def dense(davis_dir: Path, objects: list[int], images: int) -> None:
    jpegs = sorted((davis_dir / "img").glob("*.jpg"))[:images]
    params = RecordParams()
    print(f"\ndense COCO-style records: {len(jpegs)} DAVIS JPEGs, polygon objects with areas "
          f"log-uniform 0.01-20 % of the image, -f coco --workers 1, dt_expand "
          f"{params.dt_expand}, one core")
    print(f"{'objects':>7} {'images/s':>9} {'ms/region':>9} {'dt/JPEG':>8} {'record/JPEG':>11} "
          f"{'stored ms':>9} {'exact ms':>9} {'exact/stored':>12}  targets")
    for n in objects:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "src"
            ann = write_dense_coco(jpegs, n, src)
            res = prepare(src, Path(tmp) / "out", format="coco", params=params, workers=1,
                          progress=False, source_options={"annotations": str(ann),
                                                          "images": str(davis_dir / "img")})
            load, exact, _ = sample_ratio(Path(tmp) / "out", params.dt_expand)
        b = res.bytes
        ips, dt, rec = res.images_per_s, b["dt"] / b["image"], b["total"] / b["image"]
        note = ""
        if n in DENSE_TARGETS:
            t_ips, t_dt, t_rec = DENSE_TARGETS[n]
            note = (f"images/s >= {t_ips:.0f} {_verdict(ips >= t_ips)}, dt <= {t_dt} "
                    f"{_verdict(dt <= t_dt)}, record <= {t_rec} {_verdict(rec <= t_rec)}")
        print(f"{n:>7} {ips:>9.1f} {1000 * res.seconds / res.regions:>9.2f} {dt:>8.2f} "
              f"{rec:>11.2f} {load:>9.3f} {exact:>9.3f} {exact / load:>11.1f}x  {note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", default="",
                    help="comma-separated objects per image for the dense runs, e.g. "
                         "1,10,50,100,200 (default: DAVIS only)")
    ap.add_argument("--images", type=int, default=48, help="DAVIS JPEGs per dense run")
    ap.add_argument("--skip-davis", action="store_true", help="only the dense runs")
    args = ap.parse_args()
    try:
        objects = [int(v) for v in args.objects.split(",") if v.strip()]
    except ValueError:
        ap.error(f"--objects must be comma-separated integers, got {args.objects!r}")
    davis_dir = data_root() / "DAVIS"
    if not davis_dir.is_dir():
        print(f"DAVIS not found at {davis_dir}; set IIS_DATA", file=sys.stderr)
        return 2
    if not args.skip_davis:
        davis(davis_dir)
    if objects:
        dense(davis_dir, objects, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
