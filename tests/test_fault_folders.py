"""Prepared folders are read through their manifest, verified file by file and column by column,
and written by one run at a time; workers do not outlive a killed run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.errors import FolderBusy, IncompleteDataset
from iis_pipe.pipelines.evaluate import evaluate
from iis_pipe.pipelines.prepare import prepare
from iis_pipe.pipelines.train import TrainConfig, train
from iis_pipe.pipelines.verify import verify
from iis_pipe.stream import StreamLoader, stream_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(small_toy):
    return small_toy


def _copy(toy, tmp_path, name="d"):
    return Path(shutil.copytree(toy, tmp_path / name))


def _faults(root):
    return [f"{s} {k}: {r}" for s, k, r in verify(root, progress=False).faults]


def test_consumers_refuse_a_folder_missing_a_shard(toy, tmp_path):
    d = _copy(toy, tmp_path)
    (d / "shard-000001.tar").unlink()
    r = CliRunner().invoke(main, ["evaluate", str(d), "-o", str(tmp_path / "ev"), "-w", "1", "-q"])
    assert r.exit_code == 1 and "shard-000001.tar" in r.output and "missing" in r.output, r.output
    with pytest.raises(IncompleteDataset, match="shard-000001.tar"):
        stream_config(str(d)) and StreamLoader(stream_config(str(d)))
    r = CliRunner().invoke(main, ["inspect", str(d)])
    assert "shard-000001.tar" in r.output and "missing" in r.output
    r = CliRunner().invoke(main, ["show", str(d), "--key", "toy/s0/00002",
                                  "-o", str(tmp_path / "p.png")])
    assert r.exit_code == 1 and "shard-000001.tar" in r.output, r.output


def test_an_extra_shard_is_no_part_of_the_dataset(toy, tmp_path):
    d = _copy(toy, tmp_path)
    shutil.copy(d / "shard-000000.tar", d / "shard-000007.tar")
    with pytest.warns(UserWarning, match="shard-000007.tar"):
        loader = StreamLoader(stream_config(str(d), batch_size=2, crop_size=(32, 32)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sum(len(b["keys"]) for b in loader) == 6  # one epoch, each record once
    assert any("shard-000007.tar" in f and "not in the manifest" in f for f in _faults(d))
    r = CliRunner().invoke(main, ["inspect", str(d)])
    assert "shard-000007.tar" in r.output and "not in the manifest" in r.output


def test_verify_checks_every_file_against_the_manifest(toy, tmp_path):
    assert _faults(toy) == []
    d = _copy(toy, tmp_path)
    (d / "rejects.parquet").unlink()
    (d / "notes.txt").write_text("x")
    (d / "parts" / "stray.json").write_text("{}")
    faults = "\n".join(_faults(d))
    assert "rejects.parquet" in faults and "missing" in faults
    assert "notes.txt" in faults and "parts/stray.json" in faults


@pytest.mark.parametrize("column,value", [("label", "cat"), ("bbox_x", 999), ("height", 7),
                                          ("source", "coco"), ("instance", 42),
                                          ("split", "val"), ("component", 3)])
def test_verify_checks_every_index_column(toy, tmp_path, column, value):
    d = _copy(toy, tmp_path)
    table = pq.read_table(d / "index.parquet")
    rows = table.to_pylist()
    rows[3][column] = value
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), d / "index.parquet")
    faults = _faults(d)
    assert len(faults) == 1 and f"index column {column!r}" in faults[0], faults
    assert rows[3]["key"] in faults[0]


def test_overwrite_refuses_a_stray_file_before_deleting(toy, tmp_path):
    d = _copy(toy, tmp_path)
    (d / "notes.txt").write_text("mine")
    before = sorted(p.name for p in d.iterdir())
    r = CliRunner().invoke(main, ["prepare", "toy", "-O", "count=6", "-o", str(d), "-w", "1",
                                  "--overwrite", "-q"])
    assert r.exit_code == 1 and "notes.txt" in r.output and "nothing was deleted" in r.output
    assert sorted(p.name for p in d.iterdir()) == before and _faults(d) == ["notes.txt : not "
                                                                            "in the manifest"]


def _holder(folder):
    """A process that holds ``folder``'s lock until killed."""
    p = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                          "from iis_pipe.outdir import locked\n"
                          "with locked(sys.argv[1]):\n    print('held', flush=True)\n"
                          "    time.sleep(120)\n", str(folder)],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


@pytest.mark.timeout(120)
def test_a_held_folder_refuses_a_second_writer_until_its_holder_dies(toy, tmp_path):
    folders = {name: tmp_path / name for name in ("prep", "train", "eval")}
    holders = {name: _holder(f) for name, f in folders.items()}
    try:
        calls = {
            "prep": lambda: prepare("toy", folders["prep"], source_options={"count": 6},
                                    workers=1, progress=False, overwrite=True),
            "train": lambda: train(TrainConfig(shards=str(toy), out=str(folders["train"]),
                                               model="timm:ghostnet_050", recipe="plain",
                                               steps=1, workers=0, device="cpu",
                                               stream=dict(batch_size=2, crop_size=(32, 32))),
                                   progress=False),
            "eval": lambda: evaluate([toy], folders["eval"], workers=1, limit=1,
                                     progress=False),
        }
        for name, call in calls.items():
            with pytest.raises(FolderBusy, match=f"pid {holders[name].pid} on "):
                call()
        r = CliRunner().invoke(main, ["prepare", "toy", "-O", "count=6", "-o",
                                      str(folders["prep"]), "-w", "1", "-q", "--overwrite"])
        assert r.exit_code == 1 and "is in use by another run" in r.output
        for p in holders.values():  # kill -9: the lock file stays, its lock does not
            p.send_signal(signal.SIGKILL)
            p.wait()
        assert (folders["prep"] / ".iis-pipe.lock").is_file()
        for name, call in calls.items():
            call()
        assert _faults(folders["prep"]) == []
        assert not (folders["prep"] / ".iis-pipe.lock").exists()  # released at the end
    finally:
        for p in holders.values():
            p.kill()
            p.wait()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.timeout(180)
def test_prepare_workers_end_when_the_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-m", "iis_pipe.cli", "prepare", "toy", "-O",
                               "count=3000", "-o", str(tmp_path / "o"), "-w", "2", "-q"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((tmp_path / "o").glob("parts/*"))) < 1:
            time.sleep(0.2)  # run.json is written: the pool starts next
        kids = []
        while time.monotonic() < deadline and len(kids) < 3:  # 2 workers + resource tracker
            kids = _children(parent.pid)
            time.sleep(0.2)
        assert len(kids) >= 3, kids
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        gone_by = time.monotonic() + 5
        while time.monotonic() < gone_by and any(_alive(k) for k in kids):
            time.sleep(0.1)
        assert not [k for k in kids if _alive(k)], "orphans left running"
    finally:
        parent.kill()
        for k in kids if "kids" in locals() else []:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
