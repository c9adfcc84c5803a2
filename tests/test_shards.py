"""Shard parts: caps, atomic completion, tolerant reading of truncated tars."""

from __future__ import annotations

import pytest

from iis_pipe.errors import BadInput
from iis_pipe.shards.tar import iter_records, split_name
from iis_pipe.shards.writer import PARTS_DIR, PartWriter, finished_parts


def _members(i: int) -> dict[str, bytes]:
    return {"jpg": bytes([i]) * (100 + i), "meta.json": b'{"i": %d}' % i}


def _write(out, n, **caps):
    w = PartWriter(out, **caps)
    for i in range(n):
        w.add_record(f"k{i:03d}", _members(i), [{"key": f"k{i:03d}"}], checksum=str(i))
        if i == 4:
            w.add_reject("bad", "bad.jpg", "corrupt")
    w.close()


def test_count_cap_and_order(tmp_path):
    _write(tmp_path, 10, max_count=3)
    shards = sorted(tmp_path.glob("shard-*.tar"))
    assert [s.name for s in shards] == [f"shard-{i:06d}.tar" for i in range(4)]
    keys = [k for s in shards for k, _ in iter_records(s)]
    assert keys == [f"k{i:03d}" for i in range(10)]
    parts = finished_parts(tmp_path)
    assert [len(p["records"]) for p in parts] == [3, 3, 3, 1]
    assert [r["key"] for p in parts for r in p["rejects"]] == ["bad"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_byte_cap(tmp_path):
    _write(tmp_path, 6, max_bytes=250)
    for s in tmp_path.glob("shard-*.tar"):
        recs = list(iter_records(s))
        size = sum(len(v) for _, m in recs for v in m.values())
        assert size <= 250 or len(recs) == 1


def test_members_round_trip(tmp_path):
    _write(tmp_path, 3)
    (key, members), = [r for r in iter_records(tmp_path / "shard-000000.tar") if r[0] == "k002"]
    assert members == _members(2)


def test_truncated_shard_names_the_file(tmp_path):
    _write(tmp_path, 5)
    shard = tmp_path / "shard-000000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(BadInput) as e:
        for key, _ in iter_records(shard):
            got.append(key)
    assert "shard-000000.tar" in e.value.file and "truncated" in e.value.reason
    assert got == [f"k{i:03d}" for i in range(len(got))] and len(got) < 5


def test_interrupted_part_is_invisible_and_cleaned(tmp_path):
    w = PartWriter(tmp_path, max_count=2)
    for i in range(3):
        w.add_record(f"k{i}", _members(i), [], checksum="")
    # killed here: part 0 finished, part 1 open as a .tmp
    assert (tmp_path / "shard-000000.tar").is_file()
    assert (tmp_path / "shard-000001.tar.tmp").is_file()
    assert not (tmp_path / "shard-000001.tar").exists()
    # a shard renamed whose sidecar never was is not finished either
    (tmp_path / "shard-000002.tar").write_bytes(b"")
    parts = finished_parts(tmp_path)
    assert [p["shard"] for p in parts] == ["shard-000000.tar"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [PARTS_DIR, "shard-000000.tar"]


def test_webdataset_key_rule():
    assert split_name("a/b.c.regions.png") == ("a/b", "c.regions.png")
    assert split_name("x.jpg") == ("x", "jpg")


def test_writer_names_shards_as_the_schema_says(tmp_path):
    from iis_pipe.records import schema

    w = PartWriter(tmp_path, max_count=1, prefix="val")
    for i in range(2):
        w.add_record(f"k{i}", _members(i), [], checksum="")
    w.close()
    assert sorted(p.name for p in tmp_path.glob(schema.shard_glob("val"))) == [
        schema.shard_name(0, "val"), schema.shard_name(1, "val")] == ["val-000000.tar",
                                                                      "val-000001.tar"]
    assert [p["shard"] for p in finished_parts(tmp_path, prefix="val")] == [
        "val-000000.tar", "val-000001.tar"]
