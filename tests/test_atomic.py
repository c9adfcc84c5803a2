"""Atomic writes: the whole new file or the old one, never part of one, and no temp file left."""

from __future__ import annotations

import os

import pytest

from iis_pipe import atomic


def test_write_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.json"
    atomic.atomic_write(path, b"first")
    atomic.atomic_write(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("existed", [True, False])
def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path, existed):
    path = tmp_path / "index.parquet"
    if existed:
        path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            # a reader meanwhile still sees the old file (or none)
            assert (path.read_bytes() == b"old") if existed else not path.exists()
            raise RuntimeError("disk full")
    assert (path.read_bytes() == b"old") if existed else not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["index.parquet"] if existed else [])


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    path.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        atomic.atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_temp_path_is_beside_the_target(tmp_path):
    assert atomic.temp_path(tmp_path / "shard-000001.tar") == tmp_path / "shard-000001.tar.tmp"
