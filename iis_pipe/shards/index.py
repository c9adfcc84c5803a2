"""The dataset's parquet index (one row per region), rejects table and manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iis_pipe.atomic import atomic_path, atomic_write
from iis_pipe.records.schema import RecordMeta

INDEX_FILE, REJECTS_FILE, MANIFEST_FILE = "index.parquet", "rejects.parquet", "manifest.json"

INDEX_SCHEMA = pa.schema([
    ("key", pa.string()), ("shard", pa.string()), ("region", pa.int32()),
    ("instance", pa.int32()), ("component", pa.int32()), ("label", pa.string()),
    ("area", pa.int64()), ("bbox_x", pa.int32()), ("bbox_y", pa.int32()),
    ("bbox_w", pa.int32()), ("bbox_h", pa.int32()), ("height", pa.int32()),
    ("width", pa.int32()), ("source", pa.string()), ("split", pa.string()),
    ("checksum", pa.string()),
])
REJECTS_SCHEMA = pa.schema([("key", pa.string()), ("file", pa.string()), ("reason", pa.string()),
                            ("input", pa.string())])


def region_rows(meta: RecordMeta, shard: str, checksum: str) -> list[dict[str, Any]]:
    """Index rows of one record (from its ``meta.json`` dict)."""
    rows = []
    for r in meta["regions"]:
        x, y, w, h = r["bbox"]
        rows.append({
            "key": meta["key"], "shard": shard, "region": r["id"], "instance": r["instance"],
            "component": r["component"], "label": None if r.get("label") is None else str(r["label"]),
            "area": r["area"], "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
            "height": meta["height"], "width": meta["width"], "source": meta["source"],
            "split": meta["split"], "checksum": checksum,
        })
    return rows


def write_table(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    """Write rows atomically (see ``atomic``)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_index(root: str | Path) -> pa.Table:
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no index; is {root} a prepared dataset?")
    return pq.read_table(path)


def read_rejects(root: str | Path) -> pa.Table:
    path = Path(root) / REJECTS_FILE
    return pq.read_table(path) if path.is_file() else REJECTS_SCHEMA.empty_table()


def write_json(obj: Any, path: Path) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {root} a prepared dataset?")
    return json.loads(path.read_text())
