"""The dataset's parquet index (one row per region), rejects table and manifest."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from iis_pipe.atomic import atomic_path, atomic_write
from iis_pipe.errors import FormatError, IncompleteDataset
from iis_pipe.records.schema import RecordMeta, shard_glob

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
    return _read_table(Path(root) / INDEX_FILE, INDEX_SCHEMA, root)


def _read_table(path: Path, schema: pa.Schema, root: str | Path) -> pa.Table:
    """A parquet table with ``schema``'s columns; ``FormatError`` naming the file otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {path.name}; is {root} a prepared dataset?")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise FormatError(str(path), f"not a readable parquet table ({e})") from None
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise FormatError(str(path), f"lacks the columns {missing}")
    return table


def read_rejects(root: str | Path) -> pa.Table:
    path = Path(root) / REJECTS_FILE
    if not path.is_file():
        return REJECTS_SCHEMA.empty_table()
    return _read_table(path, REJECTS_SCHEMA, root)


def write_json(obj: Any, path: Path) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path) -> Any:
    """A JSON file; ``FormatError`` naming it when it is not JSON."""
    try:
        return json.loads(Path(path).read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(str(path), f"not valid JSON ({e})") from None


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {root} a prepared dataset?")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), list) or \
            not all(isinstance(s, dict) and {"shard", "records"} <= set(s)
                    for s in manifest["shards"]):
        raise FormatError(str(path), "not a prepare manifest (no list of shards with their "
                                     "record counts)")
    return manifest


class ShardList(NamedTuple):
    """A prepared folder's shards against its manifest (file names)."""

    shards: list[str]   # listed by the manifest, in its order
    missing: list[str]  # listed but not in the folder
    extra: list[str]    # shard files in the folder that the manifest does not list


def shard_list(root: str | Path) -> ShardList:
    """The manifest's shards of the prepared folder ``root`` and what differs on disk."""
    root = Path(root)
    listed = [s["shard"] for s in read_manifest(root)["shards"]]
    present = {p.name for p in root.glob(shard_glob())}
    return ShardList(listed, [s for s in listed if s not in present],
                     sorted(present - set(listed)))


def manifest_shards(root: str | Path) -> list[Path]:
    """Paths of the shards a prepared folder's manifest lists, the one list every consumer
    reads (stream, evaluate, show, verify); ``IncompleteDataset`` when one is missing. Shard
    files the manifest does not list are left out, with a warning: they are no part of the
    dataset (``verify`` reports them as faults)."""
    root = Path(root)
    found = shard_list(root)
    if found.missing:
        raise IncompleteDataset(str(root), found.missing)
    if found.extra:
        warnings.warn(f"{root}: ignoring {len(found.extra)} shard file(s) the manifest does not "
                      f"list: {', '.join(found.extra[:5])}", stacklevel=2)
    return [root / s for s in found.shards]
