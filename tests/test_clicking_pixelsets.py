"""Pixel sets: each named constructor counts and picks exactly the pixels its numpy statement
lists (row-major), on real masks and on crops whose origin has ``y != x``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iis_pipe.clicking import pixelsets as ps
from iis_pipe.geometry.box import mask_bbox
from iis_pipe.geometry.distance import distance_to_zero


def _frames(davis_dir, count=4):
    files = sorted((davis_dir / "gt").glob("*.png"))
    for p in files[:: max(len(files) // count, 1)][:count]:
        a = np.array(Image.open(p))
        ids = [i for i in np.unique(a) if i not in (0, 255)]
        yield p.name, [a == i for i in ids], a == 255


def _box_mask(shape, box):
    y0, y1, x0, x1 = box
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = True
    return out


def _check(name, pset, want):
    """``pset`` holds exactly the pixels of ``want`` ((H, W) bool), in row-major order."""
    cum = ps.cumulative_counts(pset)
    size = int(cum[-1]) if cum.size else 0
    listed = np.argwhere(want)
    assert size == len(listed), name
    got = ps.pick(pset, cum, np.arange(size, dtype=np.int64))
    assert np.array_equal(got, listed), name


def _crop(a, y0, x0):
    return np.ascontiguousarray(a[y0:, x0:])


@pytest.mark.parametrize("use_ignore", [False, True])
def test_constructors_match_numpy_on_davis(davis_dir, use_ignore):
    checked = 0
    for name, regions, ign in _frames(davis_dir):
        shape = ign.shape
        ignore = ign if use_ignore else None
        keep = ~ign if use_ignore else np.ones(shape, bool)
        region = regions[0]
        box = mask_bbox(region)
        inside = distance_to_zero(region, pad_border=True)
        outside = distance_to_zero(~region)
        # maps cropped at an origin (y, x) with y != x: a swapped origin reads other pixels
        oy, ox = max(box[0] - 3, 0), max(box[2] - 11, 0)
        assert oy != ox
        in_crop = _crop(inside, oy, ox)
        for above in (0.0, 3.0):
            want = (inside > above) & keep & _box_mask(shape, box)
            _check(name, ps.PixelSet.inside(box, in_crop, (oy, ox), above, ignore=ignore), want)
        # stored levels (distances q * scale): inside on the region, outside off it
        scale = 0.5
        levels = np.minimum(np.rint(np.where(region, inside, outside) / scale), 255).astype(np.uint8)
        lev = levels.astype(np.float32) * np.float32(scale)
        for above in (3.0, 0.0, 1000.0):  # (the kernel counts a run of levels; none passes)
            want = (lev > above) & region & keep & _box_mask(shape, box)
            _check(name, ps.PixelSet.inside(box, _crop(levels, oy, ox), (oy, ox), above, scale,
                                            region=region, ignore=ignore), want)
        r = 9.0
        band_box = (max(box[0] - 10, 0), min(box[1] + 10, shape[0]),
                    max(box[2] - 10, 0), min(box[3] + 10, shape[1]))
        by, bx = band_box[0], band_box[2]
        want = (outside > 0) & (outside <= r) & keep & _box_mask(shape, band_box)
        _check(name, ps.PixelSet.band(band_box, _crop(outside, by, bx), (by, bx), r,
                                      ignore=ignore), want)
        want = (lev > 0) & (lev <= r) & ~region & keep & _box_mask(shape, band_box)
        _check(name, ps.PixelSet.band(band_box, _crop(levels, by, bx), (by, bx), r, scale,
                                      merged=region, ignore=ignore), want)
        # the union as a crop on its box; background of the full image and of the other objects
        union = np.any(regions[:1], axis=0)
        u = np.ascontiguousarray(union[box[0]:box[1], box[2]:box[3]])
        full = (0, shape[0], 0, shape[1])
        _check(name, ps.PixelSet.background(full, u, (box[0], box[2]), ignore=ignore),
               ~union & keep)
        if len(regions) > 1:
            other = np.any(regions[1:], axis=0)
            obox = mask_bbox(other)
            _check(name, ps.PixelSet.background(obox, u, (box[0], box[2]), within=other,
                                                ignore=ignore), other & ~union & keep)
        _check(name, ps.PixelSet.empty(ignore), np.zeros(shape, bool))
        checked += 1
    assert checked


def test_entry_kernels_take_the_fields_in_pixelset_order():
    import inspect

    for kernel, before in ((ps._cumulative_counts, []), (ps._pick, ["cum", "ks"])):
        names = list(inspect.signature(kernel.py_func).parameters)
        assert names == before + list(ps.PixelSet._fields)
