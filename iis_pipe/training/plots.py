"""A training run's log as a person reads it: loss, validation NoC and learning rate against the
step, one PNG (matplotlib, Agg backend).

``log.jsonl`` (``pipelines.train``) has a line per step (``step``, ``loss``, ``lr``, times) and a
line per validation (``step``, ``val``: per-dataset and ``mean`` metrics, ``val_s``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iis_pipe.metrics.plots import save_figure

LOG_FILE = "log.jsonl"


def read_log(run: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(step lines, validation lines)`` of a run folder's (or the file's) log; a truncated last
    line (a run killed mid-write) is left out. FileNotFoundError without a log."""
    path = Path(run)
    path = path / LOG_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no {LOG_FILE}; is it a training run folder?")
    steps, vals = [], []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        (vals if "val" in rec else steps).append(rec)
    return steps, vals


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Running mean over the last ``window`` values (fewer at the start)."""
    v = np.asarray(values, np.float64)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))  # c[i]: the sum of the first i values
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def plot_training(runs: Sequence[tuple[str, str | Path]], out: str | Path) -> Path:
    """One PNG with three panels, every run in each: loss (raw and a running mean) and learning
    rate against the step, and validation NoC@85/90 (mean over the validation sources)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    logs = [(label, *read_log(path)) for label, path in runs]
    if not any(steps for _, steps, _ in logs):
        raise ValueError("no training step in the logs to plot")
    fig, (ax_loss, ax_val, ax_lr) = plt.subplots(3, 1, figsize=(7, 8.5), dpi=110, sharex=True)
    try:
        for i, (label, steps, vals) in enumerate(logs):
            colour = f"C{i}"
            x = [r["step"] for r in steps]
            loss = [r["loss"] for r in steps]
            ax_loss.plot(x, loss, color=colour, alpha=0.25, linewidth=0.7)
            ax_loss.plot(x, smooth(loss, max(1, len(loss) // 25)), color=colour, label=label)
            if any("lr" in r for r in steps):
                ax_lr.plot([r["step"] for r in steps if "lr" in r],
                           [r["lr"] for r in steps if "lr" in r], color=colour, label=label)
            for metric, style in (("NoC@85", "--"), ("NoC@90", "-")):
                pts = [(r["step"], r["val"]["mean"][metric]) for r in vals
                       if metric in r["val"].get("mean", {})]
                if pts:
                    ax_val.plot(*zip(*pts), style, marker="o", markersize=3, color=colour,
                                label=f"{label} {metric}")
        if not any(vals for _, _, vals in logs):
            ax_val.text(0.5, 0.5, "no validation in these runs (train --val)", ha="center",
                        va="center", transform=ax_val.transAxes, color="grey")
        ax_loss.set(ylabel="loss", title="training")
        ax_val.set(ylabel="validation NoC (mean)")
        ax_lr.set(ylabel="learning rate", xlabel="step")
        for ax in (ax_loss, ax_val, ax_lr):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, out)
