"""Operating-system and format errors end every command in one line naming the path and the
reason, with exit status 1 (no traceback); a full disk then ``--resume`` gives the very output
of an uninterrupted run."""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.shards import tar as tario

TOY = ["-O", "count=6", "-O", "height=64", "-O", "width=80"]


@pytest.fixture
def toy(small_toy):
    return small_toy


def _one_line_error(r, *words):
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output
    for w in words:
        assert w in lines[0], r.output


def _mount(path: Path, *options: str) -> bool:
    path.mkdir(exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def _commands(toy, out):
    """Each writing command with ``out`` as its output."""
    return {
        "prepare": ["prepare", "toy", *TOY, "-o", str(out), "-w", "1", "-q"],
        "train": ["train", str(toy), "-o", str(out), "-m", "timm:ghostnet_050", "--recipe",
                  "plain", "--steps", "1", "-w", "0", "--device", "cpu", "-q"],
        "evaluate": ["evaluate", str(toy), "-o", str(out), "-w", "1", "-q", "--limit", "1",
                     "--max-clicks", "1"],
        "show": ["show", str(toy), "-o", str(out / "p.png")],
    }


@pytest.mark.parametrize("where", ["under a file", "under /sys"])
@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "show"])
def test_unwritable_output_paths_are_one_line(toy, tmp_path, command, where):
    if where == "under a file":
        (tmp_path / "file.txt").write_text("x")
        out = tmp_path / "file.txt" / "out"
    else:
        out = Path("/sys/iis-pipe-test/out")
    r = CliRunner().invoke(main, _commands(toy, out)[command])
    _one_line_error(r, str(out).split("/out")[0])


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "show"])
def test_read_only_output_folder_is_one_line(toy, tmp_path, command):
    ro = tmp_path / "ro"
    if _mount(ro, "ro", "size=1m"):
        try:
            r = CliRunner().invoke(main, _commands(toy, ro / "out")[command])
        finally:
            _umount(ro)
    elif os.geteuid() != 0:
        ro.mkdir(exist_ok=True)
        ro.chmod(0o555)
        r = CliRunner().invoke(main, _commands(toy, ro / "out")[command])
    else:
        pytest.skip("root without mount: no read-only folder to test")
    _one_line_error(r, str(ro))


@pytest.mark.parametrize("file,content", [("manifest.json", b"{not json"),
                                          ("manifest.json", b'{"shards": 3}'),
                                          ("index.parquet", b"PAR1 garbage"),
                                          ("rejects.parquet", b"garbage")])
@pytest.mark.parametrize("command", ["inspect", "verify", "show", "evaluate"])
def test_garbage_dataset_files_are_one_line(toy, tmp_path, command, file, content):
    d = Path(shutil.copytree(toy, tmp_path / "d"))
    (d / file).write_bytes(content)
    args = {"inspect": ["inspect", str(d)], "verify": ["verify", str(d), "-q"],
            "show": ["show", str(d), "-o", str(tmp_path / "p.png")],
            "evaluate": ["evaluate", str(d), "-o", str(tmp_path / "ev"), "-w", "1", "-q"]}
    r = CliRunner().invoke(main, args[command])
    if (command, file) in (("show", "rejects.parquet"), ("evaluate", "index.parquet")):
        assert r.exit_code == 0, r.output  # a file the command does not read
        return
    _one_line_error(r, str(d / file))


def _prepare(out, *extra):
    return CliRunner().invoke(main, ["prepare", "toy", *TOY, "-o", str(out), "-w", "1", "-q",
                                     "--shard-count", "2", *extra])


def _same_output(a: Path, b: Path):
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for n in names:
        if n != "manifest.json":  # it names no path of its own folder, but check anyway below
            assert filecmp.cmp(a / n, b / n, shallow=False), n
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()


def test_a_full_disk_is_one_line_and_resume_gives_the_same_output(tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    assert _prepare(ref).exit_code == 0
    real, calls = tario.add_record, []

    def add_record(tar, key, members):
        calls.append(key)
        if len(calls) == 4:  # the disk fills in the middle of the second shard
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(tar, key, members)

    monkeypatch.setattr(tario, "add_record", add_record)
    out = tmp_path / "out"
    r = _prepare(out)
    _one_line_error(r, "No space left on device", str(out / "shard-000001.tar.tmp"))
    monkeypatch.setattr(tario, "add_record", real)
    assert _prepare(out, "--resume").exit_code == 0
    _same_output(ref, out)


def test_a_real_full_tmpfs_then_resume(tmp_path):
    """The same on a small tmpfs (when this machine lets the tests mount one)."""
    ref = tmp_path / "ref"
    assert _prepare(ref).exit_code == 0
    disk = tmp_path / "disk"
    if not _mount(disk, "size=32k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        r = _prepare(disk / "out")
        _one_line_error(r, "No space left on device", str(disk / "out"))
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        r = _prepare(disk / "out", "--resume")
        assert r.exit_code == 0, r.output
        _same_output(ref, disk / "out")
    finally:
        _umount(disk)
