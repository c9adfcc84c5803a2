"""Shard sources: local paths, globs, brace lists, folders, ``http(s)://`` and ``pipe:`` URLs."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from braceexpand import braceexpand

from iis_pipe.records.schema import shard_glob
from iis_pipe.shards.index import MANIFEST_FILE, manifest_shards

REMOTE_PREFIXES = ("http://", "https://", "pipe:", "gs://", "s3://")


def is_remote(url: str) -> bool:
    return url.startswith(REMOTE_PREFIXES)


def expand_urls(spec: str | os.PathLike | list) -> list[str]:
    """Shard list of a spec: a list of specs, ``"a/shard-{000000..000009}.tar"``, a glob, a
    prepared dataset folder (the shards its manifest lists: ``IncompleteDataset`` when one is
    missing; a folder of shards without a manifest: its ``shard-*.tar``), a file, or a remote
    URL (kept as is).
    Raises FileNotFoundError naming the spec when a local one matches nothing."""
    if isinstance(spec, (list, tuple)):
        return [u for s in spec for u in expand_urls(s)]
    spec = str(spec)
    if is_remote(spec):
        return list(braceexpand(spec))
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
