"""The dataset's parquet index (one row per region), rejects table and manifest."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iis_pipe.atomic import atomic_path, atomic_write
from iis_pipe.records.schema import RecordMeta
from iis_pipe.storage import Store, store

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


def table_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    """The parquet file of ``rows``, as ``write_table`` writes it."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def _read_table(root: str | Path | Store, name: str) -> pa.Table:
    where = store(root)
    if where.local is not None:
        return pq.read_table(where.local / name)
    return pq.read_table(pa.BufferReader(where.read_bytes(name)))


def read_index(root: str | Path | Store) -> pa.Table:
    """``root``: a dataset folder, local or a URL (``iis_pipe.storage``)."""
    where = store(root)
    if not where.exists(INDEX_FILE):
        raise FileNotFoundError(f"{where.name(INDEX_FILE)}: no index; is {where.url} a "
                                "prepared dataset?")
    return _read_table(where, INDEX_FILE)


def read_rejects(root: str | Path | Store) -> pa.Table:
    where = store(root)
    return (_read_table(where, REJECTS_FILE) if where.exists(REJECTS_FILE)
            else REJECTS_SCHEMA.empty_table())


def json_bytes(obj: Any) -> bytes:
    """How the project writes JSON files: indented, keys sorted, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json(obj: Any, path: Path) -> None:
    atomic_write(path, json_bytes(obj))


def read_manifest(root: str | Path | Store) -> dict[str, Any]:
    where = store(root)
    if not where.exists(MANIFEST_FILE):
        raise FileNotFoundError(f"{where.name(MANIFEST_FILE)}: no manifest; is {where.url} a "
                                "prepared dataset?")
    return json.loads(where.read_bytes(MANIFEST_FILE))
