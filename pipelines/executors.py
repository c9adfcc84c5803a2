"""The seam where work meets an executor: in-process, a process pool, any
``concurrent.futures.Executor``, or a Dask cluster (``dask_client``) for one task per shard."""

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

LOCAL_CLUSTER = "local:"  # "local:N": a Dask cluster of N worker processes on this machine


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


@contextmanager
def dask_client(cluster: Any, retries: int = 2) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster``: a scheduler address (``tcp://host:8786``),
    ``"local:N"`` (a cluster of N single-threaded worker processes on 127.0.0.1, no
    dashboard, closed on exit), or a ``Client`` to use as it is.

    A local cluster gives up on a task after ``retries`` + 1 worker deaths
    (``distributed.scheduler.allowed-failures``); an existing scheduler keeps its own setting.
    """
    from distributed import Client

    if isinstance(cluster, Client):
        yield cluster
        return
    text = str(cluster)
    if not text.startswith(LOCAL_CLUSTER):
        with Client(text) as client:
            yield client
        return
    import dask
    from distributed import LocalCluster

    try:
        n = int(text[len(LOCAL_CLUSTER):])
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{text!r}: a local cluster is 'local:N' with N >= 1 worker processes")
    # one shard task per worker thread at a time: a task is long, and a lost worker then
    # takes only its running task with it
    with dask.config.set({"distributed.scheduler.allowed-failures": retries,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc, Client(lc) as client:
            yield client
