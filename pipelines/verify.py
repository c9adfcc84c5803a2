"""``verify``: every shard readable, every record whole and decodable, every index column equal
to what the records say, every file of the folder one the manifest accounts for."""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from iis_pipe import images, outdir
from iis_pipe.errors import BadInput
from iis_pipe.records import schema
from iis_pipe.shards import index as idx
from iis_pipe.shards.tar import iter_shard
from iis_pipe.shards.writer import PARTS_DIR, RUN_FILE
from iis_pipe.storage import Store, store


@dataclass
class VerifyReport:
    records: int = 0
    regions: int = 0
    faults: list[tuple[str, str, str]] = field(default_factory=list)  # (shard, key, reason)

    @property
    def ok(self) -> bool:
        return not self.faults


def check_record(key: str, members: dict[str, bytes], expected: list[dict]) -> list[str]:
    """Faults of one record against its index rows (empty list: sound): its members, checksum,
    decoding, region areas and every other index column (``shards.index.region_rows`` of its
    meta, the rows prepare wrote)."""
    missing = schema.missing_members(members)
    if missing or schema.find_image_member(members) is None:
        return [f"missing members: {missing or 'image'}"]
    if not expected:
        return ["record is not in the index"]
    faults = []
    if schema.checksum(members) != expected[0]["checksum"]:
        faults.append("checksum differs from the index")
    try:
        rec = schema.decode_record(members)
    except Exception as e:  # any decoding failure is a fault to report, not a crash
        return faults + [f"does not decode ({type(e).__name__}: {e})"]
    if rec.key != key:
        faults.append(f"meta key {rec.key!r} differs from member key")
    indexed = sorted(expected, key=lambda r: r["region"])
    areas = [int(m.sum()) for m in rec.regions]
    want = [r["area"] for r in indexed]
    if areas != want:
        faults.append(f"region areas {areas} differ from the index {want}")
    if rec.dt.shape != rec.regions.shape:
        faults.append(f"distance maps {rec.dt.shape} do not match regions {rec.regions.shape}")
    stored = schema.jpeg_index(members, rec.meta)
    # the stream falls back quietly on an index that does not fit: only verify can tell
    if stored is not None and images.jpeg_entry_index(members[schema.JPG]) != bytes(stored):
        faults.append(f"JPEG entry index ({schema.JPEG_INDEX}) is not its JPEG's")
    faults.extend(_column_faults(idx.region_rows(rec.meta, expected[0]["shard"],
                                                 expected[0]["checksum"]), indexed))
    return faults


def _column_faults(rows: list[dict], indexed: list[dict]) -> list[str]:
    """Index columns that differ from the rows the record's meta gives (area is checked
    against the masks above, shard and checksum on their own)."""
    if len(rows) != len(indexed):
        return [f"{len(indexed)} index rows, the record has {len(rows)} regions"]
    faults = []
    for col in idx.INDEX_SCHEMA.names:
        if col in ("area", "shard", "checksum"):
            continue
        bad = [(r["region"], i[col], r[col]) for r, i in zip(rows, indexed) if r[col] != i[col]]
        if bad:
            region, got, want = bad[0]
            faults.append(f"index column {col!r} differs from the record in {len(bad)} row(s) "
                          f"(region {region}: {got!r}, the record says {want!r})")
    return faults


def folder_faults(root: Store, manifest: dict) -> list[tuple[str, str, str]]:
    """Files of a prepared folder (local or on a store) that its manifest does not account
    for, and files it needs that are missing (``rejects.parquet``; missing shards are reported
    per shard)."""
    shards = {s["shard"] for s in manifest["shards"]}
    known = shards | {idx.INDEX_FILE, idx.REJECTS_FILE, idx.MANIFEST_FILE, PARTS_DIR}
    faults = [(name, "", "not in the manifest: no part of the dataset (the stream skips it)"
               if name.startswith(schema.SHARD_PREFIX) else "not in the manifest")
              for name in _entries(root) if name not in known]
    sidecar = f"{schema.SHARD_PREFIX}-[0-9][0-9][0-9][0-9][0-9][0-9].json"
    faults += [(f"{PARTS_DIR}/{name}", "", "not a part of the run")
               for name in _entries(root, PARTS_DIR)
               if name != RUN_FILE and not fnmatch.fnmatch(name, sidecar)]
    if not root.exists(idx.REJECTS_FILE):
        faults.append((idx.REJECTS_FILE, "", "missing (the manifest counts "
                                             f"{manifest['counts']['rejects']} rejects)"))
    return faults


def _entries(root: Store, folder: str = "") -> list[str]:
    """Names of what ``folder`` of ``root`` holds (files and folders; no lock file)."""
    if root.local is not None:
        return [p.name for p in outdir.entries(root.local / folder)]
    prefix = f"{folder}/" if folder else ""
    return sorted({n[len(prefix):].split("/")[0] for n in root.files() if n.startswith(prefix)})


def verify(root: str | Path | Store, progress: bool = True) -> VerifyReport:
    """``root``: a dataset folder, local or a URL (``iis_pipe.storage``)."""
    root = store(root)
    manifest = idx.read_manifest(root)
    index = idx.read_index(root)
    rows_by_key: dict[str, list[dict]] = {}
    for r in index.to_pylist():
        rows_by_key.setdefault(r["key"], []).append(r)
    report = VerifyReport()
    report.faults.extend(folder_faults(root, manifest))
    counts = manifest["counts"]
    rejects = idx.read_rejects(root).num_rows
    for what, found in (("regions", index.num_rows), ("rejects", rejects)):
        if what in counts and found != counts[what] and not (
                what == "rejects" and not root.exists(idx.REJECTS_FILE)):
            file = idx.INDEX_FILE if what == "regions" else idx.REJECTS_FILE
            report.faults.append((file, "", f"{found} {what}, the manifest counts {counts[what]}"))
    seen: Counter = Counter()
    shards = [s["shard"] for s in manifest["shards"]]
    for shard in tqdm(shards, disable=not progress, unit="shard", desc="verify"):
        if not root.exists(shard):
            report.faults.append((shard, "", "shard file missing"))
            continue
        count = 0
        try:
            for key, members in iter_shard(root.name(shard)):
                count += 1
                seen[key] += 1
                expected = rows_by_key.get(key, [])
                if expected and expected[0]["shard"] != shard:
                    report.faults.append((shard, key, f"index places it in {expected[0]['shard']}"))
                for fault in check_record(key, members, expected):
                    report.faults.append((shard, key, fault))
                report.records += 1
                report.regions += len(expected)
        except BadInput as e:
            report.faults.append((shard, e.key or "", e.reason))
        want = next(s["records"] for s in manifest["shards"] if s["shard"] == shard)
        if count != want:
            report.faults.append((shard, "", f"{count} records, manifest says {want}"))
    for key, n in seen.items():
        if n > 1:
            report.faults.append(("", key, f"record appears {n} times"))
    for key in rows_by_key.keys() - seen.keys():
        report.faults.append((rows_by_key[key][0]["shard"], key, "indexed but not in any shard"))
    if "records" in counts and len(seen) != counts["records"]:
        report.faults.append(("", "", f"{len(seen)} records in the shards, the manifest counts "
                                      f"{counts['records']}"))
    return report
