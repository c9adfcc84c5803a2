"""Output folders of long runs (prepare, train, evaluate): one writer at a time, and
``--overwrite`` that decides before it deletes.

The lock is ``fcntl.flock`` on ``<folder>/.iis-pipe.lock``, which holds the holder's pid, host
and start time for the refusal message. The kernel drops the lock when its process dies, even
by ``kill -9``, so a stale lock file is never in the way: the next run takes it over. The file
is removed when the run ends; a run that finds it replaced under it tries again.
"""

from __future__ import annotations

import fcntl
import fnmatch
import os
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from iis_pipe.errors import FolderBusy, FolderNotEmpty

LOCK_FILE = ".iis-pipe.lock"


@contextmanager
def locked(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for the block; ``FolderBusy`` names the holder
    when another live process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
            os.close(fd)
            raise FolderBusy(str(folder), holder or "a process starting up") from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file between our open and lock: lock the new one
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def entries(folder: Path) -> list[Path]:
    """What ``folder`` holds, less the lock file (missing folder: nothing)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name != LOCK_FILE)


def clear(folder: str | os.PathLike, owned: Sequence[str], *, overwrite: bool, hint: str) -> None:
    """Make sure ``folder`` holds nothing of an earlier run before a fresh one starts.

    Empty or missing: nothing to do. Else, without ``overwrite``, ``FolderNotEmpty`` ending in
    ``hint`` (what to do). With ``overwrite``, every entry must match one of the ``owned``
    name patterns (the run's own files): one that does not is refused, naming it, before
    anything is deleted; then the owned entries are removed.
    """
    folder = Path(folder)
    found = entries(folder)
    if not found:
        return
    if not overwrite:
        raise FolderNotEmpty(f"{folder} is not empty: {hint}")
    foreign = [p.name for p in found if not any(fnmatch.fnmatch(p.name, pat) for pat in owned)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise FolderNotEmpty(f"{folder}: --overwrite deletes only an earlier run's files, and "
                             f"the folder also holds {shown}; nothing was deleted: move those "
                             "or choose another folder")
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
