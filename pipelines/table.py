"""``table``: several evaluation runs into one paper table, datasets as columns.

Each run folder's ``samples.parquet`` gives the per-object IoUs (and seconds, at-once IoUs), so
any metric of ``iis_pipe.metrics.variants`` is computed from them, not only those in
``summary.json``. A row per run name (its robot and predictor wrappers included; runs of one name
on different datasets share the row), a column group per
dataset (in the order first met), a column per metric under its exact name; below the table a
line per metric says what it means, and the protocol of each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow.parquet as pq

from iis_pipe.metrics.variants import DEFAULT, compute, describe, parse
from iis_pipe.pipelines.evaluate import SAMPLES_FILE, read_summary, run_label

FORMATS = ("markdown", "latex")


@dataclass(frozen=True)
class RunData:
    """One run: its label, summary, and per dataset ``(ious (N, K), seconds (N,), {k: (N,)})``."""

    label: str
    summary: dict[str, Any]
    datasets: dict[str, tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]]


def load_run(run: str | Path) -> RunData:
    """A run folder's summary and evaluated objects (failed ones left out, as in its summary)."""
    summary = read_summary(run)
    path = Path(run) / SAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no {SAMPLES_FILE}; is it an evaluation run folder?")
    rows = pq.read_table(path).to_pylist()
    k = summary["protocol"]["max_clicks"]
    ks = list(summary["protocol"].get("at_once", []))
    data = {}
    for d in summary["datasets"]:
        good = [r for r in rows if r["dataset"] == d["dataset"] and r["error"] is None]
        ious = np.array([r["ious"] for r in good], np.float64).reshape(len(good), k)
        secs = np.array([r["seconds"] for r in good], np.float64)
        once = {kk: np.array([r["at_once"][j] for r in good], np.float64)
                for j, kk in enumerate(ks)} if ks else {}
        data[d["dataset"]] = (ious, secs, once)
    return RunData(run_label(summary), summary, data)


def build(runs: Sequence[RunData], metrics: Sequence[str] = DEFAULT,
          datasets: Sequence[str] | None = None) -> tuple[list[str], list[str], list[list[str]]]:
    """``(datasets, metrics, rows)``: ``rows[i]`` is run i's label then a cell per dataset and
    metric ("-" where the run lacks the dataset). ValueError for an unknown metric or one a run
    cannot give (e.g. NoC@95/100 of a 20-click run)."""
    parsed = [parse(m) for m in metrics]
    if datasets is None:
        datasets = list(dict.fromkeys(d for r in runs for d in r.datasets))
    rows = []
    for r in runs:
        cells = [r.label]
        for d in datasets:
            for m in parsed:
                if d not in r.datasets:
                    cells.append("-")
                    continue
                ious, secs, once = r.datasets[d]
                try:
                    v = compute(m, ious, secs, once)
                except ValueError as e:
                    raise ValueError(f"run {r.label!r}, {d}: {e}") from None
                cells.append(_fmt(m.kind, v))
        rows.append(cells)
    return list(datasets), [m.name for m in parsed], rows


def _fmt(kind: str, v: float) -> str:
    if np.isnan(v):
        return "-"
    return {"noc": f"{v:.2f}", "nof": f"{int(v)}", "spc": f"{v:.3f}"}.get(kind, f"{v:.3f}")


def notes(runs: Sequence[RunData], metrics: Sequence[str]) -> list[str]:
    """The lines under a table: each metric's meaning, each run's protocol and objects."""
    clicks = sorted({r.summary["protocol"]["max_clicks"] for r in runs})
    out = [describe(m, clicks[0] if len(clicks) == 1 else None) for m in metrics]
    for r in runs:
        p = r.summary["protocol"]
        counts = ", ".join(f"{d} {len(v[0])}" for d, v in r.datasets.items())
        out.append(f"{r.label}: {p.get('robot', 'standard')} robot, {p['max_clicks']} clicks, "
                   f"threshold {p['threshold']}, objects: {counts}")
    return out


def markdown(datasets, metrics, rows, footer: Sequence[str] = ()) -> str:
    head = ["Run"] + [f"{d} {m}" for d in datasets for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines + ([""] + [f"- {f}" for f in footer] if footer else []))


def _tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%#_$":
        out = out.replace(ch, "\\" + ch)
    return out


def latex(datasets, metrics, rows, footer: Sequence[str] = ()) -> str:
    """A ``tabular`` with a dataset row (``\\multicolumn``) over the metric row (booktabs rules)."""
    n = len(metrics)
    lines = [r"\begin{tabular}{l" + ("|" + "c" * n) * len(datasets) + "}", r"\toprule",
             "Run & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{_tex(d)}}}" for d in datasets)
             + r" \\",
             " & " + " & ".join(_tex(m) for _ in datasets for m in metrics) + r" \\",
             r"\midrule"]
    lines += [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {f}" for f in footer]
    return "\n".join(lines)


def merge_rows(runs: Sequence[RunData]) -> list[RunData]:
    """Runs of one label (one method, e.g. evaluated on DAVIS apart) as one row, in the order
    first met; a dataset two of them give is refused (which one would the table show?)."""
    rows: dict[str, RunData] = {}
    for r in runs:
        if r.label not in rows:
            rows[r.label] = RunData(r.label, r.summary, dict(r.datasets))
            continue
        row = rows[r.label]
        both = sorted(set(row.datasets) & set(r.datasets))
        if both:
            raise ValueError(f"two runs named {r.label!r} both give {', '.join(both)}: "
                             "rename one (evaluate --name)")
        if row.summary["protocol"] != r.summary["protocol"]:
            raise ValueError(f"runs named {r.label!r} differ in protocol "
                             f"({row.summary['protocol']} vs {r.summary['protocol']})")
        row.datasets.update(r.datasets)
    return list(rows.values())


def table(runs: Sequence[str | Path], metrics: Sequence[str] = DEFAULT, fmt: str = "markdown",
          datasets: Sequence[str] | None = None) -> str:
    """The table of evaluation run folders ``runs`` in ``fmt`` (markdown or latex); runs of one
    name share a row (``merge_rows``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if not runs:
        raise ValueError("no run to tabulate")
    data = merge_rows([load_run(r) for r in runs])
    ds, ms, rows = build(data, metrics, datasets)
    render = markdown if fmt == "markdown" else latex
    return render(ds, ms, rows, notes(data, ms))
