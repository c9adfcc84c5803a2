"""Geometric and photometric augmentation applied consistently to every per-pixel array.

RITM's order (uniform random resize, horizontal flip, pad-if-needed, random crop) is planned
first and then carried out per array as: cut the source window that lands in the crop, resize
only that window, mirror it, paste it into the crop. The full image is never resized, and
every array of a sample goes through the same window and size, so they stay aligned exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

from iis_pipe.geometry.box import Box


@dataclass(frozen=True)
class AugmentConfig:
    """RITM's training augmentation as keywords (its defaults)."""

    crop_size: tuple[int, int] = (320, 480)  # (H, W)
    scale_range: tuple[float, float] = (0.75, 1.40)
    flip_prob: float = 0.5
    brightness_limit: tuple[float, float] = (-0.25, 0.25)
    contrast_limit: tuple[float, float] = (-0.15, 0.4)
    brightness_contrast_prob: float = 0.75
    rgb_shift_limit: int = 10
    rgb_shift_prob: float = 0.75


@dataclass(frozen=True)
class Plan:
    """Source ``window`` (a ``Box`` of original pixels) resized to ``size`` ``(h, w)``, mirrored
    when ``flip``, pasted at ``paste`` ``(y, x)`` in a ``crop`` ``(Hc, Wc)`` canvas."""

    window: Box
    size: tuple[int, int]
    paste: tuple[int, int]
    flip: bool
    crop: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """Output pixels per original pixel, ``(sy, sx)``."""
        y0, y1, x0, x1 = self.window
        return self.size[0] / (y1 - y0), self.size[1] / (x1 - x0)

    def matrix(self) -> np.ndarray:
        """``(2, 3) float64`` affine map of original pixel centres ``(x, y, 1)`` to crop pixel
        centres, as OpenCV's resize places them."""
        sy, sx = self.scale
        y0, _, x0, _ = self.window
        ax, bx = sx, (0.5 - x0) * sx - 0.5
        if self.flip:
            ax, bx = -ax, self.size[1] - 1 - bx
        by = (0.5 - y0) * sy - 0.5
        return np.array([[ax, 0.0, bx + self.paste[1]], [0.0, sy, by + self.paste[0]]])

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Original pixel centres ``(..., 2)`` as ``(x, y)`` -> crop pixel centres."""
        m = self.matrix()
        return xy @ m[:, :2].T + m[:, 2]


def draw_scale_flip(shape: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator
                    ) -> tuple[tuple[int, int], bool]:
    """Scaled size ``(Hs, Ws)`` and flip of one sample."""
    s = rng.uniform(*cfg.scale_range)
    scaled = (max(1, int(round(shape[0] * s))), max(1, int(round(shape[1] * s))))
    return scaled, bool(rng.random() < cfg.flip_prob)


def padding(scaled: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """``(top, left)`` padding that centres a scaled image smaller than the crop."""
    return max(crop[0] - scaled[0], 0) // 2, max(crop[1] - scaled[1], 0) // 2


def origin_range(scaled: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """Largest crop origin ``(y, x)`` in the padded, scaled image."""
    return max(scaled[0], crop[0]) - crop[0], max(scaled[1], crop[1]) - crop[1]


def _axis(n: int, ns: int, pad: int, origin: int, size: int, align: int, flip: bool):
    """One axis of the plan: source window, block length and paste offset."""
    lo, hi = max(origin - pad, 0), min(origin - pad + size, ns)  # visible scaled span
    paste = lo - (origin - pad)
    if flip:  # the visible span of the mirrored image comes from the other side
        lo, hi = ns - hi, ns - lo
    s = ns / n
    w0 = int(np.floor(lo / s / align)) * align
    w1 = min(int(np.ceil(hi / s / align)) * align, -(-n // align) * align)
    return w0, max(w1, w0 + align), hi - lo, paste


def plan(shape: tuple[int, int], scaled: tuple[int, int], flip: bool, crop: tuple[int, int],
         origin: tuple[int, int], align: int = 1) -> Plan:
    """The plan of one crop; ``align``: window edges on multiples of it (reduced decoding)."""
    pad = padding(scaled, crop)
    y0, y1, h, py = _axis(shape[0], scaled[0], pad[0], origin[0], crop[0], align, False)
    x0, x1, w, px = _axis(shape[1], scaled[1], pad[1], origin[1], crop[1], align, flip)
    return Plan(Box(y0, y1, x0, x1), (max(h, 1), max(w, 1)), (py, px), flip, tuple(crop))


def apply(array: np.ndarray, p: Plan, *, linear: bool, fill: float = 0,
          offset: tuple[int, int] = (0, 0), reduce: int = 1) -> np.ndarray:
    """Carry out the plan on ``array`` (``(h, w)`` or ``(h, w, C)``).

    ``offset``: original ``(y, x)`` of ``array``'s first pixel (a stored window of a map);
    ``reduce``: original pixels per array pixel (a JPEG decoded at 1/2, 1/4, 1/8).
    Pixels of the window outside ``array`` read as ``fill``.
    """
    y0, y1, x0, x1 = p.window
    ay0, ay1 = (y0 - offset[0]) // reduce, -(-(y1 - offset[0]) // reduce)
    ax0, ax1 = (x0 - offset[1]) // reduce, -(-(x1 - offset[1]) // reduce)
    src = array[max(ay0, 0):max(ay1, 0), max(ax0, 0):max(ax1, 0)]
    if src.shape[:2] != (ay1 - ay0, ax1 - ax0):  # window reaches past the array: fill
        full = np.full((ay1 - ay0, ax1 - ax0, *array.shape[2:]), fill, array.dtype)
        ty, tx = max(-ay0, 0), max(-ax0, 0)
        full[ty:ty + src.shape[0], tx:tx + src.shape[1]] = src
        src = full
    h, w = p.size
    interp = cv2.INTER_LINEAR if linear else cv2.INTER_NEAREST_EXACT
    block = cv2.resize(src, (w, h), interpolation=interp)
    if p.flip:
        block = cv2.flip(block, 1, dst=block)  # in place: the resize made a new array
    if (h, w) == tuple(p.crop):  # no padding: the block is the crop
        return block
    out = np.full((*p.crop, *array.shape[2:]), fill, array.dtype)
    out[p.paste[0]:p.paste[0] + h, p.paste[1]:p.paste[1] + w] = block
    return out


def padding_mask(p: Plan) -> np.ndarray:
    """``(Hc, Wc) bool``: True where the crop holds padding, not image."""
    out = np.ones(p.crop, bool)
    out[p.paste[0]:p.paste[0] + p.size[0], p.paste[1]:p.paste[1] + p.size[1]] = False
    return out


@njit(cache=True, nogil=True)
def _saturating(src, dst, alpha, beta, shift):
    """``dst = sat(rint(sat(rint(src * alpha + beta)) + shift[c]))`` element by element on
    ``(H, 3 W)`` uint8 rows of pixels of 3 channels ``c``, in float32 as OpenCV computes each
    pass (``shift (3,)``)."""
    lo, hi = np.float32(0), np.float32(255)
    per = np.empty(src.shape[1], np.float32)  # each element's shift: the row vectorises
    for j in range(per.size):
        per[j] = shift[j % 3]
    for y in range(src.shape[0]):
        s, d = src[y], dst[y]
        for j in range(s.size):
            v = min(max(np.rint(np.float32(s[j]) * alpha + beta), lo), hi)
            d[j] = np.uint8(min(max(np.rint(v + per[j]), lo), hi))


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator,
                out: np.ndarray | None = None) -> np.ndarray:
    """Brightness/contrast then RGB shift (albumentations' formulas and RITM's limits) on
    ``(H, W, 3) uint8``, each saturating: ``alpha * x + beta``, then ``x + shift[c]``.

    Both in one pass (numba), the same pixels as OpenCV's ``addWeighted`` then ``add`` with a
    scalar (tested); a skipped one is ``alpha = 1, beta = 0`` or ``shift = 0``, exact
    identities. ``out``: a ``(H, W, 3) uint8`` array to write the result to (a slot of the
    batch) instead of a new one.
    """
    alpha, beta = np.float32(1), np.float32(0)
    if rng.random() < cfg.brightness_contrast_prob:
        alpha = np.float32(1.0 + rng.uniform(*cfg.contrast_limit))
        beta = np.float32(rng.uniform(*cfg.brightness_limit) * 255.0)
    shift = np.zeros(3, np.float32)
    if rng.random() < cfg.rgb_shift_prob:
        shift[:] = rng.uniform(-cfg.rgb_shift_limit, cfg.rgb_shift_limit, size=3)
    out = np.empty_like(image) if out is None else out
    if not out.flags.c_contiguous:  # written through a reshaped view
        raise ValueError("photometric: out must be C-contiguous")
    h, w = image.shape[:2]
    _saturating(np.ascontiguousarray(image).reshape(h, w * 3), out.reshape(h, w * 3), alpha,
                beta, shift)
    return out
