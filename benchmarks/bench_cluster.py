"""Past one machine, measured on this one: what the Dask engine and an S3 store cost.

    python benchmarks/bench_cluster.py            (IIS_DATA: folder holding DAVIS/)

1. DAVIS prepare, images/s: a local run with ``--workers 2`` against a ``LocalCluster`` of 2
   worker processes (one task per ``--shard-inputs`` inputs), the cluster started beforehand
   (an existing engine) and, for the record, started by the run itself (``local:2``).
   Target: cluster / local >= 0.9.
2. Stream samples/s of the same shards from a local S3 API server (moto, on 127.0.0.1, in
   this process) against the local files, 2 DataLoader workers. Target: >= 0.9.
Every figure is measured in this run; ``--repeats`` alternates the two sides and reports the
median (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from iis_pipe.data_root import data_root

TARGET = 0.9


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="DAVIS folder (default: IIS_DATA/DAVIS)")
    p.add_argument("--workers", type=int, default=2, help="local workers = cluster processes")
    p.add_argument("--shard-inputs", type=int, default=16, help="inputs per shard task")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs of each side")
    p.add_argument("--batches", type=int, default=30, help="stream batches timed per run")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-prepare", action="store_true")
    p.add_argument("--skip-stream", action="store_true")
    return p.parse_args(argv)


def _wall(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def bench_prepare(davis: Path, tmp: Path, args) -> Path:
    import distributed

    from iis_pipe.pipelines.prepare import prepare

    local_ips, cluster_ips, started_ips = [], [], []
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        client.run(__import__, "iis_pipe.pipelines.prepare")  # a running engine is warm
        for r in range(args.repeats):
            out = tmp / f"local{r}"
            sec, res = _wall(lambda: prepare(davis, out, workers=args.workers, progress=False))
            local_ips.append(res.processed / sec)
            sec, res = _wall(lambda: prepare(davis, tmp / f"dask{r}", cluster=client,
                                             shard_inputs=args.shard_inputs, progress=False))
            cluster_ips.append(res.processed / sec)
            print(f"  run {r}: local {local_ips[-1]:.2f} images/s, cluster "
                  f"{cluster_ips[-1]:.2f} images/s", flush=True)
    sec, res = _wall(lambda: prepare(davis, tmp / "started", cluster=f"local:{args.workers}",
                                     shard_inputs=args.shard_inputs, progress=False))
    started_ips.append(res.processed / sec)
    n = res.processed
    lo, cl = statistics.median(local_ips), statistics.median(cluster_ips)
    print(f"prepare DAVIS ({n} images, wall time of the whole call):")
    print(f"  local, --workers {args.workers}:           {lo:7.2f} images/s")
    print(f"  LocalCluster of {args.workers} (running):    {cl:7.2f} images/s  "
          f"ratio {cl / lo:.2f} (target >= {TARGET})")
    print(f"  local:{args.workers} (cluster start incl.): {started_ips[0]:7.2f} images/s  "
          f"ratio {started_ips[0] / lo:.2f}")
    return tmp / "local0"


def _moto():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    return server


def bench_stream(shards: Path, args) -> None:
    import s3fs

    from iis_pipe.profiling.loader import profile_loader
    from iis_pipe.stream import stream_config

    server = _moto()
    try:
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        fs.put(str(shards) + "/", "bench/davis/", recursive=True)
        url = "s3://bench/davis"
        knobs = dict(batch_size=args.batch_size, crop_size=(320, 320))
        local_sps, s3_sps = [], []
        for r in range(args.repeats):
            a = profile_loader(stream_config(str(shards), **knobs), args.workers, args.batches,
                               progress=False)
            b = profile_loader(stream_config(url, **knobs), args.workers, args.batches,
                               progress=False)
            local_sps.append(a.samples_per_s)
            s3_sps.append(b.samples_per_s)
            print(f"  run {r}: files {a.samples_per_s:.1f} samples/s, s3 "
                  f"{b.samples_per_s:.1f} samples/s ({b.retries} retries)", flush=True)
        lo, s3 = statistics.median(local_sps), statistics.median(s3_sps)
        print(f"stream, {args.workers} DataLoader workers, batch {args.batch_size}, "
              f"{args.batches} batches:")
        print(f"  local files:        {lo:7.1f} samples/s")
        print(f"  local S3 server:    {s3:7.1f} samples/s  ratio {s3 / lo:.2f} "
              f"(target >= {TARGET})")
    finally:
        server.stop()


def main(argv=None) -> int:
    args = _args(argv)
    davis = args.data or data_root() / "DAVIS"
    if not davis.is_dir():
        print(f"DAVIS not found at {davis}; set IIS_DATA or --data", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        if args.skip_prepare:
            from iis_pipe.pipelines.prepare import prepare

            shards = tmp / "local0"
            prepare(davis, shards, workers=args.workers, progress=False)
        else:
            shards = bench_prepare(davis, tmp, args)
        if not args.skip_stream:
            bench_stream(shards, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
