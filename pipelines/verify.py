"""``verify``: every shard readable, every record whole and decodable, index == shards."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from iis_pipe.errors import BadInput
from iis_pipe.records import schema
from iis_pipe.shards import index as idx
from iis_pipe.shards.tar import iter_shard
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
    """Faults of one record against its index rows (empty list: sound)."""
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
    areas = [int(m.sum()) for m in rec.regions]
    want = [r["area"] for r in sorted(expected, key=lambda r: r["region"])]
    if areas != want:
        faults.append(f"region areas {areas} differ from the index {want}")
    if rec.dt.shape != rec.regions.shape:
        faults.append(f"distance maps {rec.dt.shape} do not match regions {rec.regions.shape}")
    return faults


def verify(root: str | Path | Store, progress: bool = True) -> VerifyReport:
    """``root``: a dataset folder, local or a URL (``iis_pipe.storage``)."""
    root = store(root)
    manifest = idx.read_manifest(root)
    rows_by_key: dict[str, list[dict]] = {}
    for r in idx.read_index(root).to_pylist():
        rows_by_key.setdefault(r["key"], []).append(r)
    report = VerifyReport()
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
    return report
