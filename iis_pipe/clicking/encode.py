"""Clicks to input maps: one channel per side (0 positive, 1 negative), for the model's input.

With ``dist`` the Euclidean distance from a pixel to the nearest click of the channel's side:

- ``disk``: 1 where ``dist <= radius``, else 0;
- ``dist``: ``tanh(2 * dist / norm_radius)`` (RITM's ``DistMaps``; 1 where a side has no click);
- ``gauss``: ``exp(-dist**2 / (2 * radius**2))`` (0 where a side has no click).

:func:`encode_clicks` (numba, for loader workers) writes only the pixels near clicks: a disk's
box, and for ``dist``/``gauss`` the box beyond which the value rounds to its far value in
float32 (``dist``: ``2 * dist / norm_radius > 9.02`` gives exactly 1.0; ``gauss``: values below
1e-7 are left at 0). :func:`encode_clicks_torch` computes every pixel on the clicks' device;
the two agree within 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MODES = {"disk": 0, "dist": 1, "gauss": 2}
_GAUSS_CUT = math.sqrt(2 * math.log(1e7))  # exp(-t**2 / 2) < 1e-7 beyond t sigmas


def _reach(mode: str, radius: float, norm_radius: float) -> int:
    """Half-size of the box around a click outside which the map keeps its far value."""
    if mode == "disk":
        return int(math.floor(radius))
    if mode == "dist":
        return int(math.ceil(4.51 * norm_radius)) + 1
    return int(math.ceil(_GAUSS_CUT * radius)) + 1


@njit(cache=True, nogil=True)
def _encode_into(clicks, mode, radius, norm_radius, reach, out):
    """Fold the clicks ``(B, 2N, 3)`` into ``out (B, 2, H, W) float32`` (pre-filled with the far
    value), box by box. The value depends on the integer squared distance only, so it is
    tabulated once per call (and is the same float32 for the same distance everywhere)."""
    h, w = out.shape[2], out.shape[3]
    n = clicks.shape[1] // 2
    r2 = radius * radius
    table = np.zeros(2 * reach * reach + 1 if mode else 1, np.float32)
    for d2 in range(table.shape[0]):
        if mode == 1:
            table[d2] = math.tanh(2.0 * math.sqrt(d2) / norm_radius)
        elif mode == 2:
            v = math.exp(-d2 / (2.0 * r2))
            table[d2] = v if v >= 1e-7 else 0.0
    for b in range(clicks.shape[0]):
        for i in range(clicks.shape[1]):
            cy, cx = clicks[b, i, 0], clicks[b, i, 1]
            if cy < 0:
                continue
            o = out[b, 0 if i < n else 1]
            for y in range(max(cy - reach, 0), min(cy + reach + 1, h)):
                dy2 = (y - cy) * (y - cy)
                for x in range(max(cx - reach, 0), min(cx + reach + 1, w)):
                    d2 = dy2 + (x - cx) * (x - cx)
                    if mode == 0:
                        if d2 <= r2:
                            o[y, x] = 1.0
                    elif mode == 1:
                        o[y, x] = min(o[y, x], table[d2])
                    else:
                        o[y, x] = max(o[y, x], table[d2])


def _check(clicks_shape, shape, mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    if len(clicks_shape) not in (2, 3) or clicks_shape[-1] != 3 or clicks_shape[-2] % 2:
        raise ValueError(f"clicks must be (2N, 3) or (B, 2N, 3), got {tuple(clicks_shape)}")
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")


def encode_clicks(clicks: np.ndarray, shape: tuple[int, int], mode: str = "disk",
                  radius: float = 5.0, norm_radius: float = 260.0) -> np.ndarray:
    """Maps of ``clicks`` ``(2N, 3)`` or ``(B, 2N, 3)`` int (``(y, x, order)``, padding
    ``y < 0``): ``(2, H, W)`` or ``(B, 2, H, W) float32``. Clicks must lie inside ``shape``."""
    clicks = np.asarray(clicks)
    _check(clicks.shape, shape, mode)
    batch = np.ascontiguousarray(clicks[None] if clicks.ndim == 2 else clicks, dtype=np.int64)
    valid = batch[..., 0] >= 0
    ys, xs = batch[..., 0][valid], batch[..., 1][valid]
    if ys.size and (ys.max() >= shape[0] or xs.min() < 0 or xs.max() >= shape[1]):
        raise ValueError(f"a click lies outside the image {tuple(shape)}")
    out = np.full((batch.shape[0], 2, *shape), 1.0, np.float32) if mode == "dist" \
        else np.zeros((batch.shape[0], 2, *shape), np.float32)
    _encode_into(batch, MODES[mode], float(radius), float(norm_radius),
                 _reach(mode, radius, norm_radius), out)
    return out[0] if clicks.ndim == 2 else out


def encode_clicks_torch(clicks, shape: tuple[int, int], mode: str = "disk", radius: float = 5.0,
                        norm_radius: float = 260.0):
    """:func:`encode_clicks` for a ``(B, 2N, 3)`` integer tensor: ``(B, 2, H, W) float32`` on
    the clicks' device, every pixel computed (one pass over the image per click slot)."""
    import torch

    _check(tuple(clicks.shape), shape, mode)
    if clicks.ndim == 2:
        return encode_clicks_torch(clicks[None], shape, mode, radius, norm_radius)[0]
    b, n2, _ = clicks.shape
    h, w = shape
    dev = clicks.device
    yy = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    xx = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    pts = clicks[..., :2].to(torch.float32)
    # Squared distances are integers below 2**24 here, exact in float32.
    sq = torch.full((b, 2, h, w), float("inf"), device=dev)
    for i in range(n2):
        y, x = pts[:, i, 0].view(b, 1, 1), pts[:, i, 1].view(b, 1, 1)
        d2 = (yy - y) ** 2 + (xx - x) ** 2
        d2 = torch.where((y >= 0), d2, torch.full_like(d2, float("inf")))
        side = 0 if i < n2 // 2 else 1
        sq[:, side] = torch.minimum(sq[:, side], d2)
    if mode == "disk":
        return (sq <= radius * radius).to(torch.float32)
    if mode == "dist":
        return torch.tanh(2.0 * torch.sqrt(sq) / norm_radius)
    return torch.exp(-sq / (2.0 * radius * radius))
