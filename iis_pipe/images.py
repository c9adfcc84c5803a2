"""Reading image and mask files with validation: every failure is a ``BadInput`` naming the file.

JPEG bytes are kept as JPEG (decoded once at 1/8 scale only to prove they are whole; records may
re-code them without loss, see ``add_restart_markers``); other formats are decoded and
re-encoded once to lossless PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import Box

try:
    from iis_pipe import _jpegwindow
except ImportError:  # optional C extension (needs libjpeg-turbo headers at install)
    _jpegwindow = None

JPEG_MAGIC = b"\xff\xd8"


def read_bytes(path: str | Path) -> bytes:
    """Whole file as bytes; a missing or unreadable file is a ``BadInput``."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(str(path), "file not found") from None
    except OSError as e:
        raise BadInput(str(path), f"cannot read file ({e.strerror or e})") from None


def jpeg_size(data: bytes, path: str = "<bytes>") -> tuple[int, int]:
    """``(H, W)`` of a JPEG after proving the entropy-coded data decodes without warnings.

    simplejpeg's strict mode turns libjpeg-turbo's "premature end" and "corrupt data" warnings
    into errors, which OpenCV would silently paper over with grey pixels.
    """
    try:
        h, w, _, _ = simplejpeg.decode_jpeg_header(data)
        # Smallest DCT scale: the whole bitstream is still parsed, the IDCT is nearly free.
        simplejpeg.decode_jpeg(data, colorspace="GRAY" if _is_gray(data) else "RGB",
                               min_height=1, min_width=1, strict=True)
    except ValueError as e:
        raise BadInput(path, f"corrupt or truncated JPEG ({e})") from None
    return int(h), int(w)


def _is_gray(data: bytes) -> bool:
    return simplejpeg.decode_jpeg_header(data)[2] == "Gray"


def read_image_file(path: str | Path) -> tuple[bytes, str, tuple[int, int]]:
    """Load an image file for a record.

    Returns ``(bytes, ext, (H, W))`` where ``ext`` is ``"jpg"`` (original bytes, untouched) or
    ``"png"`` (any other format, decoded and re-encoded losslessly as 8-bit RGB/gray PNG).
    """
    return read_image_bytes(read_bytes(path), str(path))


def read_image_bytes(data: bytes, name: str = "<bytes>") -> tuple[bytes, str, tuple[int, int]]:
    """``read_image_file`` for bytes already in memory (e.g. generated images); ``name`` is what
    a ``BadInput`` names."""
    if data[:2] == JPEG_MAGIC:
        return data, "jpg", jpeg_size(data, name)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise BadInput(name, "not a decodable image (corrupt, truncated or unknown format)")
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]  # alpha carries no segmentation meaning in these datasets
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise BadInput(name, "could not re-encode image as PNG")
    return buf.tobytes(), "png", (int(img.shape[0]), int(img.shape[1]))


