"""Datasets on object storage: a real S3 API (moto's server on 127.0.0.1, started and stopped
here) reached the standard way (``AWS_ENDPOINT_URL`` and the key variables). prepare writes
the same bytes as into a folder, verify / inspect / show / evaluate read it, the stream gives
exactly-once epochs and resumes, verify catches a cut object, and no key is written or logged."""

from __future__ import annotations

import json
import socket
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.pipelines.inspect import inspect
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.pipelines.verify import verify
from iis_pipe.stream import StreamLoader, stream_config

pytestmark = pytest.mark.realdata

KEY_ID, SECRET = "AKIATESTKEYID4IIS", "test-secret-4f1c2e9a-not-real"
BUCKET = "iis-data"


@pytest.fixture(scope="module")
def s3():
    """The server's endpoint, with the environment a user would set; yields an s3fs client."""
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    mp.undo()
    server.stop()


@pytest.fixture(scope="module")
def datasets(s3, tmp_path_factory):
    """GrabCut prepared into a folder and into s3://iis-data/gc (through the CLI, whose output
    is kept to look for keys)."""
    from conftest import real_set

    local = tmp_path_factory.mktemp("s3") / "gc"
    prepare(real_set("GrabCut"), local, workers=1, progress=False, shard_count=12)
    result = CliRunner().invoke(main, ["prepare", str(real_set("GrabCut")), "-o",
                                       f"s3://{BUCKET}/gc", "--shard-count", "12", "-w", "1"])
    assert result.exit_code == 0, result.output
    return local, f"s3://{BUCKET}/gc", result.output


def test_prepare_to_s3_equals_a_folder_and_writes_no_key(s3, datasets):
    local, url, output = datasets
    names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    remote = sorted(p[len(f"{BUCKET}/gc/"):] for p in s3.find(f"{BUCKET}/gc"))
    assert remote == names
    for name in names:
        assert s3.cat_file(f"{BUCKET}/gc/{name}") == (local / name).read_bytes(), name
    for name in remote:  # manifest, run settings, sidecars, index: no credential anywhere
        data = s3.cat_file(f"{BUCKET}/gc/{name}")
        assert KEY_ID.encode() not in data and SECRET.encode() not in data
    assert KEY_ID not in output and SECRET not in output
    assert "50 records" in output


def test_verify_inspect_and_show_read_s3(s3, datasets, tmp_path):
    local, url, _ = datasets
    report = verify(url, progress=False)
    assert report.ok and report.records == 50
    a, b = inspect(url), inspect(local)
    assert a.pop("root") == url and b.pop("root") == str(local)
    assert a == b
    runner = CliRunner()
    res = runner.invoke(main, ["verify", url, "-q"])
    assert res.exit_code == 0 and "0 faults" in res.output
    res = runner.invoke(main, ["inspect", url])
    assert res.exit_code == 0 and "50 records" in res.output
    res = runner.invoke(main, ["show", url, "-o", str(tmp_path / "p.png")])
    assert res.exit_code == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_evaluate_reads_s3(datasets, tmp_path):
    from iis_pipe.pipelines.evaluate import Protocol, evaluate

    local, url, _ = datasets
    two = Protocol(max_clicks=2)
    a = evaluate([url], tmp_path / "a", limit=3, workers=1, progress=False, protocol=two)
    b = evaluate([local], tmp_path / "b", limit=3, workers=1, progress=False, protocol=two)
    drop = {"seconds", "s_per_click", "source"}
    assert ([{k: v for k, v in d.items() if k not in drop} for d in a.summary["datasets"]]
            == [{k: v for k, v in d.items() if k not in drop} for d in b.summary["datasets"]])
    assert a.summary["datasets"][0]["samples"] == 3


def _keys(loader, n=None):
    out = []
    for i, b in enumerate(loader):
        out.append(list(b["keys"]))
        if n is not None and i + 1 == n:
            break
    return out


def test_stream_from_s3_is_exactly_once_and_resumes(datasets):
    local, url, _ = datasets
    knobs = dict(batch_size=4, crop_size=(96, 96), seed=3)
    remote = StreamLoader(stream_config(url, **knobs), num_workers=2)
    first = _keys(remote)
    flat = [k for b in first for k in b]
    assert len(flat) == 50 and len(set(flat)) == 50
    assert _keys(StreamLoader(stream_config(str(local), **knobs))) == first  # as from files
    second = _keys(remote)  # the next epoch: another order, every record once again
    assert sorted(k for b in second for k in b) == sorted(flat) and second != first
    # resume: 5 batches of epoch 1, a new loader from the state, the rest equal
    cut = StreamLoader(stream_config(url, **knobs), num_workers=2)
    _keys(cut)
    head = _keys(cut, 5)
    again = StreamLoader(stream_config(url, **knobs), num_workers=2)
    again.load_state_dict(cut.state_dict())
    assert head + _keys(again) == second
    assert remote.errors == [] and remote.retries == []


def test_verify_catches_a_cut_object(s3, datasets):
    local, url, _ = datasets
    s3.cp(f"{BUCKET}/gc", f"{BUCKET}/cut", recursive=True)
    shard = json.loads(s3.cat_file(f"{BUCKET}/cut/manifest.json"))["shards"][1]["shard"]
    data = (local / shard).read_bytes()
    s3.pipe_file(f"{BUCKET}/cut/{shard}", data[: len(data) // 2])  # cut inside a record
    report = verify(f"s3://{BUCKET}/cut", progress=False)
    assert not report.ok
    assert {f[0] for f in report.faults} - {""} == {shard}  # "": the record count
    assert any("truncated" in f[2] for f in report.faults)
    res = CliRunner().invoke(main, ["verify", f"s3://{BUCKET}/cut", "-q"])
    assert res.exit_code == 1 and shard in res.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = StreamLoader(stream_config(f"s3://{BUCKET}/cut", batch_size=4,
                                            crop_size=(96, 96)))
        n = sum(len(b["keys"]) for b in loader)
    assert n < 50 and loader.errors and loader.errors[0][0].endswith(shard)


def test_resume_on_s3(s3, tmp_path):
    from conftest import real_set

    url = f"s3://{BUCKET}/resume"
    whole = prepare(real_set("GrabCut"), tmp_path / "whole", workers=1, progress=False,
                    shard_inputs=10)
    prepare(real_set("GrabCut"), url, workers=1, progress=False, shard_inputs=10)
    # as if killed after three parts: drop the last two parts and the final files
    for name in ("index.parquet", "rejects.parquet", "manifest.json", "parts/shard-000003.json",
                 "parts/shard-000004.json", "shard-000004.tar"):
        s3.rm_file(f"{BUCKET}/resume/{name}")
    res = prepare(real_set("GrabCut"), url, workers=1, progress=False, shard_inputs=10,
                  resume=True)
    assert res.processed == 20 and whole.records == res.records == 50
    for p in sorted((tmp_path / "whole").glob("*")):
        if p.is_file():
            assert s3.cat_file(f"{BUCKET}/resume/{p.name}") == p.read_bytes(), p.name
    assert not s3.exists(f"{BUCKET}/resume/shard-000003.tar.tmp")
