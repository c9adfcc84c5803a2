"""Exact distance transforms against scipy on the real masks, plus small random masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from iis_pipe.geometry.box import Box, mask_bbox
from iis_pipe.geometry.distance import distance_to_zero

pytestmark = pytest.mark.realdata


def _masks(folder: Path, pattern: str, step: int = 1):
    """``(name, (H, W) bool)`` object masks: GrabCut 255, Berkeley > 127 (RGB), DAVIS nonzero."""
    for p in sorted(folder.glob(pattern))[::step]:
        a = np.array(Image.open(p))
        if a.ndim == 3:
            yield p.name, a[..., 0] > 127
        elif p.suffix == ".bmp":
            yield p.name, a == 255
        else:
            yield p.name, (a > 0) & (a != 255)


def _check(mask: np.ndarray, name: str):
    for m in (mask, ~mask):
        for pad in (False, True):
            if not pad and m.all():
                continue
            ref = ndi.distance_transform_edt(np.pad(m, 1) if pad else m)
            ref = ref[1:-1, 1:-1] if pad else ref
            got = distance_to_zero(m, pad_border=pad)
            assert got.dtype == np.float32
            assert np.abs(got - ref).max() < 1e-4, (name, pad)
            box = mask_bbox(m)
            if box is not None:
                assert np.array_equal(distance_to_zero(m, pad_border=pad, bbox=box), got), (name, pad)


def test_edt_equals_scipy_grabcut(grabcut_dir):
    for name, m in _masks(grabcut_dir / "boundary_GT", "*.bmp", step=2):
        _check(m, name)


def test_edt_equals_scipy_berkeley(berkeley_dir):
    for name, m in _masks(berkeley_dir / "masks", "*.png", step=4):
        _check(m, name)


def test_edt_equals_scipy_davis(davis_dir):
    for name, m in _masks(davis_dir / "gt", "*.png", step=23):
        _check(m, name)


@pytest.mark.parametrize("seed", range(4))
def test_edt_random_small_masks(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        h, w = rng.integers(1, 25, size=2)
        m = rng.random((h, w)) < rng.random()
        for pad in (False, True):
            got = distance_to_zero(m, pad_border=pad)
            if pad:
                ref = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            elif m.all():
                assert np.isinf(got).all()
                continue
            else:
                ref = ndi.distance_transform_edt(m)
            assert np.abs(got - ref).max() < 1e-4
        box = mask_bbox(m)
        if m.any():
            ys, xs = np.nonzero(m)
            assert box == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
        else:
            assert box is None


def test_edt_exact_and_deterministic():
    # sqrt of exact integer squared distances: equidistant pixels are bit-equal.
    m = np.zeros((41, 41), bool)
    m[1:40, 1:40] = True
    d = distance_to_zero(m)
    assert d[20, 20] == d[20, 20].T == np.float32(20.0)
    assert d[5, 7] == d[7, 5] == d[35, 33]
    assert np.array_equal(d, distance_to_zero(m))


def test_bbox_option_restricts_to_box():
    m = np.zeros((50, 60), bool)
    m[10:20, 30:45] = True
    full = distance_to_zero(m, pad_border=True)
    assert np.array_equal(distance_to_zero(m, pad_border=True, bbox=mask_bbox(m)), full)
    assert distance_to_zero(np.zeros((5, 5), bool), bbox=Box(0, 0, 0, 0)).max() == 0
