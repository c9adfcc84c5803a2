"""``inspect``: what a prepared dataset holds (counts, sizes, areas, per source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from iis_pipe.shards import index as idx
from iis_pipe.storage import Store, store

AREA_BINS = [0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, np.inf]


def inspect(root: str | Path | Store) -> dict[str, Any]:
    """Summary of a prepared dataset (a folder, local or a URL) as plain data (printed by the
    CLI)."""
    root = store(root)
    manifest = idx.read_manifest(root)
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
        "shards": len(manifest["shards"]), "records": len(set(keys)), "regions": table.num_rows,
        "image_sizes": {"distinct": len(sizes), "min": list(min(sizes)) if sizes else None,
                        "max": list(max(sizes)) if sizes else None},
        "area_histogram": [{"from": int(lo), "to": None if hi == np.inf else int(hi),
                            "regions": int(n)} for lo, hi, n in
                           zip(AREA_BINS[:-1], AREA_BINS[1:], hist)],
        "per_source": per_source,
        "rejects": rejects.to_pylist(),
    }
