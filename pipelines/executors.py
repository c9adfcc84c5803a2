"""The seam where work over images meets an executor: in-process, a process pool, or any
``concurrent.futures.Executor`` (a dask.distributed client's ``get_executor()`` plugs in)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
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
    OpenCV, numba) held at that instant, and a child can hang on one forever. They end when
    this process dies (``die_with_parent``).
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        yield pool


def die_with_parent(parent: int) -> None:
    """Pool initializer: the worker ends when the process that started it dies, even by
    ``kill -9`` (no orphans left computing; the resource tracker then sees its last user go
    and ends too). Linux: the kernel's parent-death signal; elsewhere a thread that watches
    the parent's pid."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before the signal was armed
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], executor: Executor | None,
                window: int = 16, on_error: Callable[[Any, BaseException], Any] | None = None
                ) -> Iterator[Any]:
    """``map`` in input order with at most ``window`` tasks in flight (bounded memory).

    ``on_error(item, exc)``: the result of an item whose task raised in a worker (or could not
    travel to or from it), instead of the exception ending the map."""
    if executor is None:
        yield from map(fn, items)
        return
    pending: deque = deque()

    def result(item_future):
        item, future = item_future
        try:
            return future.result()
        except Exception as e:
            if on_error is None:
                raise
            return on_error(item, e)

    for item in items:
        pending.append((item, executor.submit(fn, item)))
        if len(pending) >= window:
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())
