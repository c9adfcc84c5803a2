"""Lossless array members: ``.npy`` files (self-describing dtype and shape) compressed with
zstd or cut into LZ4 frames.

Chosen over PNG for masks and distance maps because decoding is what the training stream pays
for every sample, and zstd-compressed ``.npy`` decodes several times faster than PNG for a few
more bytes. Banded distance maps use LZ4 frames (high-compression level 3): faster to decode
than zstd for somewhat more bytes (figures in the README's benchmark notes). Any tool can read
a member: ``zstd -d`` or ``lz4 -d``, then ``numpy.load``;
``decode_array`` tells the codecs apart by their frame magic numbers.
"""

from __future__ import annotations

import ast
import io
import itertools
import math
import re
import threading
from functools import lru_cache

import lz4.frame
import numpy as np
import zstandard

LEVEL = 3
LZ4_LEVEL = 3  # the first high-compression level: smaller than levels 0-2, decodes faster
CODECS = ("zstd", "lz4")
_LZ4_MAGIC = b"\x04\x22\x4d\x18"  # zstd frames are anything else
_ERRORS = (zstandard.ZstdError, RuntimeError, ValueError, SyntaxError)  # lz4 raises RuntimeError


_local = threading.local()


def _zstd() -> zstandard.ZstdDecompressor:
    """This thread's decompressor: a new one per call allocated (and page-faulted) its
    context for every member the stream reads."""
    dec = getattr(_local, "zstd", None)
    if dec is None:
        dec = _local.zstd = zstandard.ZstdDecompressor()
    return dec


def zstd_compressor(level: int = LEVEL):
    """``bytes -> zstd frame`` at ``level``: this thread's compressor for that level (a
    ``ZstdCompressor`` must not be used by two threads at once: shared, prepare on a thread
    pool corrupted memory)."""
    comps = getattr(_local, "zstd_compressors", None)
    if comps is None:
        comps = _local.zstd_compressors = {}
    comp = comps.get(level)
    if comp is None:
        comp = comps[level] = zstandard.ZstdCompressor(level=level).compress
    return comp


def zstd_frames(data) -> bytes:
    """Consecutive zstd frames, decompressed and joined (this thread's decompressor); raises
    ValueError on corrupt data."""
    try:
        return _zstd().decompressobj(read_across_frames=True).decompress(data)
    except zstandard.ZstdError as e:
        raise ValueError(f"corrupt zstd frames ({e})") from None


