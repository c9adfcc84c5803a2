"""Atomic, resumable shard writing in "parts".

A part is one shard tar plus a JSON sidecar (``parts/<shard>.json``) listing its records, their
index rows and the rejects met while it was open. The tar is built aside and published whole
(a rename locally, one complete object on a store, see ``iis_pipe.storage``), then the sidecar:
a part exists once its sidecar does, so a reader never sees half a shard and ``--resume`` knows
exactly which inputs are done.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from iis_pipe import atomic
from iis_pipe.storage import Store, store
from iis_pipe.records.schema import SHARD_PREFIX, shard_glob, shard_name
from iis_pipe.shards import tar as tario
from iis_pipe.errors import FormatError
from iis_pipe.shards.index import json_bytes, read_json

PARTS_DIR = "parts"
RUN_FILE = "run.json"  # the parameters of the run, under parts/, checked by --resume


class PartWriter:
    """Writes records in order into shards capped by ``max_bytes`` and ``max_count``."""

    def __init__(self, out_dir: str | Path | Store, *, first_part: int = 0,
                 max_bytes: float = 256_000_000, max_count: float = 10_000,
                 prefix: str = SHARD_PREFIX):
        if max_bytes <= 0 or max_count <= 0:
            raise ValueError("shard size and count caps must be positive")
        self.out = store(out_dir)
        self.out.make()
        self.part, self.max_bytes, self.max_count, self.prefix = first_part, max_bytes, max_count, prefix
        self._tar: tarfile.TarFile | None = None
        self._staged: Path | None = None
        self._reset()

    def _reset(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._regions: list[dict[str, Any]] = []
        self._rejects: list[dict[str, Any]] = []
        self._bytes = 0

    @property
    def _shard(self) -> str:
        return shard_name(self.part, self.prefix)

    def add_record(self, key: str, members: dict[str, bytes], rows: list[dict[str, Any]],
                   checksum: str, notes: dict[str, Any] | None = None) -> None:
        """``notes``: plain facts about how the record was made (e.g. its mask encoding), kept
        in the sidecar for the manifest, not in the shard."""
        size = sum(len(v) for v in members.values())
        if self._records and (self._bytes + size > self.max_bytes
                              or len(self._records) >= self.max_count):
            self.finish_part()
        if self._tar is None:
            self._staged = self.out.staging(self._shard)
        with atomic.naming(self._staged):
            if self._tar is None:
                self._tar = tarfile.open(self._staged, "w", format=tarfile.USTAR_FORMAT)
            self._bytes += tario.add_record(self._tar, key, members)
        name = self._shard
        self._records.append({"key": key, "checksum": checksum, "bytes": size,
                              "member_bytes": {k: len(v) for k, v in members.items()},
                              **({"notes": notes} if notes else {})})
        self._regions.extend({**r, "shard": name} for r in rows)

    def add_reject(self, key: str, file: str, reason: str, input_id: str = "") -> None:
        """``input_id`` identifies the input for ``--resume`` (a key alone may be shared by a
        good image and a clashing file)."""
        self._rejects.append({"key": key, "file": file, "reason": reason,
                              "input": input_id or key})

    def finish_part(self) -> None:
        """Close the open part (if it holds anything) atomically and start the next."""
        if not self._records and not self._rejects:
            return
        shard = None
        if self._tar is not None:
            with atomic.naming(self._staged):
                self._tar.close()
                self._tar = None
                self.out.commit(self._staged, self._shard)
            self._staged = None
            shard = self._shard
        sidecar = {"part": self.part, "shard": shard, "bytes": self._bytes,
                   "records": self._records, "regions": self._regions, "rejects": self._rejects}
        self.out.write_bytes(sidecar_name(self.part, self.prefix), json_bytes(sidecar))
        self.part += 1
        self._reset()

    def close(self) -> None:
        self.finish_part()

    def abort(self) -> None:
        """Drop the open part (used on errors; finished parts stay for ``--resume``)."""
        if self._tar is not None:
            try:
                self._tar.close()
            except OSError:  # the part is dropped anyway (a full disk fails its flush too)
                pass
            self._tar = None
        if self._staged is not None:
            self.out.discard(self._staged)
            self._staged = None
        self._reset()


def sidecar_name(part: int, prefix: str = SHARD_PREFIX) -> str:
    """Where part ``part``'s sidecar lives, relative to the dataset folder."""
    return f"{PARTS_DIR}/{prefix}-{part:06d}.json"


def finished_parts(out_dir: str | Path | Store, prefix: str = SHARD_PREFIX
                   ) -> list[dict[str, Any]]:
    """Sidecars of the complete parts, in order; removes leftovers of an interrupted part."""
    out = store(out_dir)
    parts = []
    for name in out.list(f"{prefix}-*.json", PARTS_DIR):
        side = read_json(out.name(name), out.read_bytes(name))
        if side["shard"] is not None and not out.exists(side["shard"]):
            raise FormatError(out.name(name), f"its shard {side['shard']} is missing; the "
                                              "output folder was changed by hand, start again "
                                              "with --overwrite")
        parts.append(side)
    done = {s["shard"] for s in parts}
    tmp = f"*{atomic.TMP_SUFFIX}"
    for leftover in out.list(tmp) + out.list(tmp, PARTS_DIR):
        out.remove(leftover)
    for tar in out.list(shard_glob(prefix)):
        if tar not in done:  # published but its sidecar never was: redo that part
            out.remove(tar)
    return parts
