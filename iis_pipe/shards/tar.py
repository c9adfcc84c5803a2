"""Reading and writing records as webdataset tar members (``{key}.{suffix}``)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from iis_pipe.errors import BadInput
from iis_pipe.remote import OnRetry, ResumableReader, RetryPolicy
from iis_pipe.storage import is_url, local_path

T = TypeVar("T")


def split_name(name: str) -> tuple[str, str]:
    """``"dir/key.sfx.png" -> ("dir/key", "sfx.png")``: webdataset's rule, first dot of the
    basename."""
    head, _, base = name.rpartition("/")
    stem, dot, suffix = base.partition(".")
    if not dot:
        return name, ""
    return (f"{head}/{stem}" if head else stem), suffix


def add_record(tar: tarfile.TarFile, key: str, members: dict[str, bytes]) -> int:
    """Append one record; returns the bytes of payload written. Deterministic headers."""
    total = 0
    for suffix, data in members.items():
        info = tarfile.TarInfo(f"{key}.{suffix}")
        info.size = len(data)
        info.mode = 0o444
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
        total += len(data)
    return total


def group_members(path: str | Path, open_tar: Callable[[], tarfile.TarFile],
                  value: Callable[[tarfile.TarFile, tarfile.TarInfo], T], check_end: bool = True,
                  size: Callable[[], int | None] | None = None
                  ) -> Iterator[tuple[str, dict[str, T]]]:
    """Yield ``(key, {suffix: value(tar, info)})`` for the file members of the tar that
    ``open_tar()`` opens, grouping consecutive members by key (``split_name``).

    ``path`` names the shard in errors; ``check_end``: also require the two end-of-archive
    blocks after the last member in the file at ``path``, or within ``size()`` bytes when given
    (tarfile stops quietly when a cut falls between members). A truncated or corrupt tar, or a
    ``tarfile.TarError`` from ``value``, raises ``BadInput`` naming the shard and the last good
    key, after the whole records before it have been yielded.
    """
    key, members = None, {}
    last = "<start>"
    end = 0
    try:
        with open_tar() as tar:
            for info in tar:
                end = info.offset_data + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                if not info.isfile():
                    continue
                k, suffix = split_name(info.name)
                if k != key:
                    if key is not None:
                        yield key, members
                        last = key
                    key, members = k, {}
                members[suffix] = value(tar, info)
        if check_end:
            total = os.path.getsize(path) if size is None else size()
            if total is not None and total < end + 2 * tarfile.BLOCKSIZE:
                raise tarfile.ReadError("end-of-archive blocks missing")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BadInput(str(path), f"truncated or corrupt tar after record {last!r} ({e})",
                       key=key) from None
    if key is not None:
        yield key, members


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    data = f.read() if f is not None else b""
    if len(data) != info.size:
        raise tarfile.ReadError(f"member {info.name} is short")
    return data


def iter_records(path: str | Path, stream: BinaryIO | None = None,
                 size: Callable[[], int | None] | None = None
                 ) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {suffix: bytes})`` from a shard, grouping consecutive members by key.

    ``stream``: read from this file object instead of opening ``path`` (which then only
    names the shard in errors); ``size()``: the shard's length, to check its end in the stream.
    A truncated or corrupt tar raises ``BadInput`` naming the shard and the last good key,
    after the whole records before it have been yielded.
    """
    return group_members(
        path, lambda: tarfile.open(path if stream is None else None, "r|", fileobj=stream),
        _member_bytes, check_end=stream is None or size is not None, size=size)


def iter_shard(url: str, policy: RetryPolicy = RetryPolicy(), on_retry: OnRetry | None = None
               ) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``iter_records`` of a shard at a local path or a URL; a URL is read with resumed
    connections (``iis_pipe.remote``) and its end checked against the object's length."""
    if not is_url(url):
        yield from iter_records(local_path(url))
        return
    raw = ResumableReader(url, policy, on_retry)
    with io.BufferedReader(raw, buffer_size=1 << 20) as stream:
        yield from iter_records(url, stream, size=lambda: raw.size)
