"""Plain numpy/OpenCV statements of the click rules: ground truth for tests, baselines for benches.

They are written the way the published code writes them (full-image masks, full-image distance
transforms, ``np.argwhere``), not for speed.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi

from iis_pipe.clicking.format import Click, clicked_pixels
from iis_pipe.clicking.samplers import check_inputs, draw_clicks, per_region

def standard_reference(gt, pred, ignore=None, clicks=None, rng=None) -> Click:
    """RITM's ``Clicker._get_next_click`` (two padded full-image transforms).

    Turns OpenCV's IPP off (process-wide): IPP's ``distanceTransform(DIST_L2, 0)``, taken with
    one thread or small images, is about 1 ulp off and varies between calls, which changes
    which of several equidistant pixels wins.
    """
    cv2.ipp.setUseIPP(False)
    gt = np.asarray(gt, bool)
    pred = np.asarray(pred, bool)
    not_ignore = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, bool)
    not_clicked = np.ones(gt.shape, np.float32)
    for y, x in clicked_pixels(clicks):
        not_clicked[y, x] = 0
    fn = np.pad(gt & ~pred & not_ignore, ((1, 1), (1, 1)), "constant")
    fp = np.pad(~gt & pred & not_ignore, ((1, 1), (1, 1)), "constant")
    fn_dt = cv2.distanceTransform(fn.astype(np.uint8), cv2.DIST_L2, 0)[1:-1, 1:-1] * not_clicked
    fp_dt = cv2.distanceTransform(fp.astype(np.uint8), cv2.DIST_L2, 0)[1:-1, 1:-1] * not_clicked
    fn_max, fp_max = np.max(fn_dt), np.max(fp_dt)
    is_positive = fn_max > fp_max
    ys, xs = np.where(fn_dt == fn_max) if is_positive else np.where(fp_dt == fp_max)
    return Click(int(ys[0]), int(xs[0]), bool(is_positive))


class ArgwhereSets:
    """The training sampler's pixel sets as full-image masks listed with ``np.argwhere``.

    The straightforward way (RITM's): full-size masks, negative sets listed up front, each
    positive set listed when first asked for; missing transforms computed on the full image.
    """

    def __init__(self, regions, other, ignore, inside, outside, expand_ratio):
        self.num_regions = regions.shape[0]
        self.not_ign = np.ones(regions.shape[1:], bool) if ignore is None else ~np.asarray(ignore, bool)
        if inside is None:
            inside = np.stack([ndi.distance_transform_edt(np.pad(r, 1))[1:-1, 1:-1] for r in regions])
        if outside is None:
            outside = np.stack([ndi.distance_transform_edt(~r) if r.any() else np.full(r.shape, np.inf)
                                for r in regions])
        self.inside = np.asarray(inside, np.float32)
        union = regions.any(axis=0)
        out_u = np.asarray(outside, np.float32).min(axis=0)
        r = int(np.ceil(expand_ratio * np.sqrt(union.sum())))
        others = np.zeros_like(union) if other is None else np.asarray(other, bool)
        self.lists = {
            "bg": np.argwhere(~union & self.not_ign),
            "other": np.argwhere(others & ~union & self.not_ign),
            "border": np.argwhere((out_u > 0) & (out_u <= r) & self.not_ign),
        }

    def _list(self, key):
        if key not in self.lists:
            _, m, t = key
            self.lists[key] = np.argwhere((self.inside[m] > t) & self.not_ign)
        return self.lists[key]

    def inside_max(self, m):
        return float(self.inside[m].max())

    def size(self, key):
        return len(self._list(key))

    def pick(self, key, ks):
        return self._list(key)[ks]


def sample_clicks_reference(regions, cfg, rng, other=None, ignore=None, inside=None, outside=None):
    """``samplers.sample_clicks`` on :class:`ArgwhereSets`: the same protocol and draws."""
    regions = check_inputs(regions, other, ignore, inside, outside)
    m = regions.shape[0]
    sets = ArgwhereSets(regions, other, ignore, per_region(inside, m), per_region(outside, m),
                        cfg.expand_ratio)
    return draw_clicks(cfg, rng, sets)
