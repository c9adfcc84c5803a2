"""Lossless array members: ``.npy`` (self-describing dtype and shape) compressed with zstd.

Chosen over PNG for masks and distance maps because decoding is what the training stream pays
for every sample: on DAVIS a record's distance maps decode in 0.6 ms from zstd against 3.4-4 ms
from PNG, at 0.51x the JPEG bytes (PNG: 0.43x); label layers decode in 0.1 ms against 1.5 ms.
Any tool can read a member: ``zstd -d`` then ``numpy.load``.
"""

from __future__ import annotations

import ast
import io
import re
from functools import lru_cache

import numpy as np
import zstandard

LEVEL = 3


def encode_array(array: np.ndarray) -> bytes:
    """Any numpy array -> zstd-compressed ``.npy`` bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return zstandard.ZstdCompressor(level=LEVEL).compress(buf.getbuffer())


def encode_array_bands(array: np.ndarray, rows: int) -> tuple[bytes, list[int]]:
    """``encode_array`` cut into zstd frames: the ``.npy`` header, then ``rows`` rows of
    ``array`` per frame. Back to back the frames are one zstd stream of the same ``.npy``
    (``zstd -d`` and ``decode_array`` read it whole); ``decode_rows`` reads some bands only.
    Returns the bytes and the frame lengths."""
    array = np.ascontiguousarray(array)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(array))
    comp = zstandard.ZstdCompressor(level=LEVEL)
    frames = [comp.compress(head.getvalue())]
    frames += [comp.compress(array[i:i + rows].tobytes()) for i in range(0, len(array), rows)]
    return b"".join(frames), [len(f) for f in frames]


def decode_array(data: bytes) -> np.ndarray:
    """Inverse of ``encode_array`` and ``encode_array_bands`` (a read-only view of the
    decompressed bytes); raises ValueError on corrupt data."""
    try:
        dec = zstandard.ZstdDecompressor()
        raw = dec.decompress(data)  # the first frame only, but in one piece: the common case
        dtype, shape, offset = _npy_header(raw)
        count = int(np.prod(shape))
        if len(raw) < offset + count * dtype.itemsize:  # banded: read on across the frames
            raw = dec.decompressobj(read_across_frames=True).decompress(data)
        return np.frombuffer(raw, dtype, count=count, offset=offset).reshape(shape)
    except (zstandard.ZstdError, ValueError, SyntaxError) as e:
        raise ValueError(f"corrupt array member ({e})") from None


def decode_bands_header(data: bytes, lengths: list[int]) -> tuple[np.dtype, tuple[int, ...]]:
    """``(dtype, shape)`` of an ``encode_array_bands`` array, from its header frame alone."""
    try:
        dtype, shape, _ = _npy_header(zstandard.ZstdDecompressor().decompress(data[:lengths[0]]))
    except (zstandard.ZstdError, ValueError, SyntaxError) as e:
        raise ValueError(f"corrupt array member ({e})") from None
    return dtype, shape


def decode_rows(data: bytes, lengths: list[int], rows: int, y0: int, y1: int,
                shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
    """Rows ``[y0, y1)`` (at least) of an ``encode_array_bands`` array of ``shape`` and
    ``dtype`` (see ``decode_bands_header``), decompressing only the bands that hold them:
    ``(rows array (read-only), its first row)``. Raises ValueError on corrupt data."""
    b0, b1 = max(y0, 0) // rows, min(-(-max(y1, 0) // rows), len(lengths) - 1)
    b1 = max(b1, b0)
    start = sum(lengths[:b0 + 1])  # past the header frame and the bands above
    end = start + sum(lengths[b0 + 1:b1 + 1])
    count = max(min(b1 * rows, shape[0]) - b0 * rows, 0)
    try:
        # the bands are consecutive frames: one call reads them all (a call per band cost
        # more than the decompression of the small label bands), with no copy of the input
        raw = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(
            memoryview(data)[start:end])
    except zstandard.ZstdError as e:
        raise ValueError(f"corrupt array member ({e})") from None
    size = count * int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    if len(raw) != size:
        raise ValueError(f"corrupt array member (bands {b0}..{b1} hold {len(raw)} bytes, "
                         f"not {size})")
    return np.frombuffer(raw, dtype).reshape(count, *shape[1:]), b0 * rows


def _npy_header(raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` of ``.npy`` bytes (version 1 headers, as numpy writes)."""
    if raw[:6] != b"\x93NUMPY" or raw[6] != 1:
        raise ValueError("not a version 1 .npy payload")
    n = int.from_bytes(raw[8:10], "little")
    return (*_header(bytes(raw[10:10 + n])), 10 + n)


_HEADER = re.compile(r"\{'descr': '([^']+)', 'fortran_order': (True|False), "
                     r"'shape': \(((?:\d+, ?)*\d*)\), \}")


@lru_cache(maxsize=256)
def _header(text: bytes) -> tuple[np.dtype, tuple[int, ...]]:
    # numpy parses headers with ast.literal_eval, a real cost per sample (distance windows
    # have many shapes); numpy's own writer has one layout, so match that first.
    m = _HEADER.match(text.decode("latin1"))
    if m:
        descr, fortran = m.group(1), m.group(2) == "True"
        shape = tuple(int(v) for v in m.group(3).replace(" ", "").split(",") if v)
    else:
        d = ast.literal_eval(text.decode("latin1"))
        descr, fortran, shape = d["descr"], d["fortran_order"], tuple(d["shape"])
    if fortran:
        raise ValueError("Fortran-ordered arrays are not written by encode_array")
    return np.dtype(descr), shape
