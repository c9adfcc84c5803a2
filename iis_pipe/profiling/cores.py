"""One core, one library thread: the setting every per-core figure is measured in."""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def pin_one_core() -> None:
    """Pin this process to its first allowed core with one thread in each library: the thread
    variables of OpenMP, MKL, OpenBLAS and numba (read when those libraries load, so call this
    before importing numpy or numba for them to count), OpenCV's and torch's thread pools."""
    for var in THREAD_VARIABLES:
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
