"""Seeded synthetic data set, the built-in default: no files, deterministic in (seed, index).

Each image has a textured background and 1-4 textured shapes (ellipses, polygons, rotated
rectangles). Later shapes occlude earlier ones, so instances are the visible parts and never
overlap; the first shape sometimes crosses the image border, and sometimes a thin ignore band
surrounds one object (like GrabCut's). Images are JPEG-encoded so the JPEG path (validation, re-coding) is
exercised exactly as with real photos.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from iis_pipe.errors import BadInput
from iis_pipe.images import read_image_bytes
from iis_pipe.sources._common import make_sample, record_key
from iis_pipe.sources.types import Sample, SourceItem

NAME = "toy"
LAYOUT = "no folder: root None or 'toy'"
JPEG_QUALITY = 90


def detect(root: Path | str | None) -> bool:
    """Only the explicit name (or nothing): a real folder called ``toy`` is left to the others."""
    return root is None or (str(root) == NAME and not Path(root).exists())


def scan(root: Path | str | None = None, *, split: str = "train", count: int = 48, seed: int = 0,
         height: int = 240, width: int = 320) -> Iterator[SourceItem | BadInput]:
    """``count`` items ``toy/s{seed}/{index:05d}``; ``extra`` holds what ``load`` draws from."""
    if not detect(root):
        raise ValueError(f"the toy source reads no files; pass root=None or 'toy', not {root!r}")
    for name, value, low in (("count", count, 0), ("seed", seed, 0), ("height", height, 32),
                             ("width", width, 32)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"toy {name} must be an integer >= {low}, not {value!r}")
    for index in range(count):
        yield SourceItem(record_key(NAME, f"s{seed}", f"{index:05d}"), NAME, split, {},
                         {"seed": seed, "index": index, "height": height, "width": width})


def load(item: SourceItem) -> Sample:
    """Draw the image and its instances (K in 1..4, disjoint, non-empty)."""
    x = item.extra
    h, w = x["height"], x["width"]
    rng = np.random.default_rng([x["seed"], x["index"]])
    image = texture(rng, h, w)
    shapes = []
    for i in range(int(rng.integers(1, 5))):
        shape = draw_shape(rng, h, w, cross_border=i == 0 and rng.random() < 0.3)
        image[shape] = texture(rng, h, w)[shape]
        shapes.append(shape)
    # Each shape loses what later shapes cover; the last one is whole.
    visible, covered = [], np.zeros((h, w), bool)
    for shape in reversed(shapes):
        visible.insert(0, shape & ~covered)
        covered |= shape
    ignore = np.zeros((h, w), bool)
    if rng.random() < 0.3:
        band_of = visible[int(rng.integers(len(visible)))].astype(np.uint8)
        kernel = np.ones((3, 3), np.uint8)
        ignore = (cv2.dilate(band_of, kernel, iterations=2) > cv2.erode(band_of, kernel, iterations=1))
    kept = [v & ~ignore for v in visible if (v & ~ignore).any()]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise BadInput(item.key, "could not JPEG-encode the toy image", item.key)
    encoded = read_image_bytes(jpeg.tobytes(), item.key)
    return make_sample(item, encoded, kept, [{"label": 1} for _ in kept], ignore, [],
                       image_file=f"<toy seed={x['seed']} index={x['index']}>", mask_encoding="generated")


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """``(H, W, 3) float`` RGB: a base colour, smooth colour blotches, grain and maybe stripes."""
    base = rng.uniform(40, 215, 3)
    coarse = rng.normal(0, 30, (int(rng.integers(2, 8)), int(rng.integers(2, 8)), 3))
    out = base + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 6, (h, w, 1))
    if rng.random() < 0.5:
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        yy, xx = np.mgrid[0:h, 0:w]
        phase = 2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period
        out += rng.uniform(10, 40) * np.sin(phase)[..., None]
    return out


def draw_shape(rng: np.random.Generator, h: int, w: int, cross_border: bool) -> np.ndarray:
    """``(H, W) bool`` ellipse, star-like polygon or rotated rectangle, 12-35% of the short side
    in radius; ``cross_border`` puts its centre on an image edge."""
    radius = rng.uniform(0.12, 0.35) * min(h, w)
    cy, cx = rng.uniform(radius, h - radius), rng.uniform(radius, w - radius)
    if cross_border:
        if rng.random() < 0.5:
            cx = float(rng.choice([0, w - 1]))
        else:
            cy = float(rng.choice([0, h - 1]))
    mask = np.zeros((h, w), np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(radius), int(radius * rng.uniform(0.4, 1.0)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        if kind == 1:
            n = int(rng.integers(5, 10))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = radius * rng.uniform(0.45, 1.0, n)
            points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
        else:
            size = (float(2 * radius), float(2 * radius * rng.uniform(0.3, 1.0)))
            points = cv2.boxPoints(((float(cx), float(cy)), size, float(rng.uniform(0, 90))))
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)
