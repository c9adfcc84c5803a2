"""mIoU against the number of clicks, several runs on one figure (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def plot_miou(curves: Sequence[tuple[str, Sequence[float]]], out: str | Path,
              title: str = "mIoU per click") -> Path:
    """Write a PNG of each ``(label, (K,) mIoU)`` curve against clicks 1..K; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("no curve to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    try:
        kmax = 1
        for label, curve in curves:
            y = np.asarray(curve, np.float64)
            x = np.arange(1, len(y) + 1)
            ax.plot(x, y, marker="o", markersize=3, linewidth=1.5, label=label)
            kmax = max(kmax, len(y))
        for t in (0.85, 0.90):
            ax.axhline(t, color="grey", linewidth=0.6, linestyle=":")
        ax.set(xlabel="clicks", ylabel="mIoU", title=title, xlim=(0.5, kmax + 0.5))
        ax.set_xticks(range(1, kmax + 1, 1 if kmax <= 20 else 5))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, out)


def save_figure(fig, out: str | Path) -> Path:
    """Lay out ``fig``, write it to ``out`` (folders made as needed) and close it; returns the
    path. Every plot of the project ends here."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
