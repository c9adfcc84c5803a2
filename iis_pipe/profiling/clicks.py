"""Click-simulation speed, side by side with the plain statements of the same rules, one core.

Shared by ``iis-pipe bench clicks`` and ``benchmarks/bench_clicks.py``. On DAVIS masks:

- the standard next click (numba, bounding boxes) vs RITM's numpy/OpenCV code (two padded
  full-image transforms), on the states of simulated sessions with realistic errors, timed
  alternately click by click; medians per click, and whether every click is identical;
- the training sampler vs the argwhere-based sampler (same protocol and draws), both given the
  records' precomputed inside/outside transforms; samples/s, and whether every sample is identical;
- the click encoders: numba vs torch (CPU, and CUDA when present), ms per batch.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TARGET_RATIO = 10.0


@dataclass(frozen=True)
class ClickBenchParams:
    masks: int = 30        # DAVIS frames, evenly spaced
    clicks: int = 10       # clicks per simulated session
    samples: int = 300     # training samples
    batch: int = 8         # encoder batch size B
    points: int = 24       # N, clicks per side
    seed: int = 0


def load_davis(davis: Path, count: int) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """``count`` evenly spaced frames: ``(name, (K, H, W) bool instances, ignore or None)``."""
    files = sorted((davis / "gt").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no DAVIS masks under {davis / 'gt'}")
    out = []
    for p in files[:: max(len(files) // count, 1)][:count]:
        a = np.array(Image.open(p))
        ids = [i for i in np.unique(a) if i not in (0, 255)]
        if ids:
            out.append((p.name, np.stack([a == i for i in ids]), (a == 255) if (a == 255).any() else None))
    return out


def _ms(ns: list[int]) -> float:
    return statistics.median(ns) / 1e6


def bench_robot(frames, clicks: int, seed: int) -> dict:
    from iis_pipe.clicking.perturb import session_states
    from iis_pipe.clicking.reference import standard_reference
    from iis_pipe.clicking.robots import standard

    rng = np.random.default_rng(seed)
    states = []
    for _, inst, ign in frames:
        gt = inst.any(axis=0)
        states += [(gt, ign, pred, past) for pred, past, _ in session_states(gt, ign, rng, clicks, standard)]
    gt, ign, pred, _ = states[0]
    standard(gt, pred, ign), standard_reference(gt, pred, ign)  # compile, warm caches
    fast, ref, same = [], [], 0
    for gt, ign, pred, past in states:
        t0 = time.perf_counter_ns()
        a = standard(gt, pred, ign, past)
        t1 = time.perf_counter_ns()
        b = standard_reference(gt, pred, ign, past)
        t2 = time.perf_counter_ns()
        fast.append(t1 - t0)
        ref.append(t2 - t1)
        same += a == b
    return {"n": len(states), "fast_ms": _ms(fast), "ref_ms": _ms(ref),
            "ratio": _ms(ref) / _ms(fast), "identical": same}


def bench_sampler(frames, samples: int, points: int, seed: int) -> dict:
    from iis_pipe.geometry.distance import distance_to_zero
    from iis_pipe.clicking.reference import sample_clicks_reference
    from iis_pipe.clicking.samplers import SamplerConfig, sample_clicks
    from iis_pipe.regions.select import choose_regions

    cfg = SamplerConfig(max_num_points=points)
    # What a record holds: per-region inside/outside transforms.
    recs = [(inst, ign, np.stack([distance_to_zero(r, pad_border=True) for r in inst]),
             np.stack([distance_to_zero(~r) for r in inst])) for _, inst, ign in frames]
    rng = np.random.default_rng(seed)
    jobs = []
    for i in range(samples):
        inst, ign, inside, outside = recs[i % len(recs)]
        sel = choose_regions(rng, inst.sum(axis=(1, 2)))
        rest = np.delete(inst, sel, axis=0)
        jobs.append((inst[sel], dict(other=rest.any(axis=0) if len(rest) else None, ignore=ign,
                                     inside=inside[sel], outside=outside[sel]), int(rng.integers(1 << 31))))
    sample_clicks(jobs[0][0], cfg, np.random.default_rng(0), **jobs[0][1])  # compile
    fast, ref, same = [], [], 0
    for regions, kw, s in jobs:
        t0 = time.perf_counter_ns()
        a = sample_clicks(regions, cfg, np.random.default_rng(s), **kw)
        t1 = time.perf_counter_ns()
        b = sample_clicks_reference(regions, cfg, np.random.default_rng(s), **kw)
        t2 = time.perf_counter_ns()
        fast.append(t1 - t0)
        ref.append(t2 - t1)
        same += bool(np.array_equal(a, b))
    fast_sps, ref_sps = len(jobs) / (sum(fast) / 1e9), len(jobs) / (sum(ref) / 1e9)
    return {"n": len(jobs), "fast_sps": fast_sps, "ref_sps": ref_sps, "ratio": fast_sps / ref_sps,
            "fast_ms": _ms(fast), "ref_ms": _ms(ref), "identical": same}


ENCODER_CASES = (("disk", {"radius": 5.0}), ("dist", {"norm_radius": 5.0}), ("gauss", {"radius": 5.0}))


def bench_encoders(frames, batch: int, points: int, seed: int, reps: int = 3) -> list[dict]:
    import torch

    from iis_pipe.clicking.encode import encode_clicks, encode_clicks_torch
    from iis_pipe.clicking.format import stack_clicks
    from iis_pipe.clicking.samplers import SamplerConfig, sample_clicks

    cfg = SamplerConfig(max_num_points=points)
    rng = np.random.default_rng(seed)
    arrs = [sample_clicks(frames[b % len(frames)][1][:1], cfg, rng) for b in range(batch)]
    clicks = stack_clicks(arrs)
    shape = frames[0][1].shape[1:]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for mode, kw in ENCODER_CASES:
        row = {"mode": mode, "params": kw}
        encode_clicks(clicks, shape, mode, **kw)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            cpu = encode_clicks(clicks, shape, mode, **kw)
            ts.append(time.perf_counter_ns() - t0)
        row["numba_ms"] = _ms(ts)
        for dev in devices:
            tc = torch.from_numpy(clicks).to(dev)
            out = encode_clicks_torch(tc, shape, mode, **kw)
            ts = []
            for _ in range(reps):
                if dev == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter_ns()
                out = encode_clicks_torch(tc, shape, mode, **kw)
                if dev == "cuda":
                    torch.cuda.synchronize()
                ts.append(time.perf_counter_ns() - t0)
            row[f"torch_{dev}_ms"] = _ms(ts)
            row[f"max_diff_{dev}"] = float(np.abs(out.cpu().numpy() - cpu).max())
        rows.append(row)
    return rows


def run(data_root: Path, params: ClickBenchParams) -> dict:
    frames = load_davis(Path(data_root) / "DAVIS", params.masks)
    return {
        "params": params,
        "shape": frames[0][1].shape[1:],
        "robot": bench_robot(frames, params.clicks, params.seed),
        "sampler": bench_sampler(frames, params.samples, params.points, params.seed),
        "encoders": bench_encoders(frames, params.batch, params.points, params.seed),
    }


def report(res: dict) -> str:
    p, r, s = res["params"], res["robot"], res["sampler"]
    h, w = res["shape"]
    ok = lambda ratio: "met" if ratio >= TARGET_RATIO else "NOT met"  # noqa: E731
    lines = [
        f"click simulation, one core, DAVIS {h}x{w}, {p.masks} masks, seed {p.seed}",
        "",
        f"{'':34}{'iis-pipe':>12}{'reference':>12}{'ratio':>9}  identical   target >= {TARGET_RATIO:.0f}x",
        f"{'standard click, median ms/click':34}{r['fast_ms']:>12.3f}{r['ref_ms']:>12.3f}"
        f"{r['ratio']:>8.1f}x  {r['identical']}/{r['n']:<7}  {ok(r['ratio'])}",
        f"{'training sampler, samples/s':34}{s['fast_sps']:>12.0f}{s['ref_sps']:>12.0f}"
        f"{s['ratio']:>8.1f}x  {s['identical']}/{s['n']:<7}  {ok(s['ratio'])}",
        f"{'  (median ms/sample)':34}{s['fast_ms']:>12.3f}{s['ref_ms']:>12.3f}",
        "",
        "  reference click: RITM's Clicker rule, numpy + cv2.distanceTransform (IPP off), 2 full transforms",
        "  reference sampler: the same protocol and draws over full masks listed with np.argwhere",
        "",
        f"encoders, ms per batch (B={p.batch}, 2N={2 * p.points} click slots, {h}x{w})",
    ]
    for row in res["encoders"]:
        cols = [f"numba {row['numba_ms']:.2f}"]
        for dev in ("cpu", "cuda"):
            if f"torch_{dev}_ms" in row:
                cols.append(f"torch-{dev} {row[f'torch_{dev}_ms']:.2f} (max |diff| {row[f'max_diff_{dev}']:.1e})")
        params = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
        lines.append(f"  {row['mode']:<6} {params:<17}" + "   ".join(cols))
    return "\n".join(lines)