def encode_array(array: np.ndarray) -> bytes:
    """Any numpy array -> zstd-compressed ``.npy`` bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return zstandard.ZstdCompressor(level=LEVEL).compress(buf.getbuffer())


def _compressor(codec: str):
    if codec == "zstd":
        return zstandard.ZstdCompressor(level=LEVEL).compress
    if codec == "lz4":
        return lambda b: lz4.frame.compress(b, compression_level=LZ4_LEVEL, store_size=True)
    raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")


def encode_array_bands(array: np.ndarray, rows: int, codec: str = "zstd"
                       ) -> tuple[bytes, list[int]]:
    """``.npy`` bytes of ``array`` cut into frames of ``codec`` (``"zstd"`` or ``"lz4"``): the
    header, then ``rows`` rows of ``array`` per frame. Back to back the frames decompress to
    the whole ``.npy`` (``zstd -d``, ``lz4 -d`` and ``decode_array`` read it whole);
    ``decode_rows`` reads some bands only. Returns the bytes and the frame lengths."""
    return encode_array_frames(array, range(0, len(array), rows), codec)


def encode_array_frames(array: np.ndarray, starts, codec: str = "zstd"
                        ) -> tuple[bytes, list[int]]:
    """``encode_array_bands`` with a frame per part of ``array`` starting at each of the
    increasing row indices ``starts`` (the first 0); ``decode_frames`` reads some parts only."""
    array = np.ascontiguousarray(array)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(array))
    compress = _compressor(codec)
    bounds = [*starts, len(array)]
    frames = [compress(head.getvalue())]
    frames += [compress(array[a:b].tobytes()) for a, b in zip(bounds[:-1], bounds[1:])]
    return b"".join(frames), [len(f) for f in frames]


def decode_frames(data: bytes, lengths: list[int], parts: list[int]) -> list[np.ndarray]:
    """Parts ``parts`` (indices into ``encode_array_frames``' ``starts``) of an array written
    by it with frame lengths ``lengths``, decompressing only their frames: each part's rows
    (read-only). Raises ValueError on corrupt data."""
    data = memoryview(data)
    offsets = [0, *itertools.accumulate(lengths)]
    if offsets[-1] != len(data) or not all(0 <= i < len(lengths) - 1 for i in parts):
        raise ValueError(f"corrupt array member ({len(data)} bytes, frames {lengths}, "
                         f"parts {parts})")
    lz4_frames = bytes(data[:4]) == _LZ4_MAGIC
    # a zstd frame of compress() states its size: one call each, no stream object
    one = lz4.frame.decompress if lz4_frames else _zstd().decompress
    try:
        dtype, shape, _ = _npy_header(one(data[:offsets[1]]))
    except _ERRORS as e:
        raise ValueError(f"corrupt array member ({e})") from None
    row = math.prod(shape[1:]) * dtype.itemsize
    out = []
    for i in parts:
        try:
            raw = one(data[offsets[i + 1]:offsets[i + 2]])
        except _ERRORS as e:
            raise ValueError(f"corrupt array member ({e})") from None
        if row == 0 or len(raw) % row:
            raise ValueError(f"corrupt array member (part {i} holds {len(raw)} bytes)")
        out.append(np.frombuffer(raw, dtype).reshape(-1, *shape[1:]))
    return out


def _lz4_frames(data) -> bytes:
    """Concatenated LZ4 frames -> their decompressed bytes, joined."""
    out, data = [], memoryview(data)
    while len(data):
        dec = lz4.frame.LZ4FrameDecompressor()
        out.append(dec.decompress(data))
        if not dec.eof:
            raise ValueError("truncated LZ4 frame")
        data = memoryview(dec.unused_data) if dec.unused_data else data[:0]
    return b"".join(out)


def decode_array(data: bytes) -> np.ndarray:
    """Inverse of ``encode_array`` and ``encode_array_bands`` (a read-only view of the
    decompressed bytes); raises ValueError on corrupt data."""
    try:
        if bytes(data[:4]) == _LZ4_MAGIC:
            raw = _lz4_frames(data)
            dtype, shape, offset = _npy_header(raw)
        else:
            dec = _zstd()
            raw = dec.decompress(data)  # the first frame only, in one piece: the common case
            dtype, shape, offset = _npy_header(raw)
            if len(raw) < offset + math.prod(shape) * dtype.itemsize:  # banded: read on
                raw = dec.decompressobj(read_across_frames=True).decompress(data)
        return np.frombuffer(raw, dtype, count=math.prod(shape), offset=offset).reshape(shape)
    except _ERRORS as e:
        raise ValueError(f"corrupt array member ({e})") from None


def _decompress_frames(data, lengths: list[int]) -> bytes:
    """Consecutive frames of lengths ``lengths`` at the start of ``data``, decompressed."""
    if bytes(data[:4]) == _LZ4_MAGIC:
        out, pos = [], 0
        for n in lengths:
            out.append(lz4.frame.decompress(data[pos:pos + n]))
            pos += n
        return b"".join(out)
    # zstd reads on across frames: one call for all the bands (a call per band cost more than
    # decompressing the small label bands)
    return _zstd().decompressobj(read_across_frames=True).decompress(
        data[:sum(lengths)])


def decode_bands_header(data: bytes, lengths: list[int]) -> tuple[np.dtype, tuple[int, ...]]:
    """``(dtype, shape)`` of an ``encode_array_bands`` array, from its header frame alone."""
    try:
        dtype, shape, _ = _npy_header(_decompress_frames(memoryview(data), lengths[:1]))
    except _ERRORS as e:
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
    count = max(min(b1 * rows, shape[0]) - b0 * rows, 0)
    try:
        raw = _decompress_frames(memoryview(data)[start:], lengths[b0 + 1:b1 + 1])
    except _ERRORS as e:
        raise ValueError(f"corrupt array member ({e})") from None
    size = count * math.prod(shape[1:]) * dtype.itemsize
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
