"""Training loader throughput on DAVIS shards with RITM's recipe, against decoding alone.

    python benchmarks/bench_loader.py [--batches 20]     (IIS_DATA: folder holding DAVIS/)

One core: loader samples/s (in-process, every stage) and decode-only images/s of the same
JPEGs (simplejpeg, the decoder the loader uses), measured back to back. Then 1 vs 2 DataLoader
workers on two cores. Targets: loader >= 0.6x decode-only; 2 workers >= 1.7x one worker.
"""

from __future__ import annotations

import _single_core  # noqa: F401  (pins this process to one core first)

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import simplejpeg
import torch

from pipelines.prepare import prepare
from pipelines.profile import profile_loader, shard_jpegs
from pipelines.stream import ritm_cocolvis_hrnet18


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20, help="timed batches of 28 per run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    davis = _single_core.data_root() / "DAVIS"
    if not davis.is_dir():
        print(f"DAVIS not found at {davis}; set IIS_DATA", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "davis"
        prepare(davis, shards, workers=2, progress=False, shard_count=40)
        cfg = ritm_cocolvis_hrnet18(shards, samples_per_epoch=28 * (args.batches + 4))
        jpegs = shard_jpegs(shards)

        def decode_only(fast: bool) -> float:
            t0 = time.perf_counter()
            for b in jpegs:
                simplejpeg.decode_jpeg(b, colorspace="RGB", fastdct=fast, fastupsample=fast)
            return len(jpegs) / (time.perf_counter() - t0)

        # decode-only before and after the loader, averaged: the machine's speed drifts
        before = decode_only(False), decode_only(True)
        inproc = profile_loader(cfg, 0, args.batches, progress=False)
        after = decode_only(False), decode_only(True)
        dec = (before[0] + after[0]) / 2
        fast = (before[1] + after[1]) / 2
        ratio = inproc.samples_per_s / dec
        print(f"DAVIS, {len(jpegs)} JPEGs, RITM recipe (batch 28, 320x480), one core")
        print(f"decode-only, simplejpeg default:    {dec:.1f} images/s")
        print(f"decode-only, simplejpeg fast flags: {fast:.1f} images/s (what the loader uses)")
        print(f"loader in-process: {inproc.samples_per_s:.1f} samples/s = {ratio:.2f}x default "
              f"decode-only (target 0.6x: {'met' if ratio >= 0.6 else 'MISSED'}), "
              f"{inproc.samples_per_s / fast:.2f}x fast decode-only")
        total = sum(inproc.stages.values())
        for stage, sec in sorted(inproc.stages.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<9}{1000 * sec:7.2f} ms/sample  {100 * sec / total:5.1f}%")

        cores = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))[:2]
        os.sched_setaffinity(0, set(cores))
        one = profile_loader(cfg, 1, args.batches, progress=False)
        two = profile_loader(cfg, 2, args.batches, progress=False)
        scale = two.samples_per_s / one.samples_per_s
        print(f"DataLoader on cores {cores}: 1 worker {one.samples_per_s:.1f}, 2 workers "
              f"{two.samples_per_s:.1f} samples/s = {scale:.2f}x (target 1.7x: "
              f"{'met' if scale >= 1.7 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
