"""The seam where work over images meets an executor: in-process, a process pool, or any
``concurrent.futures.Executor`` (a dask.distributed client's ``get_executor()`` plugs in)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Any


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def make_executor(workers: int | None) -> Iterator[Executor | None]:
    """``None`` (run in this process) for ``workers <= 1``, else a process pool.

    Workers are spawned, not forked: a fork copies whatever locks the parent's threads (torch,
    OpenCV, numba) held at that instant, and a child can hang on one forever.
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        yield pool


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], executor: Executor | None,
                window: int = 16) -> Iterator[Any]:
    """``map`` in input order with at most ``window`` tasks in flight (bounded memory)."""
    if executor is None:
        yield from map(fn, items)
        return
    pending: deque = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
