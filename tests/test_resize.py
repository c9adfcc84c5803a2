"""``--max-side``: a real DAVIS image and its masks shrunk once at prepare (area resampling, masks
kept where at least half covered), the JPEG re-encoded, the manifest saying it is lossy."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from iis_pipe.records import schema
from iis_pipe.shards.tar import iter_records
from iis_pipe.pipelines.prepare import RecordParams, prepare

pytestmark = pytest.mark.realdata


def block_mean(a: np.ndarray) -> np.ndarray:
    """2x2 block means of ``(H, W[, C])`` (H, W even): the exact area resampling by 1/2."""
    h, w = a.shape[:2]
    return a.reshape(h // 2, 2, w // 2, 2, *a.shape[2:]).astype(np.float64).mean(axis=(1, 3))


def test_max_side_on_real_davis_images(davis_dir, tmp_path):
    root = tmp_path / "dv"
    for folder in ("img", "gt"):
        (root / folder).mkdir(parents=True)
    for stem in ("180", "042"):
        shutil.copy(davis_dir / "img" / f"{stem}.jpg", root / "img")
        shutil.copy(davis_dir / "gt" / f"{stem}.png", root / "gt")
    res = prepare(root, tmp_path / "o", workers=1, progress=False, params=RecordParams(max_side=427))
    assert (res.records, res.rejects) == (2, 0)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["params"]["max_side"] == 427
    assert manifest["resized"]["lossy"] is True and manifest["resized"]["records"] == 2
    assert "lossy" in manifest["resized"]["note"] and res.resized == manifest["resized"]
    records = {k: m for s in (tmp_path / "o").glob("shard-*.tar") for k, m in iter_records(s)}
    for stem in ("180", "042"):
        rec = schema.decode_record(records[stem])
        meta = schema.decode_meta(records[stem])
        assert rec.regions.shape[1:] == (240, 427) and (meta["height"], meta["width"]) == (240, 427)
        ids = np.array(Image.open(davis_dir / "gt" / f"{stem}.png"))
        objects = [v for v in np.unique(ids) if v not in (0, 255)]
        # 854x480 -> 427x240 is exactly 1/2: a pixel is in a mask when 2 of its 4 source pixels are.
        expected = np.stack([block_mean(ids == v) >= 0.5 for v in objects])
        assert np.array_equal(rec.regions, expected)
        assert np.array_equal(rec.ignore, block_mean(ids == 255) >= 0.5)
        original = simplejpeg.decode_jpeg((davis_dir / "img" / f"{stem}.jpg").read_bytes(), colorspace="RGB")
        small = simplejpeg.decode_jpeg(records[stem]["jpg"], colorspace="RGB")
        assert small.shape == (240, 427, 3)
        error = np.abs(small.astype(np.float64) - block_mean(original))
        assert error.mean() < 2.0 and np.percentile(error, 99) < 12  # JPEG quality 95 re-encoding
    untouched = prepare(root, tmp_path / "same", workers=1, progress=False,
                        params=RecordParams(max_side=854))
    assert untouched.resized["records"] == 0
    again = {k: m for s in (tmp_path / "same").glob("shard-*.tar") for k, m in iter_records(s)}
    assert again["180"]["jpg"] == (davis_dir / "img" / "180.jpg").read_bytes()


def test_cli_summary_says_lossy(davis_dir, tmp_path):
    from click.testing import CliRunner

    from iis_pipe.cli.main import main

    root = tmp_path / "dv"
    for folder in ("img", "gt"):
        (root / folder).mkdir(parents=True)
    shutil.copy(davis_dir / "img" / "042.jpg", root / "img")
    shutil.copy(davis_dir / "gt" / "042.png", root / "gt")
    r = CliRunner().invoke(main, ["prepare", str(root), "-o", str(tmp_path / "o"), "--max-side", "600",
                                  "-w", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert "resized (lossy): 1 images with a side over 600 px were shrunk" in r.output
    meta = schema.decode_meta(next(m for _, m in iter_records(next((tmp_path / "o").glob("shard-*.tar")))))
    assert (meta["height"], meta["width"]) == (337, 600)  # 480 * 600 / 854 = 337.2
    r = CliRunner().invoke(main, ["prepare", str(root), "-o", str(tmp_path / "p"), "--max-side", "0"])
    assert r.exit_code != 0 and "--max-side" in r.output
