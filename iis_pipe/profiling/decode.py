"""JPEG decoding speed: every available decoder on the shards' own JPEGs (``iis-pipe bench
decode``)."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from iis_pipe.geometry.box import Box
from iis_pipe.records import schema
from iis_pipe.stream.reader import OpenFiles, read_members, scan
from iis_pipe.stream.urls import expand_urls


def shard_jpegs(shards, limit: int = 0) -> list[bytes]:
    """The JPEG bytes of the records in ``shards`` (at most ``limit``, 0: all); a faulty shard
    is warned about (file and reason) and the rest of it skipped."""
    out: list[bytes] = []
    files = OpenFiles()

    def warn(e):
        warnings.warn(f"skipping the rest of shard {e}", stacklevel=2)

    for ref in scan(expand_urls(shards), on_error=warn):
        if schema.JPG in ref.members:
            out.append(read_members(ref._replace(members={schema.JPG: ref.members[schema.JPG]}),
                                    files)[schema.JPG])
            if limit and len(out) >= limit:
                break
    files.close()
    return out


def _decoders() -> dict[str, dict[str, Callable[[bytes], np.ndarray]]]:
    """name -> {"full": fn, "1/2": fn}; a decoder that is not installed is left out. "iis
    window" is the stream's own partial decoder (default flags like the others), also timed on
    "win": the centred window of half the height and width, a quarter of the pixels (about what
    a 320x480 crop needs of a 480x854 frame resized by 1.25)."""
    out: dict[str, dict[str, Callable]] = {}
    out["cv2"] = {
        "full": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR),
        "1/2": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_REDUCED_COLOR_2),
    }
    try:
        import simplejpeg

        def sj_half(b):  # min sizes pick the DCT scale; min_factor alone does not
            h, w = simplejpeg.decode_jpeg_header(b)[:2]
            return simplejpeg.decode_jpeg(b, colorspace="RGB", min_height=-(-h // 2),
                                          min_width=-(-w // 2))

        out["simplejpeg"] = {"full": lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB"),
                             "1/2": sj_half}
    except ImportError:
        pass
    from iis_pipe import images

    if images._jpegwindow is not None:
        def window(b, reduce=1, part=1):  # centred, 1/part of the height and of the width
            h, w = simplejpeg.decode_jpeg_header(b)[:2]
            y0, x0 = h // 2 - h // (2 * part), w // 2 - w // (2 * part)
            return images.decode_jpeg_window(b, Box(y0, y0 + h // part, x0, x0 + w // part),
                                             reduce, fast=False)[0]

        out["iis window"] = {"full": window, "1/2": lambda b: window(b, 2),
                             "win": lambda b: window(b, 1, 2)}
    try:
        from PIL import Image

        def pil(b, half=False):
            im = Image.open(io.BytesIO(b))
            if half:
                im.draft("RGB", (im.width // 2, im.height // 2))
            return np.asarray(im.convert("RGB"))

        out["PIL"] = {"full": pil, "1/2": lambda b: pil(b, True)}
    except ImportError:
        pass
    try:
        import torch
        from torchvision.io import decode_jpeg

        out["torchvision"] = {"full": lambda b: decode_jpeg(torch.frombuffer(bytearray(b),
                                                                             dtype=torch.uint8))}
    except ImportError:
        pass
    return out


@dataclass
class DecodeResult:
    decoder: str
    scale: str
    images_per_s: float
    megapixels_per_s: float  # of the original images


def bench_decode(jpegs: list[bytes], repeats: int = 1, progress: bool = True
                 ) -> list[DecodeResult]:
    """Every available decoder at full and half scale over the same JPEGs, one after another
    in this process (pin it to one core for per-core figures)."""
    import simplejpeg

    pixels = sum(h * w for h, w, _, _ in map(simplejpeg.decode_jpeg_header, jpegs))
    results = []
    runs = [(name, scale, fn) for name, fns in _decoders().items() for scale, fn in fns.items()]
    for name, scale, fn in tqdm(runs, disable=not progress, desc="decoders"):
        fn(jpegs[0])  # warm up
        t0 = time.perf_counter()
        for _ in range(repeats):
            for b in jpegs:
                fn(b)
        dt = (time.perf_counter() - t0) / repeats
        results.append(DecodeResult(name, scale, len(jpegs) / dt, pixels / dt / 1e6))
    return results
