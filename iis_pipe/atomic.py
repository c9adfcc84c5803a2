"""Atomic file writes: a reader sees the old file or the whole new one, never part of one.

The data goes to ``<name>.tmp`` beside the target (same folder, so the rename cannot cross file
systems), is flushed to disk, and is renamed over the target; the folder is then flushed so the
rename survives a crash too. A failed write removes the temporary file and leaves the target as
it was. Leftover ``*.tmp`` files (a killed process) are what ``shards.writer.finished_parts``
cleans up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_path(path: str | os.PathLike) -> Path:
    """Where ``path`` is written before :func:`commit`: ``<path>.tmp``."""
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush the written file ``tmp`` to disk and rename it over ``path``."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(Path(path).parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder that cannot be opened (some platforms): the rename stands
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """An ``OSError`` from the block that names no file (a failed ``write()``: a full disk)
    is raised again naming ``path``, so the message says where."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """The temporary path to write ``path`` through: committed when the block ends, removed
    (and ``path`` untouched) when it raises."""
    tmp = temp_path(path)
    try:
        with naming(tmp):
            yield tmp
            commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
