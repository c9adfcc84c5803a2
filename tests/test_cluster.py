"""prepare on a real Dask cluster (``distributed.LocalCluster``, 2 worker processes on
127.0.0.1): the output equals a local run's byte for byte; a worker killed with SIGKILL is
survived; a part that keeps dying becomes rejects; ``--resume`` after the driver is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iis_pipe.pipelines.prepare import prepare
from iis_pipe.pipelines.verify import verify

pytestmark = pytest.mark.realdata
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """A cluster whose scheduler gives up on a task after its second worker death, one task
    per worker at a time (so a kill hits one task)."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as lc, \
                distributed.Client(lc) as c:
            yield c


@pytest.fixture(scope="module")
def davis_part(tmp_path_factory) -> Path:
    """30 DAVIS frames (links to the real files), plus a cut JPEG and an image without mask:
    two rejects."""
    from conftest import real_set

    davis = real_set("DAVIS")
    root = tmp_path_factory.mktemp("davis") / "DAVIS"
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    stems = sorted(p.stem for p in (davis / "gt").glob("*.png"))[:30]
    for s in stems:
        (root / "img" / f"{s}.jpg").symlink_to(davis / "img" / f"{s}.jpg")
        (root / "gt" / f"{s}.png").symlink_to(davis / "gt" / f"{s}.png")
    data = (davis / "img" / f"{stems[0]}.jpg").read_bytes()
    (root / "img" / "zz_cut.jpg").write_bytes(data[: len(data) // 3])
    (root / "gt" / "zz_cut.png").symlink_to(davis / "gt" / f"{stems[0]}.png")
    (root / "img" / "zz_alone.jpg").symlink_to(davis / "img" / f"{stems[1]}.jpg")
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def davis_local(davis_part, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "o"
    prepare(davis_part, out, workers=1, progress=False, shard_inputs=4)
    return out


def test_grabcut_on_the_cluster_equals_a_local_run(client, tmp_path, grabcut_dir):
    prepare(grabcut_dir, tmp_path / "local", workers=2, progress=False, shard_inputs=8)
    res = prepare(grabcut_dir, tmp_path / "dask", cluster=client, progress=False,
                  shard_inputs=8)
    assert (res.records, res.rejects, res.shards) == (50, 0, 7)
    local, dask = _files(tmp_path / "local"), _files(tmp_path / "dask")
    assert sorted(local) == sorted(dask)
    assert [n for n in local if n != "parts/run.json" and local[n] != dask[n]] == []


def test_davis_on_the_cluster_equals_a_local_run(client, tmp_path, davis_part, davis_local):
    res = prepare(davis_part, tmp_path / "dask", cluster=client, progress=False,
                  shard_inputs=4)
    assert (res.records, res.rejects) == (30, 2)
    assert _files(tmp_path / "dask") == _files(davis_local)
    assert verify(tmp_path / "dask", progress=False).ok


def _pids(client) -> dict[str, int]:
    """Worker address -> pid, from the nannies of the local cluster (asking the workers
    would wait on a dead one)."""
    return {n.worker_address: n.process.pid for n in client.cluster.workers.values()
            if n.process is not None and n.process.pid is not None}


def _kill_worker_running(client, part: str, deadline: float, not_on: str | None = None
                         ) -> tuple[str, str]:
    """SIGKILL the worker process running a task whose key contains ``part`` (on another
    worker than ``not_on``); returns the task's key and the worker's address."""
    while time.time() < deadline:
        pids = _pids(client)
        for addr, keys in client.processing().items():
            for key in keys:
                if part in key and addr != not_on and addr in pids:
                    os.kill(pids[addr], signal.SIGKILL)
                    return key, addr
        time.sleep(0.02)
    raise AssertionError("no task to kill")


def _in_thread(fn, **kwargs):
    out: dict = {}

    def run():
        try:
            out["result"] = fn(**kwargs)
        except BaseException as e:  # handed to the test's thread
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, out


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_survived(client, tmp_path, davis_part, davis_local):
    before = set(_pids(client).values())
    t, out = _in_thread(prepare, source=davis_part, out=tmp_path / "dask", cluster=client,
                        progress=False, shard_inputs=4)
    _kill_worker_running(client, "iis-pipe-part-000002-", time.time() + 120)
    t.join(300)
    assert "error" not in out, out.get("error")
    assert out["result"].rejects == 2
    client.wait_for_workers(2, timeout=60)
    assert len(before - set(_pids(client).values())) == 1  # one worker was replaced
    assert _files(tmp_path / "dask") == _files(davis_local)


@pytest.mark.slow
def test_a_part_whose_worker_keeps_dying_becomes_rejects(client, tmp_path, davis_part):
    client.wait_for_workers(2, timeout=60)
    t, out = _in_thread(prepare, source=davis_part, out=tmp_path / "dask", cluster=client,
                        progress=False, shard_inputs=4)
    key, addr = _kill_worker_running(client, "iis-pipe-part-000001-", time.time() + 120)
    # its second try, elsewhere: the cluster gives up on it
    _kill_worker_running(client, key, time.time() + 120, not_on=addr)
    t.join(300)
    assert "error" not in out, out.get("error")
    res = out["result"]
    assert res.inputs == 32 and res.records == 32 - 2 - 4 and res.rejects == 2 + 4
    import pyarrow.parquet as pq

    rejects = pq.read_table(tmp_path / "dask" / "rejects.parquet").to_pylist()
    lost = [r for r in rejects if "task failed" in r["reason"]]
    assert len(lost) == 4 and all("KilledWorker" in r["reason"] for r in lost)
    assert verify(tmp_path / "dask", progress=False).ok
    client.wait_for_workers(2, timeout=60)


@pytest.mark.slow
def test_resume_after_the_driver_is_killed(client, tmp_path, davis_part, davis_local):
    out = tmp_path / "dask"
    cmd = [sys.executable, "-c", "from iis_pipe.cli.main import main; main()", "prepare",
           str(davis_part), "-o", str(out), "--cluster", "local:2", "--shard-inputs", "4", "-q"]
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children = []
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        children = psutil.Process(proc.pid).children(recursive=True) or children
        if len(list((out / "parts").glob("shard-*.json"))) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(60) == -9
    _, gone = psutil.wait_procs(children, timeout=30)  # the old cluster's workers end too
    for p in gone:
        p.kill()
    assert not (out / "manifest.json").exists(), "the run must have been cut mid-way"
    res = prepare(davis_part, out, cluster=client, progress=False, shard_inputs=4,
                  resume=True)
    assert 0 < res.processed < 32
    assert _files(out) == _files(davis_local)
