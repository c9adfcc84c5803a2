"""Forward and forward+backward time of each IIS model with and without click fusion, one core.

    python benchmarks/bench_model.py                     (batch 2 x 320x480, 15 timed iterations)
    python benchmarks/bench_model.py --iters 9 --size 256 384 --models hrnet18s

For each family, the variants run interleaved (one iteration of each in turn, after a warm-up),
so machine-load drift hits them alike. The overhead of a fusion is its fastest time over the
image-only ("none") variant's fastest time (as ``timeit`` advises: interference from other jobs
only ever adds time, so the minimum is the closest to the undisturbed cost); target: under
10 %. The median over iterations of the paired ratios (fused over "none" in the same
iteration) is printed beside it; on this shared machine it wanders by +-5 points between
runs (a 30-iteration check of hrnet18s-conv1s forward gave +4.7 % paired, +5.0 % by minima).
"forward" is inference (eval mode, no autograd); "fwd+bwd" is a training step's forward and
backward (train mode, no optimizer). Times are the CPU time of the one compute thread
(``time.thread_time``), which a machine shared with other jobs does not inflate the way it
inflates wall-clock time; wall-clock minima are printed too, for reference. Times on a shared machine still move by 10-20 % (a busy
sibling core slows this one down), so the forward GFLOP (``torch.utils.flop_counter``) of each
model is printed as the noise-free view of the same overhead.

Second section: the trainer's data-wait fraction (time blocked on the next batch over time
blocked plus compute) for ``hrnet18s-conv1s`` on DAVIS shards with RITM's recipe and the stream
at 2 DataLoader workers, both cores allowed, steps after the first two (worker start-up).
"""

from __future__ import annotations

import _single_core  # noqa: F401  (must come first: pins one core, library threads = 1)

import argparse
import statistics
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from iis_pipe import models

TARGET_OVERHEAD = 0.10
FAMILIES = {
    "hrnet18s": ("hrnet18s-none", ["hrnet18s-conv1s", "hrnet18s-cat"]),
    "vit-s": ("vit-s-none", ["vit-s-simpleclick"]),
}


