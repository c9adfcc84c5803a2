"""Click encoders: numba (boxes around clicks) equals torch (every pixel) and a plain numpy
statement of each map, within 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iis_pipe.clicking.encode import encode_clicks, encode_clicks_torch
from iis_pipe.clicking.format import stack_clicks
from iis_pipe.clicking.samplers import SamplerConfig, sample_clicks

TOL = 1e-6
CASES = [("disk", dict(radius=5)), ("disk", dict(radius=2.5)), ("dist", dict(norm_radius=5)),
         ("dist", dict(norm_radius=40)), ("gauss", dict(radius=5)), ("gauss", dict(radius=12))]


def _numpy_maps(clicks, shape, mode, radius=5.0, norm_radius=260.0):
    """Every pixel's distance to every click, then the map: ``(2, H, W) float64``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    n = len(clicks) // 2
    out = []
    for side in (clicks[:n], clicks[n:]):
        side = side[side[:, 0] >= 0]
        d = np.full(shape, np.inf)
        for y, x, _ in side:
            d = np.minimum(d, np.sqrt((yy - y) ** 2 + (xx - x) ** 2))
        if mode == "disk":
            out.append((d <= radius).astype(float))
        elif mode == "dist":
            out.append(np.tanh(2 * d / norm_radius))
        else:
            out.append(np.exp(-(d ** 2) / (2 * radius ** 2)))
    return np.stack(out)


def _batch(shape, b=4, seed=0):
    rng = np.random.default_rng(seed)
    region = np.zeros(shape, bool)
    region[shape[0] // 4: 3 * shape[0] // 4, shape[1] // 3: 2 * shape[1] // 3] = True
    arrs = [sample_clicks(region, SamplerConfig(max_num_points=6), rng) for _ in range(b)]
    arrs[0][0, :2] = (0, 0)                              # clicks on the image corners
    arrs[1][6, :2] = (shape[0] - 1, shape[1] - 1)
    arrs[1][7:, :] = -1
    arrs[2][6:, :] = -1                                  # a sample without negatives
    return stack_clicks(arrs)


@pytest.mark.parametrize("mode,kw", CASES)
def test_numba_equals_torch_and_numpy(mode, kw):
    shape = (90, 130)
    clicks = _batch(shape)
    got = encode_clicks(clicks, shape, mode, **kw)
    assert got.shape == (4, 2, *shape) and got.dtype == np.float32
    tor = encode_clicks_torch(torch.from_numpy(clicks), shape, mode, **kw)
    assert tor.dtype == torch.float32
    assert np.abs(got - tor.numpy()).max() <= TOL
    for b in range(len(clicks)):
        assert np.abs(got[b] - _numpy_maps(clicks[b], shape, mode, **kw)).max() <= TOL
        assert np.array_equal(encode_clicks(clicks[b], shape, mode, **kw), got[b])


def test_far_values_and_empty_sides():
    shape = (20, 30)
    none = np.full((4, 3), -1, np.int32)
    assert (encode_clicks(none, shape, "dist") == 1).all()
    assert (encode_clicks(none, shape, "disk") == 0).all()
    assert (encode_clicks(none, shape, "gauss") == 0).all()
    one = none.copy()
    one[0] = (10, 15, 0)
    disk = encode_clicks(one, shape, "disk", radius=3)
    assert disk[0].sum() == 29 and disk[1].sum() == 0    # lattice points of a radius-3 disk
    assert encode_clicks(one, shape, "dist", norm_radius=5)[0, 10, 15] == 0


def test_encoder_checks():
    with pytest.raises(ValueError, match="mode"):
        encode_clicks(np.full((2, 3), -1), (5, 5), "square")
    with pytest.raises(ValueError, match="outside"):
        encode_clicks(np.array([[5, 0, 0], [-1, -1, -1]]), (5, 5))
    with pytest.raises(ValueError):
        encode_clicks(np.zeros((3, 3), int), (5, 5))
