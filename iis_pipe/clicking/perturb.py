"""Fake predictions with realistic error patterns, for tests and benchmarks of click robots.

A model's mask after a few clicks is wrong along the object boundary (too thin or too fat, a
little shifted), misses parts (holes), and adds or drops blobs. ``perturb`` composes those from
the ground truth with a seeded generator; ``correct_near`` plays a model answering a click.
"""

from __future__ import annotations

import cv2
import numpy as np


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _blobs(shape, rng, centres, max_r) -> np.ndarray:
    """Random ellipses centred on the flat pixel indices ``centres``."""
    out = np.zeros(shape, np.uint8)
    for i in centres:
        c = (int(i % shape[1]), int(i // shape[1]))
        axes = (int(rng.integers(2, max_r + 1)), int(rng.integers(2, max_r + 1)))
        cv2.ellipse(out, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return out.astype(bool)


def perturb(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(H, W) bool`` prediction: ``gt`` eroded or dilated, shifted, with holes in the object
    and blobs anywhere."""
    pred = gt.astype(np.uint8)
    r = int(rng.integers(1, 8))
    op = cv2.erode if rng.random() < 0.5 else cv2.dilate
    pred = op(pred, _disk(r))
    dy, dx = (int(v) for v in rng.integers(-4, 5, size=2))
    pred = np.roll(pred, (dy, dx), axis=(0, 1)).astype(bool)
    scale = max(4, int(np.sqrt(max(gt.sum(), 1)) / 6))
    on_object = np.flatnonzero(gt)
    holes = rng.choice(on_object, size=int(rng.integers(0, 4))) if on_object.size else []
    inside = _blobs(gt.shape, rng, holes, scale) & gt
    outside = _blobs(gt.shape, rng, rng.integers(gt.size, size=int(rng.integers(0, 4))), scale) & ~gt
    return (pred & ~inside) | outside


def correct_near(pred: np.ndarray, gt: np.ndarray, y: int, x: int, radius: int) -> np.ndarray:
    """``pred`` with the disk of ``radius`` around ``(y, x)`` set to ``gt`` (a model's answer)."""
    out = pred.copy()
    y0, y1 = max(y - radius, 0), min(y + radius + 1, gt.shape[0])
    x0, x1 = max(x - radius, 0), min(x + radius + 1, gt.shape[1])
    yy, xx = np.ogrid[y0:y1, x0:x1]
    disk = (yy - y) ** 2 + (xx - x) ** 2 <= radius * radius
    out[y0:y1, x0:x1][disk] = gt[y0:y1, x0:x1][disk]
    return out


def session_states(gt, ignore, rng, num_clicks, robot):
    """``[(pred, past clicks, robot's click)]`` of a simulated session of ``num_clicks`` clicks
    from a ``perturb``-ed start: after each click the model fixes a disk of random radius around
    it, or (30 %) ignores it, so later states keep errors next to past clicks."""
    pred, clicks, states = perturb(gt, rng), [], []
    for _ in range(num_clicks):
        c = robot(gt, pred, ignore, clicks)
        states.append((pred, list(clicks), c))
        clicks.append(c)
        if rng.random() < 0.7:
            pred = correct_near(pred, gt, c.y, c.x, int(rng.integers(3, 30)))
    return states
