"""Atomic, resumable shard writing in "parts".

A part is one shard tar plus a JSON sidecar (``parts/<shard>.json``) listing its records, their
index rows and the rejects met while it was open. The tar is written under a temporary name and
renamed when complete, then the sidecar is renamed: a part exists once its sidecar does, so a
reader never sees half a shard and ``--resume`` knows exactly which inputs are done.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from iis_pipe import atomic
from iis_pipe.records.schema import SHARD_PREFIX, shard_glob, shard_name
from iis_pipe.shards import tar as tario
from iis_pipe.errors import FormatError
from iis_pipe.shards.index import read_json, write_json

PARTS_DIR = "parts"
RUN_FILE = "run.json"  # the parameters of the run, under parts/, checked by --resume


class PartWriter:
    """Writes records in order into shards capped by ``max_bytes`` and ``max_count``."""

    def __init__(self, out_dir: str | Path, *, first_part: int = 0, max_bytes: int = 256_000_000,
                 max_count: int = 10_000, prefix: str = SHARD_PREFIX):
        if max_bytes <= 0 or max_count <= 0:
            raise ValueError("shard size and count caps must be positive")
        self.out = Path(out_dir)
        (self.out / PARTS_DIR).mkdir(parents=True, exist_ok=True)
        self.part, self.max_bytes, self.max_count, self.prefix = first_part, max_bytes, max_count, prefix
        self._tar: tarfile.TarFile | None = None
        self._reset()

    def _reset(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._regions: list[dict[str, Any]] = []
        self._rejects: list[dict[str, Any]] = []
        self._bytes = 0

    @property
    def _shard(self) -> Path:
        return self.out / shard_name(self.part, self.prefix)

    def add_record(self, key: str, members: dict[str, bytes], rows: list[dict[str, Any]],
                   checksum: str, notes: dict[str, Any] | None = None) -> None:
        """``notes``: plain facts about how the record was made (e.g. its mask encoding), kept
        in the sidecar for the manifest, not in the shard."""
        size = sum(len(v) for v in members.values())
        if self._records and (self._bytes + size > self.max_bytes
                              or len(self._records) >= self.max_count):
            self.finish_part()
        with atomic.naming(atomic.temp_path(self._shard)):
            if self._tar is None:
                self._tar = tarfile.open(atomic.temp_path(self._shard), "w",
                                         format=tarfile.USTAR_FORMAT)
            self._bytes += tario.add_record(self._tar, key, members)
        name = self._shard.name
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
            with atomic.naming(atomic.temp_path(self._shard)):
                self._tar.close()
                self._tar = None
                atomic.commit(atomic.temp_path(self._shard), self._shard)
            shard = self._shard.name
        sidecar = {"part": self.part, "shard": shard, "bytes": self._bytes,
                   "records": self._records, "regions": self._regions, "rejects": self._rejects}
        write_json(sidecar, self.out / PARTS_DIR / f"{self.prefix}-{self.part:06d}.json")
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
        atomic.temp_path(self._shard).unlink(missing_ok=True)
        self._reset()


def finished_parts(out_dir: str | Path, prefix: str = SHARD_PREFIX) -> list[dict[str, Any]]:
    """Sidecars of the complete parts, in order; removes leftovers of an interrupted part."""
    out = Path(out_dir)
    parts = []
    for p in sorted((out / PARTS_DIR).glob(f"{prefix}-*.json")):
        side = read_json(p)
        if side["shard"] is not None and not (out / side["shard"]).is_file():
            raise FormatError(str(p), f"its shard {side['shard']} is missing; the output folder "
                                      "was changed by hand, start again with --overwrite")
        parts.append(side)
    done = {s["shard"] for s in parts}
    tmp = f"*{atomic.TMP_SUFFIX}"
    for leftover in list(out.glob(tmp)) + list((out / PARTS_DIR).glob(tmp)):
        leftover.unlink()
    for tar in out.glob(shard_glob(prefix)):
        if tar.name not in done:  # renamed but its sidecar never was: redo that part
            tar.unlink()
    return parts
