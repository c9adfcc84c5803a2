"""Validation during training: the standard click protocol on a few evaluation images, and the
choice of the best checkpoint.

``load_sets`` reads the objects once (the first ``limit`` images of each source, in memory);
``validate`` runs ``evaluate.run_object`` on each with the model as a ``ModelPredictor`` and
returns per-dataset ``{"NoC@85", "NoC@90", "mIoU@1", "mIoU@5", "objects"}`` and their mean
over the datasets (key ``"mean"``), the numbers ``better`` compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from iis_pipe.metrics import noc
from iis_pipe.predictors.model import ModelPredictor
from iis_pipe.pipelines.evaluate import Protocol, dataset_name, iter_objects, run_object

METRICS = ("NoC@85", "NoC@90", "mIoU@1", "mIoU@5")


@dataclass(frozen=True)
class ValSet:
    """One validation source's objects: ``(image, gt, ignore)`` triples."""

    name: str
    objects: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]


def load_sets(sources: Sequence[str | Path], limit: int | None = 20,
              objects: str = "regions") -> list[ValSet]:
    """The objects of the first ``limit`` images of each source (dataset folder or shards)."""
    sets = []
    for src in sources:
        objs = [(im, gt, ign) for _, im, gt, ign in iter_objects(src, limit=limit,
                                                                 objects=objects)]
        if not objs:
            raise ValueError(f"{src}: no object to validate on")
        sets.append(ValSet(dataset_name(src), objs))
    return sets


def validate(model: torch.nn.Module, sets: Sequence[ValSet], *, max_clicks: int = 20,
             max_size: int = 480, device: torch.device | str = "cpu",
             maps: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on each set and their mean; the model is left in train mode."""
    protocol = Protocol(max_clicks=max(5, max_clicks))
    predictor = ModelPredictor(model, max_size=max_size, device=str(device), **(maps or {}))
    out: dict[str, dict[str, float]] = {}
    try:
        for vs in sets:
            ious = np.stack([run_object(predictor, im, gt, ign, protocol)[0]
                             for im, gt, ign in vs.objects])
            out[vs.name] = {"NoC@85": float(noc(ious, 0.85).mean()),
                            "NoC@90": float(noc(ious, 0.90).mean()),
                            "mIoU@1": float(ious[:, 0].mean()),
                            "mIoU@5": float(ious[:, 4].mean()), "objects": len(ious)}
    finally:
        model.train()
    out["mean"] = {m: float(np.mean([out[n][m] for n in out])) for m in METRICS}
    return out


def check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"best metric must be one of {METRICS}, got {name!r}")
    return name


def better(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet); NoC lower, mIoU higher is better.
    A tie keeps the earlier checkpoint."""
    if best is None:
        return True
    return value < best if metric.startswith("NoC") else value > best
