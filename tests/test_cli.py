"""The dataset commands as a person runs them, on the built-in toy source (fast)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "shards"
    r = CliRunner().invoke(main, ["prepare", "toy", "-o", str(out), "-O", "count=12",
                                  "--shard-count", "5", "-w", "1", "-q"])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_prepare_summary_reconciles(toy):
    out, text = toy
    assert "12 records" in text and "0 rejected of 12 inputs" in text and "3 shards" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["records"] == 12
    assert sum(s["records"] for s in manifest["shards"]) == 12
    assert pq.read_table(out / "index.parquet").num_rows == manifest["counts"]["regions"]


def test_inspect_and_verify(toy):
    out, _ = toy
    r = CliRunner().invoke(main, ["inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["records"] == 12 and sum(h["regions"] for h in info["area_histogram"]) == info["regions"]
    r = CliRunner().invoke(main, ["verify", str(out), "-q"])
    assert r.exit_code == 0 and "0 faults" in r.output


def test_verify_catches_a_flipped_byte(toy, tmp_path):
    import shutil

    out, _ = toy
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    shard = bad / "shard-000001.tar"
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF  # inside the first member's payload
    shard.write_bytes(bytes(data))
    r = CliRunner().invoke(main, ["verify", str(bad), "-q"])
    assert r.exit_code == 1
    assert "shard-000001.tar" in r.output and "checksum" in r.output


def test_show_writes_a_picture(toy, tmp_path):
    out, _ = toy
    png = tmp_path / "p.png"
    r = CliRunner().invoke(main, ["show", str(out), "-o", str(png)])
    assert r.exit_code == 0, r.output
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 2 * 320 and img.std() > 10
    r = CliRunner().invoke(main, ["show", str(out), "--key", "nope", "-o", str(png)])
    assert r.exit_code == 1 and "no record 'nope'" in r.output


def test_workers_do_not_change_the_output(toy, tmp_path):
    out, _ = toy
    r = CliRunner().invoke(main, ["prepare", "toy", "-o", str(tmp_path / "w2"), "-O", "count=12",
                                  "--shard-count", "5", "-w", "2", "-q"])
    assert r.exit_code == 0, r.output
    a = pq.read_table(out / "index.parquet").to_pylist()
    b = pq.read_table(tmp_path / "w2" / "index.parquet").to_pylist()
    assert a == b


@pytest.mark.parametrize("args,message", [
    (["prepare", "/no/such/folder", "-o", "x"], "no such folder"),
    (["prepare", "toy", "-o", "x", "--shard-size", "lots"], "not a size"),
    (["prepare", "toy", "-o", "x", "--format", "pdf"], "Invalid value"),
    (["prepare", "toy", "-o", "x", "-O", "nonsense"], "KEY=VALUE"),
    (["prepare", "toy", "-o", "x", "-O", "bogus=1"], "has no option ['bogus']"),
    (["prepare", "toy", "-o", "x", "--resume", "--overwrite"], "exclude"),
    (["verify", "/no/such/dir"], "does not exist"),
])
def test_bad_flags_get_clear_messages(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and message in r.output, r.output
    assert not (tmp_path / "x").exists(), "a refused run leaves no output folder behind"


def test_undetectable_folder_says_what_was_looked_for(tmp_path):
    (tmp_path / "stuff").mkdir()
    r = CliRunner().invoke(main, ["prepare", str(tmp_path / "stuff"), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "grabcut" in r.output.lower() and "--format" in r.output


def test_not_empty_output_needs_resume_or_overwrite(toy):
    out, _ = toy
    r = CliRunner().invoke(main, ["prepare", "toy", "-o", str(out), "-O", "count=12", "-q"])
    assert r.exit_code == 1 and "--resume" in r.output


def test_any_executor_plugs_in(toy, tmp_path):
    """The seam for cluster executors (e.g. a dask.distributed client's get_executor())."""
    from concurrent.futures import ThreadPoolExecutor

    from iis_pipe.pipelines.prepare import prepare

    out, _ = toy
    with ThreadPoolExecutor(2) as ex:
        res = prepare("toy", tmp_path / "ex", source_options={"count": 12}, shard_count=5,
                      executor=ex, progress=False)
    assert res.records == 12
    a = pq.read_table(out / "index.parquet").to_pylist()
    b = pq.read_table(tmp_path / "ex" / "index.parquet").to_pylist()
    assert a == b


def test_demo_says_how_many_records_it_evaluates(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(main, ["demo", "-o", str(out), "-n", "3", "--evaluate", "2"])
    assert r.exit_code == 0, r.output
    assert "on the first 2 of 3 records" in r.output and "(2 of 3 records)" in r.output
    evaluated = {row["key"] for row in pq.read_table(out / "eval" / "samples.parquet").to_pylist()}
    index = pq.read_table(out / "shards" / "index.parquet").to_pylist()
    keys = sorted({row["key"] for row in index})
    assert len(keys) == 3 and evaluated == set(keys[:2])


def test_verify_catches_a_jpeg_index_of_another_image(toy):
    from iis_pipe.pipelines.verify import check_record
    from iis_pipe.records import schema
    from iis_pipe.shards.index import read_index
    from iis_pipe.shards.tar import iter_shard

    out, _ = toy
    records = list(iter_shard(str(out / "shard-000000.tar")))[:2]
    (key, members), (_, other) = records
    assert schema.JPEG_INDEX in members and members[schema.JPEG_INDEX] != other[schema.JPEG_INDEX]
    rows = [r for r in read_index(out).to_pylist() if r["key"] == key]
    assert check_record(key, members, rows) == []
    forged = {**members, schema.JPEG_INDEX: other[schema.JPEG_INDEX]}
    rows = [{**r, "checksum": schema.checksum(forged)} for r in rows]  # past the checksum
    assert check_record(key, forged, rows) == [
        f"JPEG entry index ({schema.JPEG_INDEX}) is not its JPEG's"]
