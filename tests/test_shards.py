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


def _cuts(shard):
    """Byte offsets to cut ``shard`` at: between two records' members (tarfile then stops
    quietly), inside a member's data, and just before the end-of-archive blocks."""
    import tarfile

    with tarfile.open(shard) as tar:
        infos = tar.getmembers()
    third = next(i for i in infos if i.name.startswith("k002."))
    last = infos[-1]
    return {"between records": third.offset, "inside a member": infos[3].offset_data + 10,
            "end blocks": last.offset_data + 512}


@pytest.mark.parametrize("cut", ["between records", "inside a member", "end blocks"])
def test_tar_grouper_is_one_rule_for_both_readers(tmp_path, cut):
    from iis_pipe.stream.reader import scan_local

    _write(tmp_path, 5)
    shard = tmp_path / "shard-000000.tar"
    whole = shard.read_bytes()
    refs = list(scan_local(str(shard)))
    recs = list(iter_records(shard))
    assert [r.key for r in refs] == [k for k, _ in recs] == [f"k{i:03d}" for i in range(5)]
    for ref, (_, members) in zip(refs, recs):
        assert {s: whole[o:o + n] for s, (o, n) in ref.members.items()} == members

    shard.write_bytes(whole[:_cuts(shard)[cut]])
    faults, keys = [], []
    for read in (lambda: (r.key for r in scan_local(str(shard))),
                 lambda: (k for k, _ in iter_records(shard))):
        got = []
        with pytest.raises(BadInput) as e:
            for k in read():
                got.append(k)
        faults.append((e.value.file, e.value.reason, e.value.key))
        keys.append(got)
    assert faults[0] == faults[1] and keys[0] == keys[1]
    file, reason, key = faults[0]
    assert file == str(shard) and reason.startswith("truncated or corrupt tar after record ")
    assert reason.startswith(f"truncated or corrupt tar after record {keys[0][-1]!r}" if keys[0]
                             else "truncated or corrupt tar after record '<start>'")
    if cut == "between records":  # whole records before the cut, then the missing end blocks
        assert keys[0] == ["k000"] and "end-of-archive blocks missing" in reason
    if cut == "end blocks":
        assert keys[0] == [f"k{i:03d}" for i in range(4)] and key == "k004"


def test_tar_grouper_on_a_stream_groups_consecutive_members():
    import io
    import tarfile

    from iis_pipe.shards.tar import add_record, group_members

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_record(tar, "a", {"jpg": b"1", "meta.json": b"2", "dir": b""})
        folder = tarfile.TarInfo("a.folder")  # not a file: skipped
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        add_record(tar, "dir/b", {"x.png": b"34"})
    buf.seek(0)
    got = list(group_members("mem.tar", lambda: tarfile.open(fileobj=buf, mode="r|"),
                             lambda tar, info: info.size, check_end=False))
    assert got == [("a", {"jpg": 1, "meta.json": 1, "dir": 0}), ("dir/b", {"x.png": 2})]
