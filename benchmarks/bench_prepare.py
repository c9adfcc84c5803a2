"""Prepare throughput on DAVIS, one core, with the time split by step.

    python benchmarks/bench_prepare.py          (IIS_DATA: folder holding DAVIS/)

Prints images/s of the real ``prepare`` (workers=1), the per-image time of each step (read,
mask decode, regions, distance transforms, encode, write), loading a stored distance map vs
computing it exactly (scipy, and OpenCV), and distance-map bytes vs JPEG bytes.
"""

from __future__ import annotations

import _single_core  # noqa: F401  (must come first)

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from iis_pipe import sources
from iis_pipe.data_root import data_root
from iis_pipe.geometry.box import Box
from iis_pipe.images import read_image_file
from iis_pipe.records import distances, schema
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.shards.tar import iter_records
from iis_pipe.pipelines.prepare import RecordParams, make_record, prepare

TARGET_IMAGES_PER_S = 40.0


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    davis = data_root() / "DAVIS"
    if not davis.is_dir():
        print(f"DAVIS not found at {davis}; set IIS_DATA", file=sys.stderr)
        return 2
    items = [it for it in sources.get_format("davis").scan(davis)
             if isinstance(it, sources.SourceItem)]
    params = RecordParams()
    make_record(items[0], "davis", params)  # warm caches and imports

    # 1. the real thing, end to end, one process
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "davis"
        res = prepare(davis, out, format="davis", params=params, workers=1, progress=False)
        n, ips = res.processed, res.images_per_s

        # 2. split of the per-image time by step
        read_t, dt_t = [], []
        for it in items:
            t0 = time.perf_counter()
            read_image_file(it.files["image"])
            read_t.append(time.perf_counter() - t0)
        load_t, region_t, encode_t = [], [], []
        for it in items:
            r = make_record(it, "davis", params)
            load_t.append(r["timings"]["load"])
            region_t.append(r["timings"]["regions"])
            encode_t.append(r["timings"]["encode"])
            sample = sources.get_format("davis").load(it)
            masks, meta, _ = region_candidates(sample.instances, sample.instance_meta)
            t0 = time.perf_counter()
            for m, rm in zip(masks, meta):
                distances.encode_region(m, Box.from_xywh(rm["bbox"]), params.coding)
            dt_t.append(time.perf_counter() - t0)
        write_s = res.timings["write"] / max(n, 1)

        # 3. stored distances vs exact recomputation, 4. bytes
        load_dt, exact_scipy, exact_cv, dt_bytes, jpg_bytes, n_regions = [], [], [], 0, 0, 0
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
                dt_bytes += len(members[schema.DT])
                jpg_bytes += len(members[schema.JPG])
                n_regions += len(regions)

    ms = lambda xs: 1000 * statistics.fmean(xs)  # noqa: E731
    read_ms, load_ms = ms(read_t), ms(load_t)
    print(f"DAVIS {n} images, {n_regions} regions, one core")
    print(f"prepare end to end (workers=1): {ips:.1f} images/s  "
          f"(target {TARGET_IMAGES_PER_S:.0f}: {'met' if ips >= TARGET_IMAGES_PER_S else 'MISSED'},"
          f" {ips / TARGET_IMAGES_PER_S:.2f}x)")
    print("per-image time by step (ms):")
    steps = {"read + check image": read_ms, "mask decode": load_ms - read_ms,
             "regions": ms(region_t), "distance transforms": ms(dt_t),
             "encode (zstd, lz4, meta)": ms(encode_t) - ms(dt_t), "write (tar)": 1000 * write_s}
    for name, v in steps.items():
        print(f"  {name:<22}{v:8.2f}")
    print(f"  {'sum':<22}{sum(v for v in steps.values() if v == v):8.2f}"
          f"   (end to end: {1000 / ips:.2f})")
    print(f"stored distances, per image: load {ms(load_dt):.2f} ms  vs exact scipy "
          f"{ms(exact_scipy):.2f} ms ({statistics.fmean(exact_scipy) / statistics.fmean(load_dt):.1f}x)"
          f"  vs exact numba EDT {ms(exact_cv):.2f} ms "
          f"({statistics.fmean(exact_cv) / statistics.fmean(load_dt):.1f}x)")
    print(f"distance bytes {dt_bytes:,} vs JPEG bytes {jpg_bytes:,}: {dt_bytes / jpg_bytes:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
