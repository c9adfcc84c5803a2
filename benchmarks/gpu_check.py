"""GPU check, for a machine with CUDA: bf16 training with the stream at many workers, the torch
click encoders on CUDA against numba, and a short DDP step with NCCL.

    .venv/bin/python benchmarks/gpu_check.py                  # prepares DAVIS from IIS_DATA
    .venv/bin/python benchmarks/gpu_check.py --shards out/davis --steps 400 --workers 12

1. Training: ``pipelines.train`` on CUDA with ``--amp bf16``, the RITM recipe at ``--workers``
   stream workers for ``--steps`` steps: samples/s, data-wait %, peak GPU memory.
2. Encoders: ``encode_clicks_torch`` on CUDA against the numba ``encode_clicks`` for every mode
   on random clicks: largest difference (the suite's tolerance is 1e-6) and time per batch.
3. DDP: ``torch.multiprocessing.spawn`` of one process per GPU (world size = GPU count), NCCL on
   127.0.0.1, one forward/backward of a small model; the ranks' gradients must agree after the
   all-reduce.

Without CUDA it prints why and exits with status 0, doing nothing. Figures go to stdout and to
``OUT/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--shards", default=None, help="prepared training shards (default: DAVIS "
                   "from IIS_DATA, prepared into OUT)")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    p.add_argument("--model", default="hrnet18s-conv1s")
    p.add_argument("--steps", type=int, default=300, help="training steps (a few minutes)")
    p.add_argument("--batch", type=int, default=28)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--skip", nargs="*", default=(), choices=("train", "encoders", "ddp"))
    return p.parse_args(argv)


def check_training(args, out: Path) -> dict:
    import torch

    from iis_pipe.data_root import data_root
    from iis_pipe.pipelines.prepare import prepare
    from iis_pipe.pipelines.train import TrainConfig, train

    shards = args.shards
    if shards is None:
        shards = str(out / "davis")
        prepare(data_root() / "DAVIS", shards, workers=args.workers, progress=False,
                overwrite=True)
    torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(shards=shards, out=str(out / "run"), model=args.model, recipe="ritm",
                      stream={"batch_size": args.batch}, steps=args.steps, amp="bf16",
                      device="cuda", workers=args.workers, checkpoint_every=args.steps,
                      schedule="cosine", warmup_steps=min(50, args.steps - 1))
    t0 = time.perf_counter()
    res = train(cfg, progress=False)
    return {"steps": res["steps"], "wall_s": time.perf_counter() - t0,
            "samples_per_s": res["samples_per_second"],
            "data_wait_pct": 100 * res["data_wait_fraction"],
            "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
            "loss_first": res["first_loss"], "loss_last": res["last_loss"],
            "workers": args.workers, "batch": args.batch, "model": args.model}


def check_encoders() -> dict:
    import numpy as np
    import torch

    from iis_pipe.clicking.encode import encode_clicks, encode_clicks_torch

    rng = np.random.default_rng(0)
    b, n, shape = 28, 24, (320, 480)
    clicks = np.full((b, 2 * n, 3), -1, np.int32)
    for i in range(b):
        k = rng.integers(1, 2 * n)
        clicks[i, :k, 0] = rng.integers(0, shape[0], k)
        clicks[i, :k, 1] = rng.integers(0, shape[1], k)
        clicks[i, :k, 2] = np.arange(k)
    out = {}
    gpu = torch.from_numpy(clicks).cuda()
    for mode in ("disk", "dist", "gauss"):
        ref = encode_clicks(clicks, shape, mode)
        t0 = time.perf_counter()
        for _ in range(3):
            encode_clicks(clicks, shape, mode)
        cpu_s = (time.perf_counter() - t0) / 3
        encode_clicks_torch(gpu, shape, mode)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            got = encode_clicks_torch(gpu, shape, mode)
        torch.cuda.synchronize()
        cuda_s = (time.perf_counter() - t0) / 10
        diff = float(np.abs(got.cpu().numpy() - ref).max())
        out[mode] = {"max_abs_diff": diff, "ok": diff <= 1e-6, "numba_ms": 1e3 * cpu_s,
                     "cuda_ms": 1e3 * cuda_s}
    return out


def _ddp_worker(rank: int, world: int, port: int, results) -> None:
    import torch
    import torch.distributed as dist

    from iis_pipe import models

    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    torch.cuda.set_device(rank)
    torch.manual_seed(0)
    model = models.create("timm:ghostnet_050").cuda()
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    g = torch.Generator(device="cuda").manual_seed(rank)  # each rank its own batch
    image = torch.rand(2, 3, 128, 128, device="cuda", generator=g)
    maps = torch.zeros(2, 2, 128, 128, device="cuda")
    prev = torch.zeros(2, 1, 128, 128, device="cuda")
    t0 = time.perf_counter()
    with torch.autocast("cuda", torch.bfloat16):
        loss = net(image, maps, prev).float().mean()
    loss.backward()
    torch.cuda.synchronize()
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    gathered = [torch.zeros_like(grad) for _ in range(world)]
    dist.all_gather(gathered, grad)
    results[rank] = {"step_s": time.perf_counter() - t0,
                     "grads_agree": all(torch.equal(gathered[0], x) for x in gathered)}
    dist.destroy_process_group()


def check_ddp() -> dict:
    import torch
    import torch.multiprocessing as mp

    world = torch.cuda.device_count() or 1
    with socket.socket() as s:  # a free port on the loopback interface
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_ddp_worker, args=(world, port, results), nprocs=world, join=True)
    per_rank = dict(results)
    return {"world_size": world, "ranks": per_rank,
            "ok": len(per_rank) == world and all(r["grads_agree"] for r in per_rank.values())}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here (torch.cuda.is_available() is False); "
              "nothing was checked. Run it on a machine with a GPU.")
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    figures = {"device": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(),
               "torch": torch.__version__}
    print(json.dumps(figures), flush=True)
    for name, fn in (("encoders", check_encoders), ("ddp", check_ddp),
                     ("train", lambda: check_training(args, out))):
        if name in args.skip:
            continue
        t0 = time.perf_counter()
        try:
            figures[name] = fn()
        except Exception as e:  # one failed check must not hide the others' figures
            figures[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        figures[name]["check_s"] = time.perf_counter() - t0
        print(name, json.dumps(figures[name], default=str), flush=True)
    (out / "gpu_check.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"figures: {out / 'gpu_check.json'}")
    failed = [n for n in ("encoders", "ddp", "train") if n in figures and not _ok(figures[n])]
    if failed:
        print(f"gpu_check: FAILED {', '.join(failed)}")
    return 1 if failed else 0


def _ok(fig: dict) -> bool:
    """A check passed: its own "ok" (False with an "error"), else all its parts passed."""
    if "ok" in fig:
        return bool(fig["ok"])
    return all(_ok(v) for v in fig.values() if isinstance(v, dict))

if __name__ == "__main__":
    sys.exit(main())
