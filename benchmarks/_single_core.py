"""Pin the benchmark to one core with library threads set to 1, before numpy/cv2 load."""

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import cv2  # noqa: E402

cv2.setNumThreads(1)


def data_root():
    from pathlib import Path

    root = Path(os.environ.get("IIS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root
