"""Reading a remote object from start to end over a network that drops and stalls.

``ResumableReader`` is a sequential binary file over an ``http(s)://`` URL (plain HTTP range
requests) or any fsspec URL (``s3://``, ``gs://``...; ranged reads of the store's library). A
connection that drops, stalls for ``stall`` seconds, or is refused is reopened at the byte where
it stopped, after a backoff; so the bytes the caller reads are exactly the object's, none lost
and none repeated. Only failures without progress count against ``retries``: a connection that
delivered bytes before it dropped resets the count. When the retries are spent, or at once for
an answer that retrying cannot change (404, 403), it raises ``BadInput`` naming the URL, the
byte and the reason.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iis_pipe.errors import BadInput

HTTP_PREFIXES = ("http://", "https://")
# Answers after which the same request can succeed later.
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a remote read tries before it gives up on an object."""

    retries: int = 5          # reopenings in a row without a byte of progress
    backoff: float = 0.5      # seconds before the first reopening, doubled each time
    max_backoff: float = 8.0
    stall: float = 30.0       # seconds without a byte before a connection counts as stalled

    def __post_init__(self):
        if self.retries < 0 or self.backoff < 0 or self.stall <= 0:
            raise ValueError(f"retries and backoff must be >= 0 and stall > 0: {self}")


class _Final(Exception):
    """A failure that no retry can mend (the object is missing, access is refused)."""


# (url, byte offset, reason) of one reopening
OnRetry = Callable[[str, int, str], None]


class ResumableReader(io.RawIOBase):
    """A read-only, sequential file over ``url`` that resumes dropped connections."""

    def __init__(self, url: str, policy: RetryPolicy = RetryPolicy(),
                 on_retry: OnRetry | None = None,
                 storage_options: dict[str, Any] | None = None):
        super().__init__()
        self.url, self.policy, self.on_retry = url, policy, on_retry
        self.storage_options = storage_options or {}
        self.pos = 0
        self.size: int | None = None
        self.retries = 0        # reopenings so far (all of them, for the caller's report)
        self._validator: str | None = None  # the HTTP ETag / Last-Modified of the first answer
        self._body: Any = None
        self._fs: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        failures = 0
        while True:
            try:
                if self._body is None:
                    self._open()
                if self.size is not None and self.pos >= self.size:
                    return 0
                n = self._body.readinto(buf)
                if not n and self.size is not None and self.pos < self.size:
                    raise ConnectionError(f"connection closed at byte {self.pos} of {self.size}")
                self.pos += n or 0
                return n or 0
            except _Final as e:
                self._drop()
                raise BadInput(self.url, str(e)) from None
            except BadInput:
                self._drop()
                raise
            except Exception as e:  # any transport failure: reopen where the bytes stopped
                self._drop()
                reason = _describe(e)
                if failures >= self.policy.retries:
                    raise BadInput(self.url, f"gave up at byte {self.pos}"
                                   f"{'' if self.size is None else f' of {self.size}'} after "
                                   f"{failures} retries ({reason})") from None
                failures += 1
                self.retries += 1
                if self.on_retry is not None:
                    self.on_retry(self.url, self.pos, reason)
                time.sleep(min(self.policy.backoff * 2 ** (failures - 1),
                               self.policy.max_backoff))

    def _open(self) -> None:
        if self.url.startswith(HTTP_PREFIXES):
            self._open_http()
        else:
            self._open_fsspec()

    def _open_http(self) -> None:
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        if self.pos and self._validator:
            headers["If-Range"] = self._validator  # a changed object answers 200, see below
        request = urllib.request.Request(self.url, headers=headers)
        try:
            resp = urllib.request.urlopen(request, timeout=self.policy.stall)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and self.size is not None:  # nothing left past the end
                self._body = io.BytesIO()
                return
            if e.code in _TRANSIENT_HTTP:
                raise ConnectionError(f"HTTP {e.code} {e.reason}") from None
            raise _Final(f"HTTP {e.code} {e.reason}") from None
        validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range", ""))
            if start != self.pos:
                resp.close()
                raise _Final(f"asked for byte {self.pos}, the server sent from {start}")
        elif self.pos:
            resp.close()
            if self._validator and validator != self._validator:
                raise _Final("the object changed while it was being read")
            raise _Final("the server does not answer range requests, so a dropped "
                         f"connection cannot resume at byte {self.pos}")
        if self._validator is None:
            self._validator = validator
            length = resp.headers.get("Content-Length")
            if length is not None and resp.status == 200:
                self.size = int(length)
        self._body = resp

    def _open_fsspec(self) -> None:
        if self._fs is None:
            import fsspec

            options = dict(self.storage_options)
            if self.url.startswith("s3://"):  # botocore's own stall and connect timeouts
                config = {"read_timeout": self.policy.stall, "connect_timeout": self.policy.stall}
                options["config_kwargs"] = {**config, **options.get("config_kwargs", {})}
            self._fs, self._path = fsspec.core.url_to_fs(self.url, **options)
        try:
            f = self._fs.open(self._path, "rb")
        except (FileNotFoundError, PermissionError) as e:
            raise _Final(f"{type(e).__name__}: {e.strerror or e}") from None
        if self.size is None:
            self.size = f.size
        f.seek(self.pos)
        self._body = f

    def _drop(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:  # a broken connection may fail to close too; it is gone anyway
                pass

    def close(self) -> None:
        self._drop()
        super().close()


def _range_start(content_range: str) -> int | None:
    """``"bytes 100-199/200"`` -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _describe(e: BaseException) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "stalled: no byte within the stall timeout"
    if isinstance(e, http.client.IncompleteRead):
        return f"connection dropped ({len(e.partial)} bytes of the last read)"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect ({e.reason})"
    return f"{type(e).__name__}: {e}"
