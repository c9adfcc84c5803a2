"""Record references from shards, cheap enough to scan a whole epoch in every worker.

Local tars are scanned header by header (member data is skipped with a seek), so a record
reference is ``(key, url, {suffix: (offset, size)})`` and its bytes are read only if this
worker decodes it. Remote shards are streamed (``iis_pipe.remote``: a dropped or stalled
connection resumes at the byte where it stopped) and their members kept as bytes.
"""

from __future__ import annotations

import os
import tarfile
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from typing import BinaryIO, NamedTuple

from iis_pipe.errors import BadInput
from iis_pipe.remote import OnRetry, RetryPolicy
from iis_pipe.shards.tar import group_members, iter_records, iter_shard
from iis_pipe.stream.urls import is_remote


class RecordRef(NamedTuple):
    key: str
    url: str
    members: dict  # suffix -> (offset, size) for local shards, suffix -> bytes for remote ones


# (path, size, mtime) -> (references, fault): a resampled stream passes over the shards again
# and again, and every worker scans the whole epoch; parsing the tar headers each time is a
# sizeable share of a sample's time (README, benchmark notes).
_SCANS: OrderedDict[tuple[str, int, int], tuple[tuple[RecordRef, ...], BadInput | None]] = \
    OrderedDict()
SCAN_CACHE_SHARDS = 4096


def scan_local(path: str) -> Iterator[RecordRef]:
    """References of the records of a local tar; a cut or corrupt tar raises ``BadInput`` after
    the whole records before the fault. Remembered per process while the file keeps its size
    and modification time."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadInput(path, f"cannot open shard ({e.strerror or e})") from None
    ident = (path, st.st_size, st.st_mtime_ns)
    hit = _SCANS.get(ident)
    if hit is None:
        refs: list[RecordRef] = []
        try:
            refs.extend(_scan_tar(path))
            hit = (tuple(refs), None)
        except BadInput as e:
            hit = (tuple(refs), e)
        _SCANS[ident] = hit
        if len(_SCANS) > SCAN_CACHE_SHARDS:
            _SCANS.popitem(last=False)
    else:
        _SCANS.move_to_end(ident)
    yield from hit[0]
    if hit[1] is not None:
        raise hit[1]


def _member_span(tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[int, int]:
    return info.offset_data, info.size


def _scan_tar(path: str) -> Iterator[RecordRef]:
    for key, members in group_members(path, lambda: tarfile.open(path, "r:"), _member_span):
        yield RecordRef(key, path, members)


def scan_remote(url: str, policy: RetryPolicy = RetryPolicy(),
                on_retry: OnRetry | None = None) -> Iterator[RecordRef]:
    """Records of a remote shard: ``http(s)://`` and fsspec URLs (``s3://``, ``gs://``...)
    through ``iis_pipe.remote`` (resumed after drops and stalls, ``policy``; each reopening
    reported to ``on_retry``), ``pipe:COMMAND`` through webdataset's opener. A shard that
    cannot be read to its end raises ``BadInput`` after its whole records."""
    if not url.startswith("pipe:"):
        for key, members in iter_shard(url, policy, on_retry):
            yield RecordRef(key, url, members)
        return
    from webdataset.gopen import gopen

    try:
        stream = gopen(url, "rb")
    except OSError as e:
        raise BadInput(url, f"cannot start ({e})") from None
    try:
        for key, members in iter_records(url, stream):
            yield RecordRef(key, url, members)
    finally:
        try:
            stream.close()
        except OSError as e:  # the command failed (curl's exit status, for one)
            raise BadInput(url, f"the command failed ({e})") from None


def scan(urls: list[str], on_error: Callable[[BadInput], None],
         policy: RetryPolicy = RetryPolicy(), on_retry: OnRetry | None = None
         ) -> Iterator[RecordRef]:
    """References of all records of ``urls`` in order; a faulty shard is reported through
    ``on_error`` (which may raise) and the stream goes on with the next one. ``policy`` and
    ``on_retry``: see ``scan_remote``."""
    for url in urls:
        try:
            yield from (scan_remote(url, policy, on_retry) if is_remote(url)
                        else scan_local(url))
        except BadInput as e:
            on_error(e)


class OpenFiles:
    """A few shard files kept open: a shuffle buffer interleaves records of nearby shards."""

    def __init__(self, limit: int = 16):
        self.limit = limit
        self.files: OrderedDict[str, BinaryIO] = OrderedDict()

    def get(self, path: str) -> BinaryIO:
        f = self.files.pop(path, None)
        if f is None:
            f = open(path, "rb")
            if len(self.files) >= self.limit:
                self.files.popitem(last=False)[1].close()
        self.files[path] = f
        return f

    def close(self) -> None:
        while self.files:
            self.files.popitem()[1].close()


class LazyMember:
    """A local record's member read on demand: ``m[a:b]`` reads bytes ``[a, b)`` of it only,
    ``bytes(m)`` all of it (a dense record's distance member holds every region's maps; a
    sample reads its targets' spans)."""

    __slots__ = ("ref", "files", "suffix", "offset", "size")

    def __init__(self, ref: RecordRef, files: OpenFiles, suffix: str):
        self.ref, self.files, self.suffix = ref, files, suffix
        self.offset, self.size = ref.members[suffix]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, part: slice) -> bytes:
        a, b, step = part.indices(self.size)
        if step != 1:
            raise ValueError("a member is read in one piece")
        fd = self.files.get(self.ref.url).fileno()
        return _pread(self.ref, fd, self.suffix, self.offset + a, max(b - a, 0))

    def __bytes__(self) -> bytes:
        return self[:]


def _pread(ref: RecordRef, fd: int, suffix: str, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise BadInput(ref.url, f"record {ref.key!r}: member {suffix} is cut short", ref.key)
    return data


def read_members(ref: RecordRef, files: OpenFiles, lazy: Collection[str] = ()
                 ) -> dict[str, bytes | LazyMember]:
    """The bytes of a referenced record; of a local one, the members named in ``lazy`` as
    ``LazyMember``s (read when and where they are used)."""
    if is_remote(ref.url):
        return ref.members
    fd = files.get(ref.url).fileno()
    return {suffix: LazyMember(ref, files, suffix) if suffix in lazy else
            _pread(ref, fd, suffix, offset, size)
            for suffix, (offset, size) in ref.members.items()}
