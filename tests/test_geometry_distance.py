"""The one row kernel's two options against a plain numpy/scipy reference: the full transform
and the pruned first maximum (with excluded pixels), on small random masks and real masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from iis_pipe.geometry.distance import SQ_INF, column_pass, row_pass, sq_distance_to_zero


def _sq_reference(m: np.ndarray, pad: bool) -> np.ndarray:
    """Exact squared distances from scipy (``SQ_INF`` where no zero can be reached)."""
    if not pad and m.all():
        return np.full(m.shape, SQ_INF, np.int64)
    d = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] if pad else \
        ndi.distance_transform_edt(m)
    return np.rint(d.astype(np.float64) ** 2).astype(np.int64)


def _first_max_reference(sq: np.ndarray, exclude: np.ndarray) -> tuple[int, int, int]:
    """First maximum in row-major order over the pixels not excluded, ``(0, 0, 0)`` if none > 0."""
    sq = sq.astype(np.int64).copy()
    sq[tuple(exclude.T)] = 0
    if sq.max(initial=0) == 0:
        return 0, 0, 0
    i = int(np.argmax(sq))  # numpy's argmax: the first maximum
    return int(sq.flat[i]), i // sq.shape[1], i % sq.shape[1]


def _both_options(m: np.ndarray, pad: bool, exclude: np.ndarray):
    cols = np.empty(m.shape, np.int32)
    column_pass(m, pad, cols)
    before = cols.copy()
    got_max = row_pass(cols, pad, True, exclude)
    assert np.array_equal(cols, before)  # pruned: the column distances are left as they are
    assert row_pass(cols, pad, False, exclude) == (0, 0, 0)
    return cols, tuple(int(v) for v in got_max)


@pytest.mark.parametrize("seed", range(3))
def test_row_pass_full_and_pruned_on_small_random_masks(seed):
    rng = np.random.default_rng(seed)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 20, size=2))
        m = rng.random((h, w)) < rng.random()
        for pad in (False, True):
            k = int(rng.integers(0, 4))
            exclude = np.stack([rng.integers(0, h, k), rng.integers(0, w, k)], axis=1)
            exclude = exclude.astype(np.int64)
            sq, got_max = _both_options(m, pad, exclude)
            ref = _sq_reference(m, pad)
            assert np.array_equal(sq, ref), (seed, pad)
            if not (not pad and m.all()):  # all-True without padding: SQ_INF everywhere
                assert got_max == _first_max_reference(ref, exclude), (seed, pad)


@pytest.mark.realdata
def test_row_pass_pruned_first_maximum_on_davis(davis_dir):
    rng = np.random.default_rng(1)
    for p in sorted((davis_dir / "gt").glob("*.png"))[::17]:
        a = np.array(Image.open(p))
        for m in ((a > 0) & (a != 255), a == 0):
            ref = _sq_reference(m, True)
            # exclude the maximum itself and a few random pixels: the next one must be found
            i = int(np.argmax(ref))
            exclude = np.array([[i // m.shape[1], i % m.shape[1]],
                                *np.stack([rng.integers(0, m.shape[0], 3),
                                           rng.integers(0, m.shape[1], 3)], axis=1)], np.int64)
            sq, got_max = _both_options(m, True, exclude)
            assert np.array_equal(sq, ref), p.name
            assert got_max == _first_max_reference(ref, exclude), p.name
            assert np.array_equal(sq_distance_to_zero(m, pad_border=True), ref), p.name
