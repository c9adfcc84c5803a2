"""Dense COCO-style annotations over real DAVIS JPEGs, written by the benchmarks (seeded).

Each image gets ``n`` synthetic polygon objects (star-shaped, 8-16 vertices) whose areas are
log-uniform between 0.01 % and 20 % of the image (the shape of dense sets such as LVIS and
SA-1B: mostly small objects), placed uniformly inside the image, overlaps kept. The images are
not copied: the JSON's ``file_name`` points into the DAVIS ``img/`` folder (``images=``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

AREA_RANGE = (1e-4, 0.2)


def _polygon(rng: np.random.Generator, area: float, h: int, w: int) -> list[float]:
    """One star-shaped polygon of about ``area`` pixels inside an ``h x w`` image."""
    k = int(rng.integers(8, 17))
    angles = np.sort(rng.uniform(0, 2 * math.pi, k))
    radii = rng.uniform(0.5, 1.0, k)
    xs, ys = radii * np.cos(angles), radii * np.sin(angles)
    unit = 0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))
    s = math.sqrt(area / max(unit, 1e-6))
    xs, ys = xs * s, ys * s
    # keep it inside the image (the largest objects may be squeezed to fit)
    span_x, span_y = xs.max() - xs.min(), ys.max() - ys.min()
    fx, fy = min(1.0, (w - 2) / span_x), min(1.0, (h - 2) / span_y)
    xs, ys = xs * fx, ys * fy
    cx = rng.uniform(-xs.min(), w - 1 - xs.max())
    cy = rng.uniform(-ys.min(), h - 1 - ys.max())
    return np.round(np.stack([xs + cx, ys + cy], 1).reshape(-1), 2).tolist()


def write_dense_coco(images: list[Path], n_objects: int, out: Path, seed: int = 0) -> Path:
    """Write ``out/annotations/instances_dense.json`` for ``images`` (JPEG paths, one folder)
    with ``n_objects`` polygons each; returns the JSON's path."""
    rng = np.random.default_rng([seed, n_objects])
    entries, anns = [], []
    lo, hi = (math.log(a) for a in AREA_RANGE)
    for i, path in enumerate(images):
        with Image.open(path) as im:
            w, h = im.size
        entries.append({"id": i + 1, "file_name": path.name, "height": h, "width": w})
        for _ in range(n_objects):
            area = math.exp(rng.uniform(lo, hi)) * h * w
            poly = _polygon(rng, area, h, w)
            xs, ys = poly[0::2], poly[1::2]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                         "segmentation": [poly], "area": area, "iscrowd": 0,
                         "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]})
    data = {"images": entries, "annotations": anns,
            "categories": [{"id": 1, "name": "object"}]}
    path = Path(out) / "annotations" / "instances_dense.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