def decode_image(data: bytes, ext: str) -> np.ndarray:
    """Decode record image bytes to ``(H, W, 3) uint8`` RGB."""
    if ext == "jpg":
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=False)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("undecodable PNG image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def restart_markers_available() -> bool:
    """Whether ``add_restart_markers`` can run here (the ``_jpegwindow`` extension is built)."""
    return _jpegwindow is not None


def add_restart_markers(data: bytes, mcus: int = 4) -> bytes:
    """The JPEG re-coded without loss for window decoding: the same DCT coefficients (so the
    same pixels), one sequential scan with the standard Huffman tables, a restart marker every
    ``n`` MCUs (``n``: the largest divisor of an MCU row's count up to ``mcus``), APPn and COM
    markers kept. ``decode_jpeg_window`` then decodes only the segments that hold a window.

    Raises ``RuntimeError`` without the ``_jpegwindow`` extension, ``ValueError`` for a JPEG
    libjpeg-turbo cannot re-code.
    """
    if _jpegwindow is None:
        raise RuntimeError("the iis_pipe._jpegwindow extension is not built "
                           "(it needs gcc and the libjpeg-turbo headers at install)")
    return _jpegwindow.add_restarts(data, mcus)


def jpeg_entry_index(data: bytes) -> bytes | None:
    """The entry-point index of an untouched JPEG for ``decode_jpeg_window``: for every
    64-pixel segment of each MCU row, where its codes start and each component's DC predictor
    there (about 2 % of the JPEG's bytes; the ``_jpegwindow`` module's own format). ``None``
    for a JPEG it cannot index (progressive, arithmetic, restart markers, several scans, CMYK,
    not 8-bit) or without the extension.
    """
    return None if _jpegwindow is None else _jpegwindow.index_jpeg(data)


def decode_jpeg_window(data: bytes, window: Box, reduce: int = 1, fast: bool = True,
                       index: bytes | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode the part of a JPEG that holds the ``Box`` ``window`` (original pixels) at DCT
    scale ``1/reduce`` (1, 2, 4, 8).

    Returns ``(pixels, origin)``: ``(h, w, 3) uint8`` RGB covering at least the window (clipped
    to the image), and the original ``(y, x)`` of its first pixel (multiples of ``reduce``).
    The window's pixels equal a whole-image decode's; a few around it may not.
    A JPEG from ``add_restart_markers`` is decoded from the restart segments that hold the
    window only; one with its ``index`` (``jpeg_entry_index``) from the index's segments that
    hold it (an index that does not fit the JPEG, or a DC difference its table has no room to
    code, takes the next way); in others, rows below the window are never decoded, rows above only
    entropy-decoded. Without the ``_jpegwindow`` extension (or for a JPEG it cannot read) the
    whole image is decoded.
    ``fast``: fast integer IDCT and plain chroma upsampling.
    """
    if _jpegwindow is not None:
        y0, y1, x0, x1 = window
        # 2 pixels of margin: smooth chroma upsampling differs at the cut edges; the plain one
        # (fast) reads no neighbour, and a margin costs an extra MCU row or restart segment
        # whenever it crosses an edge (10 % of a window's decode on DAVIS)
        m = 0 if fast else 2
        try:
            px, top, left, h, w = _jpegwindow.decode_window(
                data, y0 // reduce - m, -(-y1 // reduce) + m, x0 // reduce - m,
                -(-x1 // reduce) + m, reduce, fast, index)
        except ValueError:
            pass  # e.g. CMYK: the whole-image decoder says what is wrong, or copes
        else:
            return np.frombuffer(px, np.uint8).reshape(h, w, 3), (top * reduce, left * reduce)
    h, w = simplejpeg.decode_jpeg_header(data)[:2]
    # min sizes pick the DCT scale 1/reduce
    img = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=False, fastdct=fast,
                                 fastupsample=fast, min_height=-(-h // reduce),
                                 min_width=-(-w // reduce))
    return img, (0, 0)


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a mask file without any colour conversion.

    Palette images give their palette indices ``(H, W)``; gray images their values ``(H, W)``
    (8- or 16-bit); RGB(A) images ``(H, W, C) uint8``. Sources decide what the values mean.
    """
    return read_indexed_label(path)[0]


def read_indexed_label(path: str | Path) -> tuple[np.ndarray, int | None]:
    """``read_label_image`` plus the number of palette entries (``None`` without a palette).

    PNG forbids indices at or past the palette's end, but PIL reads them anyway; sources use the
    count to reject such indices as undefined.
    """
    data = read_bytes(path)
    palette = None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode == "P":
                palette = len(im.getpalette() or ()) // 3
            if im.mode in ("P", "L", "1"):
                arr = np.array(im.convert("L") if im.mode == "1" else im)
            elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.array(im).astype(np.uint16 if im.mode != "I" else np.int32)
            elif im.mode in ("RGB", "RGBA", "LA"):
                arr = np.array(im)
            else:
                arr = np.array(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as e:
        raise BadInput(str(path), f"not a decodable mask image ({e})") from None
    return arr, palette