def batch(b: int, h: int, w: int):
    g = torch.Generator().manual_seed(0)
    clicks = torch.zeros(b, 2, h, w)
    clicks[:, 0, h // 3: h // 3 + 10, w // 3: w // 3 + 10] = 1.0
    return torch.rand(b, 3, h, w, generator=g), clicks, torch.zeros(b, 1, h, w)


def timed(fn) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of ``fn()``."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


def time_forward(model, inputs) -> tuple[float, float]:
    model.eval()
    with torch.inference_mode():
        return timed(lambda: model(*inputs))


def time_train_step(model, inputs) -> tuple[float, float]:
    model.train()
    model.zero_grad(set_to_none=True)
    return timed(lambda: model(*inputs).mean().backward())


def forward_gflop(model, inputs) -> float:
    model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / 1e9


def bench_fusion_overhead(args) -> bool:
    """Median forward and fwd+bwd ms per model; fusion overhead vs "none". True if all met."""
    inputs = batch(args.batch, *args.size)
    print(f"models: batch {args.batch} x {args.size[0]}x{args.size[1]}, one core, torch "
          f"{torch.__version__}, {args.iters} timed iterations (+1 warm-up), "
          "fastest thread CPU ms")
    all_met = True
    for family in args.models:
        base, fused = FAMILIES[family]
        names = [base, *fused]
        torch.manual_seed(0)
        built = {n: models.create(n) for n in names}
        times = {(n, kind): [] for n in names for kind in ("fwd", "step")}
        for it in range(args.iters + 1):
            for n in names:  # interleaved, see module docstring
                fwd, step = time_forward(built[n], inputs), time_train_step(built[n], inputs)
                if it:  # iteration 0 warms allocator and kernels up
                    times[n, "fwd"].append(fwd)
                    times[n, "step"].append(step)
        fastest = {k: min(c for c, _ in v) * 1e3 for k, v in times.items()}
        wall = {k: min(w for _, w in v) * 1e3 for k, v in times.items()}
        overhead = {(n, kind): fastest[n, kind] / fastest[base, kind] - 1
                    for n in fused for kind in ("fwd", "step")}
        paired = {(n, kind): statistics.median(c / c0 for (c, _), (c0, _)
                                               in zip(times[n, kind], times[base, kind])) - 1
                  for n in fused for kind in ("fwd", "step")}
        print(f"\n{family}:")
        gflop = {n: forward_gflop(built[n], inputs) for n in names}
        print(f"  {'model':<20}{'params M':>9}{'GFLOP':>8}{'(+%)':>7}"
              f"{'forward':>10}{'overhead':>10}{'(paired)':>10}"
              f"{'fwd+bwd':>10}{'overhead':>10}{'(paired)':>10}")
        for n in names:
            params = sum(p.numel() for p in built[n].parameters()) / 1e6
            flop_mark = "" if n == base else f"{gflop[n] / gflop[base] - 1:+.1%}"
            row = f"  {n:<20}{params:9.2f}{gflop[n]:8.1f}{flop_mark:>7}"
            for kind in ("fwd", "step"):
                mark = pair = ""
                if n != base:
                    met = overhead[n, kind] < TARGET_OVERHEAD
                    all_met &= met
                    mark = f"{overhead[n, kind]:+.1%}" + ("" if met else "!")
                    pair = f"({paired[n, kind]:+.1%})"
                row += f"{fastest[n, kind]:10.1f}{mark:>10}{pair:>10}"
            print(row + f"   (wall: {wall[n, 'fwd']:.0f} / {wall[n, 'step']:.0f})")
    print(f"\nfusion overhead target < {TARGET_OVERHEAD:.0%}: "
          f"{'met' if all_met else 'MISSED (marked !)'}")
    return all_met


def bench_data_wait(args) -> bool:
    """Data-wait fraction of real training steps with the stream at 2 workers."""
    import json
    import os
    import tempfile
    from pathlib import Path

    from iis_pipe.data_root import data_root
    from iis_pipe.pipelines.prepare import prepare
    from iis_pipe.pipelines.train import TrainConfig, train

    davis = data_root() / "DAVIS"
    if not davis.is_dir():
        print(f"\ndata wait: skipped, DAVIS not found at {davis} (set IIS_DATA)")
        return True
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # workers need their own core
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "davis"
        prepare(davis, shards, workers=2, progress=False, shard_count=40)
        cfg = TrainConfig(shards=str(shards), out=str(Path(tmp) / "run"), model="hrnet18s-conv1s",
                          recipe="ritm", stream={"batch_size": args.batch},
                          steps=args.wait_steps + 2, workers=2, checkpoint_every=10**9)
        train(cfg, progress=False)
        log = [json.loads(x) for x in (Path(cfg.out) / "log.jsonl").read_text().splitlines()]
    steps = log[2:]
    data = sum(r["data_s"] for r in steps)
    compute = sum(r["compute_s"] for r in steps)
    print(f"\ndata wait: hrnet18s-conv1s, RITM recipe, batch {args.batch}, stream at 2 workers, "
          f"{len(steps)} steps: data {1e3 * data / len(steps):.0f} ms/step, compute "
          f"{1e3 * compute / len(steps):.0f} ms/step, data-wait fraction "
          f"{data / (data + compute):.1%}")
    return True


SECTIONS = {"fusion": bench_fusion_overhead, "wait": bench_data_wait}


def main() -> int:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, nargs=2, default=(320, 480), metavar=("H", "W"))
    ap.add_argument("--iters", type=int, default=15,
                    help="timed iterations; fewer leave the paired median at the mercy of noise")
    ap.add_argument("--models", nargs="+", choices=sorted(FAMILIES), default=sorted(FAMILIES))
    ap.add_argument("--wait-steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    args = ap.parse_args()
    for name in args.sections:
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
