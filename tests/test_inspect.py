"""``inspect``'s objects per image on real DAVIS frames, counted here from the palette masks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from iis_pipe.cli.main import main
from iis_pipe.pipelines.inspect import inspect
from iis_pipe.pipelines.prepare import prepare

pytestmark = pytest.mark.realdata


def test_objects_per_image_on_davis(davis_dir, tmp_path):
    stems = sorted(p.stem for p in (davis_dir / "gt").glob("*.png"))[::15]
    root = tmp_path / "dv"
    for folder in ("img", "gt"):
        (root / folder).mkdir(parents=True)
    for stem in stems:
        shutil.copy(davis_dir / "img" / f"{stem}.jpg", root / "img")
        shutil.copy(davis_dir / "gt" / f"{stem}.png", root / "gt")
    counts = np.array([len(set(np.unique(np.array(Image.open(root / "gt" / f"{s}.png")))) - {0, 255})
                       for s in stems])
    assert counts.max() >= 3 and counts.min() == 1  # a spread worth a histogram
    prepare(root, tmp_path / "o", workers=1, progress=False)
    o = inspect(tmp_path / "o")["objects_per_image"]
    assert o["mean"] == pytest.approx(counts.mean()) and o["median"] == np.median(counts)
    assert o["max"] == counts.max()
    by_bin = {(h["from"], h["to"]): h["records"] for h in o["histogram"]}
    assert by_bin[(1, 1)] == (counts == 1).sum() and by_bin[(2, 2)] == (counts == 2).sum()
    assert by_bin[(3, 5)] == ((counts >= 3) & (counts <= 5)).sum() and by_bin[(201, None)] == 0
    assert sum(by_bin.values()) == len(stems)
    r = CliRunner().invoke(main, ["inspect", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert f"objects per image: mean {counts.mean():.1f}, median {np.median(counts):g}, max {counts.max()}" in r.output
    assert f"        1 {(counts == 1).sum():6d} #" in r.output
