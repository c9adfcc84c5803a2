"""Lossless PNG encoding tuned for label maps and distance maps."""

from __future__ import annotations

import cv2
import numpy as np

# "Up" filter + run-length deflate: on DAVIS distance maps this is both the smallest and the
# fastest of OpenCV's PNG settings (measured: 0.30x JPEG bytes, 2.9 ms encode per image).
_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP,
]


def encode_png(array: np.ndarray) -> bytes:
    """``(H, W) uint8|uint16`` -> PNG bytes (lossless, single channel)."""
    if array.ndim != 2 or array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected (H, W) uint8/uint16, got {array.shape} {array.dtype}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(array), _PARAMS)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> ``(H, W) uint8|uint16`` exactly as written by ``encode_png``."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 2:
        raise ValueError("corrupt PNG member")
    return arr
