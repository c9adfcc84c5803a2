"""Memory and time of ``prepare -f coco`` on one annotation JSON of LVIS v1 train's shape.

    python benchmarks/bench_lvis_memory.py [--images 100000] [--annotations 1300000]
                                           [--prepare 200] [--workers 2] [--dir DIR]

Writes (seeded) a JSON shaped like ``lvis_v1_train.json``: ``--images`` image entries (LVIS
fields, ``coco_url`` paths), ``--annotations`` polygon annotations (2-200 points, 1-3 parts,
areas from a few pixels to a third of the image, drawn from 4096 distinct shapes) spread
over the images at random (Poisson, about 13 per image), 1203 categories: about 1 GB. The image
files are a few generated JPEGs, one per image size, hard-linked under every listed name.

Then, each in a fresh process:

1. **index**: ``coco.scan`` over the whole JSON, every image present: seconds, peak RSS and RSS
   once the items (what ``prepare`` keeps) are built, and the pickled size of one task (what a
   spawned worker receives for one image);
2. **prepare**: ``prepare(..., workers=N)`` from the same JSON with only ``--prepare`` images on
   disk (the rest come back as "image file missing" rejects): seconds, peak RSS of the driver
   (``getrusage(RUSAGE_SELF)``) and of the largest worker (its ``VmHWM``, read every 0.2 s
   while it lives: ``RUSAGE_CHILDREN`` would report the driver's size at the fork before exec).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(480, 640), (640, 480), (427, 640), (640, 427)]  # (H, W), the common COCO shapes
SPLIT = "train2017"


def polygon_pool(rng: np.random.Generator, count: int, box: int) -> list[tuple[str, float, list[float]]]:
    """``count`` distinct polygon texts ``"[[x, y, ...], ...]"`` inside ``box`` x ``box`` pixels,
    with their area and bbox (star-shaped parts around a centre, areas log-uniform)."""
    pool = []
    for _ in range(count):
        radius = float(np.exp(rng.uniform(np.log(2.0), np.log(box / 2.2))))
        cy, cx = rng.uniform(radius, box - radius, 2)
        parts, area, xs, ys = [], 0.0, [], []
        for _ in range(int(rng.choice([1, 1, 1, 1, 2, 3]))):
            n = int(rng.integers(2, 201)) if rng.random() < 0.05 else int(rng.integers(6, 48))
            n = max(n, 3)
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = radius * rng.uniform(0.5, 1.0, n) / (1 + len(parts))
            x = np.clip(cx + r * np.cos(angles), 0, box - 1)
            y = np.clip(cy + r * np.sin(angles), 0, box - 1)
            area += 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
            xs.append(x), ys.append(y)
            parts.append(",".join(f"{a:.2f},{b:.2f}" for a, b in zip(x, y)))
        x, y = np.concatenate(xs), np.concatenate(ys)
        bbox = [round(float(x.min()), 2), round(float(y.min()), 2),
                round(float(x.max() - x.min()), 2), round(float(y.max() - y.min()), 2)]
        pool.append(("[" + ",".join(f"[{p}]" for p in parts) + "]", round(area, 2), bbox))
    return pool


def write_dataset(root: Path, n_images: int, n_annotations: int, seed: int = 0) -> tuple[Path, dict]:
    """The JSON and the hard-linked image files; returns the JSON path and ``{image_id: (H, W)}``."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "pixels").mkdir(exist_ok=True)
    sources = {}
    for h, w in SIZES:
        pixels = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        pixels = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)
        path = root / "pixels" / f"{h}x{w}.jpg"
        cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
        sources[(h, w)] = path
    size_of = {i + 1: SIZES[int(s)] for i, s in enumerate(rng.integers(0, len(SIZES), n_images))}
    owner = np.sort(rng.integers(1, n_images + 1, n_annotations))
    rng.shuffle(owner)  # LVIS does not group annotations by image
    pool = polygon_pool(rng, 4096, min(min(s) for s in SIZES))
    path = root / "annotations" / "lvis_v1_train.json"
    with open(path, "w") as f:
        f.write('{"info":{"description":"synthetic, LVIS v1 train shape","version":"1.0"},"licenses":[],')
        f.write('"images":[')
        f.write(",".join(
            f'{{"date_captured":"2013-11-14 16:28:13","neg_category_ids":[{i % 1203 + 1},{(7 * i) % 1203 + 1}],'
            f'"id":{i},"license":3,"height":{h},"width":{w},"flickr_url":"http://farm3.staticflickr.com/2/{i}.jpg",'
            f'"coco_url":"http://images.cocodataset.org/{SPLIT}/{i:012d}.jpg","not_exhaustive_category_ids":[]}}'
            for i, (h, w) in size_of.items()))
        f.write('],"annotations":[')
        choice = rng.integers(0, len(pool), n_annotations)
        for start in range(0, n_annotations, 50_000):
            chunk = []
            for j in range(start, min(start + 50_000, n_annotations)):
                text, area, bbox = pool[choice[j]]  # a parser makes new objects for every copy
                chunk.append(f'{{"area":{area},"id":{j + 1},"segmentation":{text},"image_id":{owner[j]},'
                             f'"bbox":{bbox},"category_id":{int(choice[j]) % 1203 + 1}}}')
            f.write(("," if start else "") + ",".join(chunk))
        f.write('],"categories":[')
        f.write(",".join(f'{{"frequency":"f","id":{c},"synset":"thing_{c}.n.01","image_count":{c},'
                         f'"instance_count":{3 * c},"synonyms":["thing_{c}"],"def":"a synthetic category",'
                         f'"name":"thing_{c}"}}' for c in range(1, 1204)))
        f.write("]}")
    return path, {"sources": sources, "size_of": size_of}


