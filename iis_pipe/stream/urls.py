"""Shard sources: local paths, globs, brace lists, folders, ``http(s)://``, fsspec URLs
(``s3://``, ``gs://``...: a shard, a glob, or a prepared dataset's folder) and ``pipe:``."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from braceexpand import braceexpand

from iis_pipe import storage
from iis_pipe.records.schema import shard_glob
from iis_pipe.shards.index import MANIFEST_FILE, manifest_shards


def is_remote(url: str) -> bool:
    """A ``pipe:`` command or a URL other than ``file://``."""
    return url.startswith("pipe:") or storage.is_url(url)


def _expand_remote(spec: str) -> list[str]:
    """A remote spec's shard URLs: brace lists expanded; on an fsspec store (not http), a glob
    is listed and a folder holding a ``manifest.json`` gives the manifest's shards."""
    urls = list(braceexpand(spec))
    if spec.startswith(("pipe:", "http://", "https://")):
        return urls
    out: list[str] = []
    for url in urls:
        if url.endswith(".tar") and not any(c in url for c in "*?["):
            out.append(url)
            continue
        where = storage.store(url if not any(c in url for c in "*?[") else url.rsplit("/", 1)[0])
        if any(c in url for c in "*?["):
            found = [where.name(n) for n in where.list(url.rsplit("/", 1)[1])]
        elif where.exists(MANIFEST_FILE):  # the dataset, as for a local folder
            found = manifest_shards(where)
        else:
            found = [where.name(n) for n in where.list(shard_glob())]
        if not found:
            raise FileNotFoundError(f"{url}: no shard found (expected a .tar, a glob, or a "
                                    "prepared dataset folder)")
        out.extend(found)
    return out


def expand_urls(spec: str | os.PathLike | list) -> list[str]:
    """Shard list of a spec: a list of specs, ``"a/shard-{000000..000009}.tar"``, a glob, a
    prepared dataset folder (the shards its manifest lists: ``IncompleteDataset`` when one is
    missing; a folder of shards without a manifest: its ``shard-*.tar``), a file, or a remote
    URL (a shard, a glob or a prepared folder on an fsspec store; ``http(s)://`` and ``pipe:``
    kept as they are).
    Raises FileNotFoundError naming the spec when a local one matches nothing."""
    if isinstance(spec, (list, tuple)):
        return [u for s in spec for u in expand_urls(s)]
    spec = str(spec)
    if is_remote(spec):
        return _expand_remote(spec)
    spec = str(storage.local_path(spec))
    out: list[str] = []
    for s in braceexpand(spec):
        p = Path(s)
        if p.is_dir() and (p / MANIFEST_FILE).is_file():
            found = [str(x) for x in manifest_shards(p)]  # the dataset, not the folder's files
        elif p.is_dir():
            found = sorted(str(x) for x in p.glob(shard_glob()))
        elif any(c in s for c in "*?["):
            found = sorted(glob.glob(s))
        else:
            found = [s] if p.is_file() else []
        if not found:
            raise FileNotFoundError(f"{s}: no shard found (expected a .tar, a glob, or a "
                                    "prepared dataset folder)")
        out.extend(found)
    return out
