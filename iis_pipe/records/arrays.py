"""Lossless array members: ``.npy`` (self-describing dtype and shape) compressed with zstd.

Chosen over PNG for masks and distance maps because decoding is what the training stream pays
for every sample: on DAVIS a record's distance maps decode in 0.6 ms from zstd against 3.4-4 ms
from PNG, at 0.51x the JPEG bytes (PNG: 0.43x); label layers decode in 0.1 ms against 1.5 ms.
Any tool can read a member: ``zstd -d`` then ``numpy.load``.
"""

from __future__ import annotations

import io

import numpy as np
import zstandard

LEVEL = 3


def encode_array(array: np.ndarray) -> bytes:
    """Any numpy array -> zstd-compressed ``.npy`` bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return zstandard.ZstdCompressor(level=LEVEL).compress(buf.getbuffer())


def decode_array(data: bytes) -> np.ndarray:
    """Inverse of ``encode_array``; raises ValueError on corrupt data."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(data)
        return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (zstandard.ZstdError, ValueError, OSError) as e:
        raise ValueError(f"corrupt array member ({e})") from None
