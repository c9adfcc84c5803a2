"""Lossless array members: ``.npy`` (self-describing dtype and shape) compressed with zstd.

Chosen over PNG for masks and distance maps because decoding is what the training stream pays
for every sample: on DAVIS a record's distance maps decode in 0.6 ms from zstd against 3.4-4 ms
from PNG, at 0.51x the JPEG bytes (PNG: 0.43x); label layers decode in 0.1 ms against 1.5 ms.
Any tool can read a member: ``zstd -d`` then ``numpy.load``.
"""

from __future__ import annotations

import ast
import io
from functools import lru_cache

import numpy as np
import zstandard

LEVEL = 3


def encode_array(array: np.ndarray) -> bytes:
    """Any numpy array -> zstd-compressed ``.npy`` bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return zstandard.ZstdCompressor(level=LEVEL).compress(buf.getbuffer())


def decode_array(data: bytes) -> np.ndarray:
    """Inverse of ``encode_array`` (a read-only view of the decompressed bytes); raises
    ValueError on corrupt data."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(data)
        if raw[:6] != b"\x93NUMPY" or raw[6] != 1:
            raise ValueError("not a version 1 .npy payload")
        n = int.from_bytes(raw[8:10], "little")
        dtype, shape = _header(bytes(raw[10:10 + n]))
        return np.frombuffer(raw, dtype, count=int(np.prod(shape)), offset=10 + n).reshape(shape)
    except (zstandard.ZstdError, ValueError, SyntaxError) as e:
        raise ValueError(f"corrupt array member ({e})") from None


@lru_cache(maxsize=256)
def _header(text: bytes) -> tuple[np.dtype, tuple[int, ...]]:
    # numpy parses headers with ast.literal_eval, a real cost per sample; shapes repeat.
    d = ast.literal_eval(text.decode("latin1"))
    if d["fortran_order"]:
        raise ValueError("Fortran-ordered arrays are not written by encode_array")
    return np.dtype(d["descr"]), tuple(d["shape"])
