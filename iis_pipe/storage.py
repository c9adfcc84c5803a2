"""Where a prepared dataset lives: a local folder or any fsspec URL (``s3://``, ``gs://``...).

Local folders keep the atomic rename of ``iis_pipe.atomic``. Object stores have no rename, so
an object is written once and complete: one put of the whole bytes, or (s3fs, large files) a
multipart upload, which becomes visible only when completed. A reader sees all of an object or
none of it; prepare writes a part's sidecar last, as the mark that the part exists.

Credentials and endpoints come from where the store's own library looks (for S3 the standard
``AWS_*`` variables such as ``AWS_ENDPOINT_URL`` and ``AWS_ACCESS_KEY_ID``, profiles, instance
roles) or from fsspec ``storage_options``; this module never records or prints them: messages
name the URL only.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from iis_pipe import atomic

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(spec: str | os.PathLike) -> bool:
    """``spec`` is a URL (``s3://``, ``http://``...) rather than a local path; ``file://`` URLs
    count as local paths."""
    text = str(spec)
    return bool(_URL.match(text)) and not text.startswith("file://")


def local_path(spec: str | os.PathLike) -> Path:
    """The local path of a path or ``file://`` URL."""
    text = str(spec)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


@dataclass(frozen=True)
class Store:
    """A folder: ``local`` (a Path) or ``fs`` + ``root`` (an fsspec filesystem and the folder's
    path on it). ``url`` is the folder as the user named it, for messages."""

    url: str
    local: Path | None = None
    fs: Any = None
    root: str = ""

    def name(self, name: str) -> str:
        """The full name (path or URL) of the file ``name`` in this folder, for messages and
        for readers that take URLs."""
        return str(self.local / name) if self.local is not None else f"{self.url}/{name}"

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    def exists(self, name: str) -> bool:
        if self.local is not None:
            return (self.local / name).is_file()
        return self.fs.isfile(self._path(name))

    def size(self, name: str) -> int:
        if self.local is not None:
            return (self.local / name).stat().st_size
        return int(self.fs.size(self._path(name)))

    def read_bytes(self, name: str) -> bytes:
        if self.local is not None:
            return (self.local / name).read_bytes()
        return self.fs.cat_file(self._path(name))

    def open(self, name: str) -> BinaryIO:
        """A binary file object for reading ``name`` (seekable)."""
        if self.local is not None:
            return open(self.local / name, "rb")
        return self.fs.open(self._path(name), "rb")

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` whole: an atomic rename locally, one complete object remotely."""
        if self.local is not None:
            (self.local / name).parent.mkdir(parents=True, exist_ok=True)
            atomic.atomic_write(self.local / name, data)
        else:
            self.fs.pipe_file(self._path(name), data)

    def staging(self, name: str) -> Path:
        """A local path to build ``name`` at before :meth:`commit` (beside the target locally,
        so the rename stays on one file system; in a temporary folder for a remote store)."""
        if self.local is not None:
            return atomic.temp_path(self.local / name)
        return Path(tempfile.mkdtemp(prefix="iis-pipe-")) / Path(name).name

    def commit(self, staged: Path, name: str) -> None:
        """Publish the file built at ``staging(name)`` as ``name`` (the staged file goes)."""
        if self.local is not None:
            atomic.commit(staged, self.local / name)
            return
        try:
            self.fs.put_file(str(staged), self._path(name))
        finally:
            staged.unlink(missing_ok=True)
            staged.parent.rmdir()

    def discard(self, staged: Path) -> None:
        """Drop a staged file that will not be committed."""
        staged.unlink(missing_ok=True)
        if self.local is None:
            try:
                staged.parent.rmdir()
            except OSError:
                pass

    def remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""
        if self.local is not None:
            (self.local / name).unlink(missing_ok=True)
        elif self.fs.isfile(self._path(name)):
            self.fs.rm_file(self._path(name))

    def list(self, pattern: str = "*", folder: str = "") -> list[str]:
        """Sorted names (relative to this folder) of the files in ``folder`` matching the
        glob ``pattern``."""
        if self.local is not None:
            base = self.local / folder
            found = [p.relative_to(self.local).as_posix() for p in base.glob(pattern)
                     if p.is_file()] if base.is_dir() else []
            return sorted(found)
        base = self._path(folder)
        try:
            entries = self.fs.ls(base, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        names = []
        for e in entries:
            base_name = e["name"].rstrip("/").rsplit("/", 1)[-1]
            if e["type"] == "file" and fnmatch.fnmatchcase(base_name, pattern):
                names.append(f"{folder}/{base_name}" if folder else base_name)
        return sorted(names)

    def files(self) -> list[str]:
        """Every file under the folder, sorted names relative to it (``parts/...`` too)."""
        if self.local is not None:
            if not self.local.is_dir():
                return []
            return sorted(p.relative_to(self.local).as_posix() for p in self.local.rglob("*")
                          if p.is_file())
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return []
        return sorted(p[len(self.root) + 1:] for p in found if p.startswith(self.root + "/"))

    def is_empty(self) -> bool:
        """No file at all under the folder (a missing folder is empty)."""
        if self.local is not None:
            return not self.local.exists() or not any(self.local.iterdir())
        try:
            return not self.fs.find(self.root, maxdepth=None)
        except FileNotFoundError:
            return True

    def make(self) -> None:
        """Create the folder (object stores need nothing)."""
        if self.local is not None:
            self.local.mkdir(parents=True, exist_ok=True)


def store(spec: str | os.PathLike | Store, storage_options: dict[str, Any] | None = None
          ) -> Store:
    """The folder a path or URL names. ``storage_options`` go to fsspec for URLs (e.g.
    ``{"client_kwargs": {"endpoint_url": ...}}``); by default the store's library finds its own
    credentials and endpoint."""
    if isinstance(spec, Store):
        return spec
    if not is_url(spec):
        return Store(url=str(local_path(spec)), local=local_path(spec))
    import fsspec

    text = str(spec).rstrip("/")
    fs, root = fsspec.core.url_to_fs(text, **(storage_options or {}))
    return Store(url=text, fs=fs, root=root.rstrip("/"))
