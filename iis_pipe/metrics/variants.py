"""The metric variants papers print, each by one exact name, computed from per-object arrays.

Names (the table header prints them as written here; ``T`` a threshold in per cent, ``K`` a
click budget, ``k`` a click count):

- ``NoC@T``: mean clicks to reach IoU >= T/100 within the run's clicks (counting the run's
  click budget when never reached; RITM's rule, ``noc.noc``).
- ``NoC@T/K``: the same within the first K clicks (FocSAM's NoC@95 within 100 clicks is
  ``NoC@95/100``); the run must have at least K clicks.
- ``NoF@T``, ``NoF@T/K``: objects whose NoC@T (within K) equals the budget (``noc.nof``).
- ``mIoU@k``: mean IoU after the k-th iterative click.
- ``5-mIoU``: the name some papers print for ``mIoU@5`` (mean IoU after 5 clicks).
- ``mIoU@k-once``: mean IoU of one prediction from k points given at once (the SAM-style
  protocol, ``pipelines.evaluate.run_at_once``), not after k corrective clicks.
- ``SPC``: seconds per click, mean over objects of (session seconds / clicks).

``ious`` is ``(N, K) float64`` (object n's IoU after clicks 1..K), ``seconds`` ``(N,)`` session
seconds, ``at_once`` a ``{k: (N,) IoU}`` mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from iis_pipe.metrics.noc import noc, nof

_PATTERNS = [
    ("noc", re.compile(r"^NoC@(\d+)(?:/(\d+))?$")),
    ("nof", re.compile(r"^NoF@(\d+)(?:/(\d+))?$")),
    ("miou_once", re.compile(r"^mIoU@(\d+)-once$")),
    ("miou", re.compile(r"^mIoU@(\d+)$")),
    ("miou", re.compile(r"^(\d+)-mIoU$")),
    ("spc", re.compile(r"^SPC$")),
]
DEFAULT = ("NoC@85", "NoC@90", "mIoU@1", "mIoU@5")


@dataclass(frozen=True)
class Metric:
    """A parsed name: ``kind`` (noc, nof, miou, miou_once, spc), its threshold (a fraction),
    click count ``k`` or budget ``budget`` (None: the run's)."""

    name: str
    kind: str
    threshold: float | None = None
    k: int | None = None
    budget: int | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.kind in ("noc", "nof", "spc")


def parse(name: str) -> Metric:
    """The metric a name stands for; ValueError naming the accepted forms otherwise."""
    for kind, pat in _PATTERNS:
        m = pat.match(name.strip())
        if not m:
            continue
        if kind in ("noc", "nof"):
            t = int(m.group(1))
            if not 0 < t <= 100:
                break
            budget = int(m.group(2)) if m.group(2) else None
            if budget is not None and budget < 1:
                break
            return Metric(name.strip(), kind, t / 100, budget=budget)
        if kind == "spc":
            return Metric("SPC", kind)
        k = int(m.group(1))
        if k < 1:
            break
        return Metric(name.strip(), kind, k=k)
    raise ValueError(f"unknown metric {name!r}: use NoC@T, NoC@T/K, NoF@T, NoF@T/K, mIoU@k, "
                     "k-mIoU, mIoU@k-once or SPC (T in per cent, K and k clicks)")


def compute(name: str | Metric, ious: np.ndarray, seconds: np.ndarray | None = None,
            at_once: Mapping[int, np.ndarray] | None = None) -> float:
    """The metric's value over the objects (NaN for no object); ValueError when the run lacks
    what it needs (fewer clicks than K or k, no at-once IoUs, no times)."""
    m = parse(name) if isinstance(name, str) else name
    ious = np.asarray(ious, np.float64)
    if ious.ndim != 2:
        raise ValueError(f"ious must be (N, K), got shape {ious.shape}")
    n, clicks = ious.shape
    if m.kind in ("noc", "nof"):
        budget = clicks if m.budget is None else m.budget
        if budget > clicks:
            raise ValueError(f"{m.name} needs {budget} clicks per object; the run has {clicks}")
        if m.kind == "nof":
            return float(nof(ious, m.threshold, budget))
        return float(noc(ious, m.threshold, budget).mean()) if n else float("nan")
    if m.kind == "miou":
        if m.k > clicks:
            raise ValueError(f"{m.name} needs {m.k} clicks per object; the run has {clicks}")
        return float(ious[:, m.k - 1].mean()) if n else float("nan")
    if m.kind == "miou_once":
        if not at_once or m.k not in at_once:
            have = sorted(at_once or ())
            raise ValueError(f"{m.name}: the run has no {m.k}-points-at-once IoUs "
                             f"(it has {have or 'none'}: evaluate with --at-once {m.k})")
        v = np.asarray(at_once[m.k], np.float64)
        return float(v.mean()) if len(v) else float("nan")
    if seconds is None:
        raise ValueError("SPC needs the objects' seconds")
    return float(np.mean(np.asarray(seconds, np.float64) / clicks)) if n else float("nan")


def describe(name: str | Metric, max_clicks: int | None = None) -> str:
    """One line saying what the column means (the table's footnote)."""
    m = parse(name) if isinstance(name, str) else name
    within = (f"within {m.budget} clicks" if m.budget else
              f"within the run's {max_clicks} clicks" if max_clicks else "within the run's clicks")
    if m.kind == "noc":
        return f"{m.name}: mean clicks to IoU >= {m.threshold:.2f} {within}"
    if m.kind == "nof":
        return (f"{m.name}: objects whose NoC@{round(100 * m.threshold)} is the click budget "
                f"({within})")
    if m.kind == "miou":
        return f"{m.name}: mean IoU after {m.k} iterative click{'s' if m.k > 1 else ''}"
    if m.kind == "miou_once":
        return f"{m.name}: mean IoU of one prediction from {m.k} points at once"
    return f"{m.name}: seconds per click"
