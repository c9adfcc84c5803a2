"""A predictor that needs no weights: OpenCV's GrabCut seeded from the clicks and the previous
mask, at a reduced working resolution (real numbers on a fresh machine, in seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import cv2
import numpy as np

from iis_pipe.clicking import Click
from iis_pipe.predictors.options import Option


@dataclass(frozen=True)
class GrabCut:
    """``GrabCut()(image, clicks, prev) -> probs``, see ``iis_pipe.predictors``.

    At the working size (long side ``size``; smaller images are used as they are) every pixel
    starts as probable foreground where ``prev > 0.49`` and probable background elsewhere; each
    click paints a disk of ``radius`` pixels of sure foreground (positive) or sure background
    (negative). Before any foreground exists (the first click) a positive click also paints a
    probable-foreground disk of radius ``prior`` times the short side, from which the colour
    models start. ``iterations`` rounds of GrabCut (colour GMMs, then a graph cut) follow; the
    binary result is upsampled bilinearly, so ``probs`` is soft only along the boundary.
    """

    # On GrabCut and Berkeley, 224 or 256 pixels and a second iteration gave no better NoC
    # (within 0.3 clicks) for up to 2x the time; the previous mask carries the iterations over.
    size: int = 192
    iterations: int = 1
    radius: int = 3
    prior: float = 0.25

    OPTIONS: ClassVar[dict[str, Option]] = {
        "size": Option(int, 8, 8192), "iterations": Option(int, 1, 50),
        "radius": Option(int, 1, 1000), "prior": Option(float, 0, 1)}  # 0: clicks alone

    def __call__(self, image: np.ndarray, clicks: Sequence[Click], prev: np.ndarray) -> np.ndarray:
        big_h, big_w = image.shape[:2]
        s = min(1.0, self.size / max(big_h, big_w))
        h, w = max(1, round(big_h * s)), max(1, round(big_w * s))
        small = image if s == 1 else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        prev_small = prev if s == 1 else cv2.resize(prev, (w, h), interpolation=cv2.INTER_LINEAR)
        fg = prev_small > 0.49
        mask = np.where(fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        # Pixel centres map to the working grid: (x + 0.5) * s - 0.5, rounded.
        pts = [(min(w - 1, int((c.x + 0.5) * s)), min(h - 1, int((c.y + 0.5) * s)), c.positive)
               for c in clicks]
        if not fg.any():
            r = max(1, round(self.prior * min(h, w)))
            for x, y, pos in pts:
                if pos:
                    cv2.circle(mask, (x, y), r, cv2.GC_PR_FGD, -1)
        for x, y, pos in pts:
            cv2.circle(mask, (x, y), self.radius, cv2.GC_FGD if pos else cv2.GC_BGD, -1)
        is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        # GrabCut fits one colour model per side: with a side empty the answer is already known.
        if is_fg.any() and not is_fg.all():
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            # The colour models start from k-means++ on OpenCV's global RNG: reseed it so that
            # the output is a function of the inputs, not of the calls before (or the worker).
            cv2.setRNGSeed(0)
            cv2.grabCut(np.ascontiguousarray(small), mask, None, bgd, fgd, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
            is_fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        out = is_fg.astype(np.float32)
        return out if s == 1 else cv2.resize(out, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
