"""The images the app offers: every image of the given sources (prepared shards or dataset
folders, listed without reading pixels) and the user's uploads (kept in memory only).

An image is addressed by an opaque id (``"3"``, ``"u1"``) that indexes this catalog: no part
of a URL ever becomes a file path, so nothing outside the sources can be served.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from iis_pipe import sources
from iis_pipe.errors import BadInput
from iis_pipe.geometry.box import unbox
from iis_pipe.images import JPEG_MAGIC, decode_image, read_image_bytes
from iis_pipe.records import schema
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.shards.tar import split_name
from iis_pipe.stream.urls import expand_urls, is_remote
from iis_pipe.pipelines.evaluate import dataset_name, is_prepared

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIME = {"jpg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class Picture:
    """A loaded image: ``image (H, W, 3) uint8`` RGB, ``objects (R, H, W) bool`` its ground-truth
    regions (R = 0 without ground truth), ``ignore (H, W) bool`` or None, and ``data``/``ext``
    the encoded file the browser shows (the same pixels as ``image``)."""

    image: np.ndarray
    objects: np.ndarray
    ignore: np.ndarray | None
    data: bytes
    ext: str


@dataclass(frozen=True)
class Entry:
    """One image of the catalog; ``load`` reads it (raising ``BadInput``)."""

    id: str
    dataset: str
    key: str
    file: str
    load: Callable[[], Picture]


def picture(data: bytes, ext: str, objects: np.ndarray | None = None,
            ignore: np.ndarray | None = None) -> Picture:
    """A ``Picture`` of encoded image bytes. A JPEG whose EXIF orientation would make a browser
    rotate it is served as PNG of the decoded pixels, so that the page shows what the
    predictor sees."""
    image = decode_image(data, ext)
    if ext == "jpg" and Image.open(io.BytesIO(data)).getexif().get(0x0112, 1) != 1:
        import cv2

        data, ext = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes(), "png"
    h, w = image.shape[:2]
    objects = np.zeros((0, h, w), bool) if objects is None else objects
    return Picture(image, objects, ignore, data, ext)


def _folder_entries(root: Path, dataset: str, format: str | None) -> list[Entry]:
    fmt = sources.get_format(format or sources.detect_format(root))
    out = []
    for item in fmt.scan(root):
        if isinstance(item, BadInput):
            continue  # a half pair: nothing to show

        def load(item=item) -> Picture:
            s = fmt.load(item)
            # The regions evaluate takes from a folder (prepare's defaults).
            regions = unbox(region_candidates(s.instance_masks, s.instance_meta)[0], s.size)
            return picture(s.image_bytes, s.image_ext, regions, s.ignore)

        image_file = item.files.get("image", item.key)
        out.append(Entry("", dataset, item.key, Path(image_file).name, load))
    return out


def _shard_entries(source: str, dataset: str) -> list[Entry]:
    out = []
    for url in expand_urls(source):
        if is_remote(url):
            raise ValueError(f"{url}: the app reads local shards only")
        groups: dict[str, dict[str, tarfile.TarInfo]] = {}
        try:
            with tarfile.open(url) as tar:  # headers only: members are read on demand
                for info in tar.getmembers():
                    if info.isfile():
                        key, suffix = split_name(info.name)
                        groups.setdefault(key, {})[suffix] = info
        except (tarfile.TarError, OSError) as e:
            raise ValueError(f"{url}: not a readable shard ({e})") from None

        for key, infos in groups.items():
            def load(url=url, key=key, infos=infos) -> Picture:
                try:
                    with tarfile.open(url) as tar:
                        members = {s: tar.extractfile(i).read() for s, i in infos.items()}
                    rec = schema.decode_record(members)
                except (tarfile.TarError, OSError, ValueError, KeyError) as e:
                    raise BadInput(url, f"record does not decode ({e})", key) from None
                ext = next(s for s in schema.IMAGE_SUFFIXES if s in members)
                return picture(members[ext], ext, rec.regions, rec.ignore)

            out.append(Entry("", dataset, key, f"{Path(url).name}:{key}", load))
    return out


class Catalog:
    """Images of ``sources`` plus uploads; ``get(id)`` loads one (a few kept in memory).

    ``ValueError``/``FileNotFoundError`` at construction for an unusable source.
    """

    def __init__(self, sources_: Sequence[str | Path] = (), format: str | None = None,
                 cache: int = 8, max_uploads: int = 8):
        entries: list[Entry] = []
        seen: dict[str, int] = {}
        for src in sources_:
            name = dataset_name(src)
            seen[name] = seen.get(name, 0) + 1
            name = name if seen[name] == 1 else f"{name}-{seen[name]}"
            if is_prepared(src):
                entries += _shard_entries(str(src), name)
            elif not Path(src).is_dir():
                raise FileNotFoundError(f"{src}: no such folder or shard")
            else:
                entries += _folder_entries(Path(src), name, format)
        self._entries = {str(i): Entry(str(i), e.dataset, e.key, e.file, e.load)
                         for i, e in enumerate(entries)}
        self._uploads: OrderedDict[str, Entry] = OrderedDict()
        self._cache: OrderedDict[str, Picture] = OrderedDict()
        self._size, self._max_uploads, self._count = cache, max_uploads, 0
        self._lock = threading.Lock()

    def entries(self) -> list[Entry]:
        """The sources' images in order, then the uploads."""
        with self._lock:
            return [*self._entries.values(), *self._uploads.values()]

    def entry(self, id: str) -> Entry:
        """``KeyError`` for an id not in the catalog."""
        with self._lock:
            return self._entries[id] if id in self._entries else self._uploads[id]

    def get(self, id: str) -> Picture:
        """The image ``id`` (``KeyError`` if unknown, ``BadInput`` if it does not load)."""
        entry = self.entry(id)
        with self._lock:
            if id in self._cache:
                self._cache.move_to_end(id)
                return self._cache[id]
        pic = entry.load()
        with self._lock:
            self._cache[id] = pic
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return pic

    def upload(self, data: bytes, name: str, max_pixels: int) -> Entry:
        """Add an uploaded JPEG or PNG (``BadInput`` naming ``name`` for anything else, or an
        image over ``max_pixels``); the oldest upload is forgotten past ``max_uploads``."""
        if not (data.startswith(JPEG_MAGIC) or data.startswith(PNG_MAGIC)):
            raise BadInput(name, "not a JPEG or PNG file")
        try:  # the header's size, before anything is decoded (a small file can hold a huge image)
            w, h = Image.open(io.BytesIO(data)).size
        except (OSError, ValueError, SyntaxError) as e:
            raise BadInput(name, f"not a decodable image ({e})") from None
        if w * h > max_pixels:
            raise BadInput(name, f"{w}x{h} pixels, more than the {max_pixels} allowed")
        data, ext, _ = read_image_bytes(data, name)
        pic = picture(data, ext)
        with self._lock:
            self._count += 1
            id = f"u{self._count}"
            entry = Entry(id, "upload", Path(name).stem or id, name, lambda: pic)
            self._uploads[id] = entry
            while len(self._uploads) > self._max_uploads:
                old, _ = self._uploads.popitem(last=False)
                self._cache.pop(old, None)
        return entry
