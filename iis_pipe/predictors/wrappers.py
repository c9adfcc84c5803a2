"""Test-time transforms as predictor wrappers: RITM's zoom-in, SimpleClick's fixed crop,
horizontal-flip averaging. Each takes a predictor and is one (same signature, see
``iis_pipe.predictors``); all are off unless asked for, and ``wrap`` builds them from
``(name, options)`` specs that a run records.

Zoom-in (``ZoomIn``, RITM's ``inference/transforms/zoom_in.py`` behaviour): the first
``skip_clicks`` clicks of a session go to the base predictor on the whole image. From then on,
before each click, the region of interest is the bounding box of the previous prediction
(``prev > prob_thresh``) with the positive clicks added, grown about its centre by
``expansion_ratio`` (each side at least ``min_crop_size``), rounded, and clamped to the image;
the box in use is kept unless a positive click falls outside it or the new box's IoU with it
(RITM's product of the row and column overlaps) is below ``recompute_iou``. The base predictor
sees the crop of the image and of the previous output, resized so that its long side is
``target_size`` (an ``(h, w)`` pair resizes to that size whatever the aspect), and the clicks
inside the crop; its output is resized back into the box.

Edges: the grown box is clamped at the image border, not shifted, so near an edge the crop is
smaller than asked and off-centre (its aspect ratio changes with it); outside the box the output
is 0 as in RITM (``outside="zero"``), so an object part outside the box is lost until a positive
click there forces a new box (the masks "cut" by zoom-in, fbrs #29); ``outside="prev"`` keeps the
previous output there instead. A negative click outside the box is left out of the crop's clicks
(a positive one never is: the box holds them all). With no previous foreground the whole image
is used for ``skip_clicks < 0`` and the base predictor alone otherwise.

SimpleClick's fixed crop (``"fixed_crop"``) is ``ZoomIn(skip_clicks=-1, target_size=(448,
448))``: from the first click on (the whole image first, as nothing is predicted yet), the box
is resized to a fixed square.

The zoom keeps per-session state (the box in use), reset when a session's first click comes
(``len(clicks) == 1``): one session at a time per instance, as ``evaluate`` runs them.

Flip (``Flip``): the mean of the base predictor's output and the mirrored output on the
mirrored image, clicks and previous output (RITM's ``AddHorizontalFlip``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from iis_pipe.clicking import Click
from iis_pipe.geometry.box import Box, mask_bbox

OUTSIDE = ("zero", "prev")


def object_roi(mask: np.ndarray, clicks: Sequence[Click], expansion_ratio: float,
               min_crop_size: int) -> Box:
    """RITM's region of interest: the bounding box of ``mask`` (``(H, W) bool``) and the
    positive clicks, grown about its centre by ``expansion_ratio`` with each side at least
    ``min_crop_size``, rounded (Python's round, as RITM) and clamped to the image."""
    h, w = mask.shape
    pos = [(c.y, c.x) for c in clicks if c.positive]
    boxes = ([mask_bbox(mask)] if mask.any() else []) + [Box(y, y + 1, x, x + 1) for y, x in pos]
    if not boxes:
        raise ValueError("object_roi needs a foreground pixel or a positive click")
    box = Box.union(boxes)
    # RITM works on inclusive (rmin, rmax): centre (rmin + rmax) / 2, size rmax - rmin + 1
    out = []
    for lo, hi, n in ((box.y0, box.y1 - 1, h), (box.x0, box.x1 - 1, w)):
        centre = 0.5 * (lo + hi)
        size = max(expansion_ratio * (hi - lo + 1), min_crop_size)
        a, b = int(round(centre - 0.5 * size)), int(round(centre + 0.5 * size))
        out += [max(a, 0), min(b, n - 1) + 1]
    return Box(*out)


def box_iou(a: Box, b: Box) -> float:
    """RITM's ``get_bbox_iou``: the product of the row and the column segments' IoUs."""
    def seg(a0, a1, b0, b1):
        return max(0, min(a1, b1) - max(a0, b0)) / max(1e-6, max(a1, b1) - min(a0, b0))
    return seg(a.y0, a.y1, b.y0, b.y1) * seg(a.x0, a.x1, b.x0, b.x1)


def crop_size(box: Box, target_size: int | tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` the box is resized to: long side ``target_size``, or the given pair."""
    if isinstance(target_size, (tuple, list)):
        return int(target_size[0]), int(target_size[1])
    s = target_size / max(box.height, box.width)
    return max(1, int(round(box.height * s))), max(1, int(round(box.width * s)))


@dataclass
class ZoomIn:
    """RITM's zoom-in around the predicted object (see the module doc)."""

    base: Any
    target_size: int | tuple[int, int] = 400
    skip_clicks: int = 1
    expansion_ratio: float = 1.4
    min_crop_size: int = 200
    recompute_iou: float = 0.5
    prob_thresh: float = 0.49
    outside: str = "zero"
    roi: Box | None = field(default=None, repr=False, compare=False)  # the box in use

    def __post_init__(self):
        if self.outside not in OUTSIDE:
            raise ValueError(f"zoom outside must be one of {OUTSIDE}, got {self.outside!r}")
        if isinstance(self.target_size, list):
            self.target_size = tuple(self.target_size)
        if self.expansion_ratio <= 0 or self.min_crop_size < 0:
            raise ValueError("zoom expansion_ratio must be > 0 and min_crop_size >= 0")

    def region(self, clicks: Sequence[Click], prev: np.ndarray) -> Box | None:
        """The box this click's prediction uses (None: the whole image, unzoomed); updates the
        session's state."""
        if len(clicks) == 1:
            self.roi = None  # a new session
        if len(clicks) <= self.skip_clicks:
            return None
        fg = prev > self.prob_thresh
        if fg.any():
            now = object_roi(fg, clicks, self.expansion_ratio, self.min_crop_size)
        elif self.skip_clicks < 0:
            now = Box.of_shape(prev.shape)
        else:
            return None
        roi = self.roi
        if (roi is None or box_iou(now, roi) < self.recompute_iou
                or any(c.positive and not (roi.y0 <= c.y < roi.y1 and roi.x0 <= c.x < roi.x1)
                       for c in clicks)):
            self.roi = now
        return self.roi

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev: np.ndarray) -> np.ndarray:
        roi = self.region(clicks, prev)
        if roi is None:
            return self.base(image, clicks, prev)
        ch, cw = crop_size(roi, self.target_size)
        sy, sx = ch / roi.height, cw / roi.width
        img = cv2.resize(np.ascontiguousarray(image[roi.slices]), (cw, ch),
                         interpolation=cv2.INTER_LINEAR)
        prv = cv2.resize(np.ascontiguousarray(prev[roi.slices], np.float32), (cw, ch),
                         interpolation=cv2.INTER_LINEAR)
        # pixel centres map as the resize places them: (y - y0 + 0.5) * s - 0.5, rounded
        inside = [Click(min(ch - 1, int((c.y - roi.y0 + 0.5) * sy)),
                        min(cw - 1, int((c.x - roi.x0 + 0.5) * sx)), c.positive)
                  for c in clicks if roi.y0 <= c.y < roi.y1 and roi.x0 <= c.x < roi.x1]
        probs = np.asarray(self.base(img, inside, prv), np.float32)
        out = (np.array(prev, np.float32) if self.outside == "prev"
               else np.zeros(prev.shape, np.float32))
        out[roi.slices] = cv2.resize(probs, (roi.width, roi.height),
                                     interpolation=cv2.INTER_LINEAR)
        return out


@dataclass
class Flip:
    """Horizontal-flip test-time augmentation: the mean of both orientations' outputs."""

    base: Any

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev: np.ndarray) -> np.ndarray:
        w = image.shape[1]
        plain = np.asarray(self.base(image, clicks, prev), np.float32)
        mirrored = np.asarray(self.base(np.ascontiguousarray(image[:, ::-1]),
                                        [Click(c.y, w - 1 - c.x, c.positive) for c in clicks],
                                        np.ascontiguousarray(prev[:, ::-1])), np.float32)
        return 0.5 * (plain + mirrored[:, ::-1])


# name -> (class, the preset's options); a spec's options go on top of the preset's
WRAPPERS: dict[str, tuple[type, dict[str, Any]]] = {
    "zoom_in": (ZoomIn, {}),
    "fixed_crop": (ZoomIn, {"skip_clicks": -1, "target_size": (448, 448)}),
    "flip": (Flip, {}),
}


def wrapper_options(name: str) -> list[str]:
    """The options a wrapper takes (ValueError for an unknown name)."""
    if name not in WRAPPERS:
        raise ValueError(f"unknown predictor wrapper {name!r}; known: {', '.join(WRAPPERS)}")
    cls = WRAPPERS[name][0]
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("base", "roi")]


def resolve(specs: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each spec as ``{"name", **all its options}`` (the preset's merged with the given ones),
    as a run records it; ValueError names an unknown wrapper or option."""
    out = []
    for name, opts in specs:
        known = wrapper_options(name)
        unknown = sorted(set(opts) - set(known))
        if unknown:
            raise ValueError(f"predictor wrapper {name!r} has no option {unknown}; "
                             f"its options: {known}")
        cls, preset = WRAPPERS[name]
        defaults = {f.name: f.default for f in dataclasses.fields(cls)
                    if f.name in known}
        merged = {**defaults, **preset, **opts}
        if isinstance(merged.get("target_size"), list):
            merged["target_size"] = tuple(merged["target_size"])
        out.append({"name": name, **merged})
    return out


def wrap(predictor: Any, specs: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """``predictor`` inside the wrappers of ``specs``, the first spec innermost."""
    for spec in resolve(specs):
        opts = {k: v for k, v in spec.items() if k != "name"}
        predictor = WRAPPERS[spec["name"]][0](predictor, **opts)
    return predictor
