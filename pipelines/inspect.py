"""``inspect``: what a prepared dataset holds (counts, sizes, areas, per source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from iis_pipe.shards import index as idx
from iis_pipe.storage import Store, store

AREA_BINS = [0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, np.inf]
OBJECT_BINS = [1, 2, 3, 6, 11, 21, 51, 101, 201, np.inf]  # objects per image: 1, 2, 3-5, ... 201+


def inspect(root: str | Path | Store) -> dict[str, Any]:
    """Summary of a prepared dataset (a folder, local or a URL) as plain data (printed by the
    CLI); ``missing_shards`` / ``extra_shards``: shard files the manifest lists but the folder
    lacks, and the reverse."""
    root = store(root)
    manifest = idx.read_manifest(root)
    shards = idx.shard_list(root)
    table = idx.read_index(root)
    rejects = idx.read_rejects(root)
    area = table.column("area").to_numpy()
    hist, _ = np.histogram(area, bins=AREA_BINS)
    keys = table.column("key").to_numpy(zero_copy_only=False)
    per_source = []
    for source in sorted(set(table.column("source").to_pylist())):
        sub = table.filter(pc.equal(table.column("source"), source))
        n_rec = len(set(sub.column("key").to_pylist()))
        a = sub.column("area").to_numpy()
        per_source.append({"source": source, "records": n_rec, "regions": sub.num_rows,
                           "regions_per_record": sub.num_rows / max(n_rec, 1),
                           "median_area": float(np.median(a)) if len(a) else 0.0})
    sizes = sorted({(h, w) for h, w in zip(table.column("height").to_pylist(),
                                            table.column("width").to_pylist())})
    return {
        "root": root.url, "format": manifest["format"], "schema": manifest["schema"],
        "counts": manifest["counts"], "bytes": manifest["bytes"],
        "shards": len(manifest["shards"]), "missing_shards": shards.missing,
        "extra_shards": shards.extra, "records": len(set(keys)), "regions": table.num_rows,
        "image_sizes": {"distinct": len(sizes), "min": list(min(sizes)) if sizes else None,
                        "max": list(max(sizes)) if sizes else None},
        "area_histogram": [{"from": int(lo), "to": None if hi == np.inf else int(hi),
                            "regions": int(n)} for lo, hi, n in
                           zip(AREA_BINS[:-1], AREA_BINS[1:], hist)],
        "objects_per_image": objects_per_image(table),
        "per_source": per_source,
        "rejects": rejects.to_pylist(),
    }


def objects_per_image(table) -> dict[str, Any]:
    """Objects (source instances with at least one region; regions too unless
    ``--split-components``) per record: mean, median, max and a histogram over ``OBJECT_BINS``."""
    pairs = table.group_by(["key", "instance"]).aggregate([]).group_by("key").aggregate([("instance", "count")])
    counts = pairs.column("instance_count").to_numpy() if pairs.num_rows else np.zeros(0, np.int64)
    hist, _ = np.histogram(counts, bins=OBJECT_BINS)
    return {"mean": float(counts.mean()) if counts.size else 0.0,
            "median": float(np.median(counts)) if counts.size else 0.0,
            "max": int(counts.max()) if counts.size else 0,
            "histogram": [{"from": int(lo), "to": None if hi == np.inf else int(hi) - 1, "records": int(n)}
                          for lo, hi, n in zip(OBJECT_BINS[:-1], OBJECT_BINS[1:], hist)]}
