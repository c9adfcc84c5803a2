"""One browser tab's session as a value: the image, its target object (when there is ground
truth), the clicks so far and the predictor's output after each. Pure functions return a new
session; the server only stores them.

The protocol is evaluation's (``iis_pipe.pipelines.evaluate.run_object``): the predictor gets the image,
all clicks and its previous output (zeros before the first click), the mask is ``probs >
threshold`` and the IoU excludes ignore pixels. ``undo`` goes back to the previous output, so
the next click sees exactly what it would have seen without the undone one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from iis_pipe.clicking import Click, standard
from iis_pipe.metrics import THRESHOLDS, iou
from iis_pipe.predictors import Predictor


@dataclass(frozen=True)
class Session:
    """``image (H, W, 3) uint8``; ``gt``/``ignore`` ``(H, W) bool`` of the target object, or
    None without ground truth; ``probs[k]`` ``(H, W) float32`` after click k + 1."""

    image: np.ndarray
    gt: np.ndarray | None = None
    ignore: np.ndarray | None = None
    threshold: float = 0.49
    clicks: tuple[Click, ...] = ()
    probs: tuple[np.ndarray, ...] = ()
    ious: tuple[float, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


def start(image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None,
          threshold: float = 0.49) -> Session:
    """A session without clicks; ``ValueError`` when the masks do not match the image."""
    shape = image.shape[:2]
    for name, m in (("gt", gt), ("ignore", ignore)):
        if m is not None and m.shape != shape:
            raise ValueError(f"{name} {m.shape} does not match the image {shape}")
    return Session(image, gt, ignore, threshold)


def check_click(session: Session, click: Click) -> None:
    """``ValueError`` naming the click when it lies outside the image."""
    h, w = session.shape
    if not (0 <= click.y < h and 0 <= click.x < w):
        raise ValueError(f"click (y={click.y}, x={click.x}) outside the {h}x{w} image")


def add_click(session: Session, predictor: Predictor, click: Click) -> Session:
    """The session after ``click``: the predictor's new output (its previous one fed back) and,
    with ground truth, the IoU. Raises ``ValueError`` for a click outside the image or a
    predictor output of the wrong shape; the predictor's own errors propagate."""
    check_click(session, click)
    clicks = (*session.clicks, click)
    prev = session.probs[-1] if session.probs else np.zeros(session.shape, np.float32)
    probs = np.asarray(predictor(session.image, list(clicks), prev), np.float32)
    if probs.shape != session.shape:
        raise ValueError(f"predictor returned {probs.shape}, expected {session.shape}")
    ious = session.ious
    if session.gt is not None:
        ious = (*ious, float(iou(session.gt, probs > session.threshold, session.ignore)))
    return replace(session, clicks=clicks, probs=(*session.probs, probs), ious=ious)


def undo(session: Session) -> Session:
    """The session before its last click (unchanged without clicks)."""
    n = max(0, len(session.clicks) - 1)
    return replace(session, clicks=session.clicks[:n], probs=session.probs[:n],
                   ious=session.ious[:n])


def reset(session: Session) -> Session:
    return replace(session, clicks=(), probs=(), ious=())


def mask(session: Session) -> np.ndarray:
    """``(H, W) bool``: the current mask (empty before the first click)."""
    if not session.probs:
        return np.zeros(session.shape, bool)
    return session.probs[-1] > session.threshold


def robot_click(session: Session) -> Click | None:
    """The standard robot's next click on the current mask (None without ground truth)."""
    if session.gt is None:
        return None
    return standard(session.gt, mask(session), session.ignore, session.clicks)


def noc(session: Session) -> dict[str, int | None]:
    """``{"85": k, "90": k, "95": k}``: the first click whose IoU reached each threshold (None
    while not reached), as NoC counts them."""
    out: dict[str, int | None] = {}
    for t in THRESHOLDS:
        hit = [k + 1 for k, v in enumerate(session.ious) if v >= t]
        out[str(round(100 * t))] = hit[0] if hit else None
    return out