def link_images(folder: Path, layout: dict, ids) -> None:
    (folder / SPLIT).mkdir(parents=True, exist_ok=True)
    for i in ids:
        os.link(layout["sources"][layout["size_of"][i]], folder / SPLIT / f"{i:012d}.jpg")


INDEX_CHILD = """
import json, pickle, resource, sys, time
from pathlib import Path
from iis_pipe.sources import SourceItem, get_format
root, ann = Path(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
items = list(get_format("coco").scan(root, annotations=ann))
seconds = time.perf_counter() - t0
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
good = [i for i in items if isinstance(i, SourceItem)]
sizes = sorted(len(pickle.dumps(i)) for i in good)
print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_after": rss, "items": len(good), "rejects": len(items) - len(good),
                  "annotations": sum(len(i.extra["annotations"]) for i in good),
                  "task_bytes_median": sizes[len(sizes) // 2], "task_bytes_max": sizes[-1]}))
"""

PREPARE_CHILD = """
import json, os, resource, sys, threading, time
from pathlib import Path
from iis_pipe.pipelines.prepare import prepare

def hwm(pid):  # the peak RSS of a live process (VmHWM; its exec reset it)
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(l for l in f if l.startswith("VmHWM")).split()[1]) * 1024
    except (OSError, StopIteration):
        return 0

workers_peak, done = {}, threading.Event()
def watch():
    while not done.is_set():
        for task in os.listdir("/proc/self/task"):
            try:
                kids = open(f"/proc/self/task/{task}/children").read().split()
            except OSError:
                continue
            for pid in kids:
                workers_peak[pid] = max(workers_peak.get(pid, 0), hwm(pid))
        time.sleep(0.2)
threading.Thread(target=watch, daemon=True).start()
root, ann, images, out, workers = sys.argv[1:6]
res = prepare(Path(root), Path(out), format="coco", source_options={"annotations": ann, "images": images},
              workers=int(workers), progress=False)
done.set()
print(json.dumps({"seconds": res.seconds, "records": res.records, "regions": res.regions,
                  "rejects": res.rejects, "images_per_s": res.processed / res.seconds,
                  "driver_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "worker_peak_rss": max(workers_peak.values(), default=0),
                  "processes_seen": len(workers_peak)}))
"""


def child(code: str, *args) -> dict:
    t0 = time.perf_counter()  # the same interpreter, so the same installed iis_pipe
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - t0}


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--annotations", type=int, default=1_300_000)
    ap.add_argument("--prepare", type=int, default=200, help="images actually prepared")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        t0 = time.perf_counter()
        ann = root / "lvis" / "annotations" / "lvis_v1_train.json"
        stamp = root / "lvis" / f"written-{args.images}-{args.annotations}-{args.seed}-{args.prepare}"
        if stamp.is_file():  # --dir of an earlier run with the same settings: reuse its files
            print(f"reusing {ann} ({ann.stat().st_size / 1e9:.2f} GB)")
        else:
            for old in ("lvis", "subset"):
                shutil.rmtree(root / old, ignore_errors=True)
            ann, layout = write_dataset(root / "lvis", args.images, args.annotations, args.seed)
            link_images(root / "lvis", layout, layout["size_of"])
            subset = sorted(layout["size_of"])[:: max(1, args.images // args.prepare)][: args.prepare]
            link_images(root / "subset", layout, subset)
            stamp.touch()
            print(f"wrote {ann} ({ann.stat().st_size / 1e9:.2f} GB: {args.images:,} images, "
                  f"{args.annotations:,} annotations) in {time.perf_counter() - t0:.0f} s")
        shutil.rmtree(root / "out", ignore_errors=True)

        a = child(INDEX_CHILD, root / "lvis", ann)
        print(f"index  : {a['seconds']:.1f} s to scan ({a['items']:,} items, {a['annotations']:,} "
              f"annotations, {a['rejects']} rejects); peak RSS {gib(a['peak_rss'])}, "
              f"{gib(a['rss_after'])} with the items held; one task pickles to "
              f"{a['task_bytes_median'] / 1e3:.1f} kB (median), {a['task_bytes_max'] / 1e3:.1f} kB (max)")
        b = child(PREPARE_CHILD, root / "lvis", ann, root / "subset", root / "out", args.workers)
        print(f"prepare: --workers {args.workers}, {b['records']} records ({b['regions']:,} regions), "
              f"{b['rejects']:,} rejects (images not on disk) in {b['seconds']:.1f} s; peak RSS "
              f"driver {gib(b['driver_peak_rss'])}, largest worker {gib(b['worker_peak_rss'])}")
        total = b["driver_peak_rss"] + args.workers * b["worker_peak_rss"]
        print(f"bound on the run's memory (driver + {args.workers} x largest worker): {gib(total)} "
              f"of this machine's {gib(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
