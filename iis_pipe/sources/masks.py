"""Mask files as the public distributions of each format encode them, and the encoding's name.

A mask file's *container* is one of

- ``palette``: 8-bit palette PNG/BMP, values are the indices (colours ignored);
- ``gray``: 8-bit gray; ``gray16``: 16-bit gray (``I;16`` PNG), values as stored;
- ``rgb``: RGB(A) whose channels are equal (a gray map saved as colour) or, for binary masks,
  read through its first channel (Berkeley's anti-aliased edges differ slightly per channel);
- ``rgb colours``: RGB(A) colour masks of id readers, each colour mapped back to its index in the
  standard VOC/DAVIS palette (how both sets render their palette masks; (224, 224, 192) is 255).

Readers name what they found as ``"<container> <values>"`` (``"gray 0/255"``, ``"palette ids"``)
in ``Sample.mask_encoding``; prepare counts them per source in the manifest.
"""

from __future__ import annotations

import numpy as np

from iis_pipe import images
from iis_pipe.errors import BadInput
from iis_pipe.sources._common import check_size, keyed, present_values
from iis_pipe.sources.types import SourceItem


def standard_palette() -> np.ndarray:
    """``(256, 3) uint8``: the VOC palette DAVIS also uses (index bits spread over the colour
    bits, most significant first: 1 -> (128, 0, 0), 2 -> (0, 128, 0), 255 -> (224, 224, 192))."""
    colours = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for bit in range(7, -1, -1):
            r |= (c & 1) << bit
            g |= ((c >> 1) & 1) << bit
            b |= ((c >> 2) & 1) << bit
            c >>= 3
        colours[index] = (r, g, b)
    return colours


_PALETTE_INDEX = {int(r) << 16 | int(g) << 8 | int(b): i for i, (r, g, b) in enumerate(standard_palette())}


def read_values(item: SourceItem, path: str, size: tuple[int, int], *, colours: str = "first",
                void: int | None = None) -> tuple[np.ndarray, str]:
    """``(values (H, W), container)`` of a mask file, checked to be ``size`` ``(H, W)``.

    ``colours``: what an RGB(A) file with unequal channels means: ``"first"`` its first channel
    (binary masks), ``"palette"`` the standard palette's indices (an unknown colour is a
    ``BadInput``), ``"reject"`` a ``BadInput``. Palette indices past the file's palette other
    than ``void`` are a ``BadInput``: no colour defines them, so no annotator drew them.
    """
    with keyed(item.key):
        arr, palette = images.read_indexed_label(path)
    check_size(item, path, arr, size)
    if arr.ndim == 3:
        rgb = arr[:, :, :3] if arr.shape[2] >= 3 else arr[:, :, :1]  # alpha carries no ids
        if not (rgb != rgb[:, :, :1]).any():
            return rgb[:, :, 0], "rgb"
        if colours == "first":
            return rgb[:, :, 0], "rgb"
        if colours == "reject":
            raise BadInput(path, "colour mask: expected palette or gray values", item.key)
        return palette_indices(item, path, rgb), "rgb colours"
    if palette is not None:
        bad = np.setdiff1d(present_values(arr[arr >= palette]), [] if void is None else [void])
        if bad.size:
            raise BadInput(path, f"unknown palette index {bad.tolist()} (palette has {palette} entries)",
                           item.key)
        return arr, "palette"
    return arr, "gray" if arr.dtype == np.uint8 else "gray16"


def palette_indices(item: SourceItem, path: str, rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8`` colours -> ``(H, W) uint8`` standard palette indices."""
    packed = (rgb[:, :, 0].astype(np.uint32) << 16) | (rgb[:, :, 1].astype(np.uint32) << 8) | rgb[:, :, 2]
    found, inverse = np.unique(packed, return_inverse=True)
    unknown = [int(c) for c in found if int(c) not in _PALETTE_INDEX]
    if unknown:
        shown = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown[:4]]
        raise BadInput(path, f"colour {shown} not in the standard VOC/DAVIS palette "
                             f"({len(unknown)} unknown colours)", item.key)
    lut = np.array([_PALETTE_INDEX[int(c)] for c in found], np.uint8)
    return lut[inverse.reshape(packed.shape)]


def binary_kind(values: np.ndarray) -> str | None:
    """``"0/255"``, ``"0/1"`` (or ``"0/65535"`` for 16-bit) when the sorted distinct ``values``
    are those of a binary mask, else ``None``."""
    present = set(np.asarray(values).tolist())
    for kind, full in (("0/1", 1), ("0/255", 255), ("0/65535", 65535)):
        if present <= {0, full}:
            return kind
    return None


def read_binary(item: SourceItem, path: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """One object per file: ``(mask (H, W) bool, encoding)``.

    Masks whose values are at most 1 are the nonzero pixels (``"... 0/1"``); others are the
    pixels above half their value range (> 127, or > 32767 for 16-bit masks with values past
    255: anti-aliased edges allowed, ``"... 0/255"``, ``"... 0/65535"``).
    """
    values, container = read_values(item, path, size, colours="first")
    top = int(values.max()) if values.size else 0
    if top <= 1:
        return values > 0, f"{container} 0/1"
    if top <= 255:
        return values > 127, f"{container} 0/255"
    return values > 32767, f"{container} 0/65535"
