"""The dataset's parquet index (one row per region), rejects table and manifest."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from iis_pipe.atomic import atomic_path, atomic_write
from iis_pipe.errors import FormatError, IncompleteDataset
from iis_pipe.records.schema import RecordMeta, shard_glob
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


def read_index(root: str | Path | Store) -> pa.Table:
    """``root``: a dataset folder, local or a URL (``iis_pipe.storage``)."""
    return _read_table(store(root), INDEX_FILE, INDEX_SCHEMA)


def _read_table(root: Store, name: str, schema: pa.Schema) -> pa.Table:
    """A parquet table with ``schema``'s columns; ``FormatError`` naming the file otherwise."""
    path = root.name(name)
    if not root.exists(name):
        raise FileNotFoundError(f"{path}: no {name}; is {root.url} a prepared dataset?")
    try:
        table = pq.read_table(root.local / name if root.local is not None
                              else pa.BufferReader(root.read_bytes(name)))
    except (pa.ArrowException, OSError) as e:
        raise FormatError(path, f"not a readable parquet table ({e})") from None
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise FormatError(path, f"lacks the columns {missing}")
    return table


def read_rejects(root: str | Path | Store) -> pa.Table:
    where = store(root)
    if not where.exists(REJECTS_FILE):
        return REJECTS_SCHEMA.empty_table()
    return _read_table(where, REJECTS_FILE, REJECTS_SCHEMA)


def json_bytes(obj: Any) -> bytes:
    """How the project writes JSON files: indented, keys sorted, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json(obj: Any, path: Path) -> None:
    atomic_write(path, json_bytes(obj))


def read_json(path: str | Path, data: bytes | None = None) -> Any:
    """A JSON file (``data``: its bytes, read already; ``path`` then names it);
    ``FormatError`` naming it when it is not JSON."""
    try:
        return json.loads(Path(path).read_bytes() if data is None else data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(str(path), f"not valid JSON ({e})") from None


def read_manifest(root: str | Path | Store) -> dict[str, Any]:
    where = store(root)
    path = where.name(MANIFEST_FILE)
    if not where.exists(MANIFEST_FILE):
        raise FileNotFoundError(f"{path}: no manifest; is {where.url} a prepared dataset?")
    manifest = read_json(path, where.read_bytes(MANIFEST_FILE))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list) or \
            not all(isinstance(s, dict) and {"shard", "records"} <= set(s)
                    for s in manifest["shards"]):
        raise FormatError(path, "not a prepare manifest (no list of shards with their "
                                "record counts)")
    return manifest


class ShardList(NamedTuple):
    """A prepared folder's shards against its manifest (file names)."""

    shards: list[str]   # listed by the manifest, in its order
    missing: list[str]  # listed but not in the folder
    extra: list[str]    # shard files in the folder that the manifest does not list


def shard_list(root: str | Path | Store) -> ShardList:
    """The manifest's shards of the prepared folder ``root`` (local or a URL) and what differs
    in the folder."""
    where = store(root)
    listed = [s["shard"] for s in read_manifest(where)["shards"]]
    present = set(where.list(shard_glob()))
    return ShardList(listed, [s for s in listed if s not in present],
                     sorted(present - set(listed)))


def manifest_shards(root: str | Path | Store) -> list[str]:
    """Paths (or URLs) of the shards a prepared folder's manifest lists, the one list every
    consumer reads (stream, evaluate, show, verify); ``IncompleteDataset`` when one is missing.
    Shard files the manifest does not list are left out, with a warning: they are no part of
    the dataset (``verify`` reports them as faults)."""
    where = store(root)
    found = shard_list(where)
    if found.missing:
        raise IncompleteDataset(where.url, found.missing)
    if found.extra:
        warnings.warn(f"{where.url}: ignoring {len(found.extra)} shard file(s) the manifest does "
                      f"not list: {', '.join(found.extra[:5])}", stacklevel=2)
    return [where.name(s) for s in found.shards]
