"""Click simulation speed vs the plain numpy/OpenCV statements of the same rules, one core.

    taskset -c 0 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/bench_clicks.py        (IIS_DATA: folder holding DAVIS/)

Same measurement as ``iis-pipe bench clicks`` (``iis_pipe/profiling/clicks.py``); prints a table
of figures and ratios measured in this run. The exit status does not depend on the targets.
"""

from __future__ import annotations

import _single_core  # noqa: F401  (must come first)

import argparse
import sys

from iis_pipe.data_root import data_root
from iis_pipe.profiling.clicks import ClickBenchParams, report, run


def main(argv=None) -> int:
    d = ClickBenchParams()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(data_root()), help="folder holding DAVIS/")
    ap.add_argument("--masks", type=int, default=d.masks, help="DAVIS frames, evenly spaced")
    ap.add_argument("--clicks", type=int, default=d.clicks, help="clicks per simulated session")
    ap.add_argument("--samples", type=int, default=d.samples, help="training samples")
    ap.add_argument("--batch", type=int, default=d.batch, help="encoder batch size B")
    ap.add_argument("--points", type=int, default=d.points, help="N, clicks per side")
    ap.add_argument("--seed", type=int, default=d.seed)
    a = ap.parse_args(argv)
    try:
        res = run(a.data, ClickBenchParams(a.masks, a.clicks, a.samples, a.batch, a.points, a.seed))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
