"""Window (partial) JPEG decoding against whole-image decoding by another libjpeg-turbo build."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import simplejpeg

from iis_pipe import images
from iis_pipe.geometry.box import Box


def _real_jpegs(per_set: int = 6) -> list[bytes]:
    from conftest import real_set

    out = []
    for name in ("GrabCut", "Berkeley", "DAVIS"):
        paths = sorted(p for p in real_set(name).rglob("*.jpg"))
        out += [p.read_bytes() for p in paths[:: max(len(paths) // per_set, 1)][:per_set]]
    return out


def _whole(data: bytes, reduce: int, fast: bool) -> np.ndarray:
    h, w = simplejpeg.decode_jpeg_header(data)[:2]
    return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=fast, fastupsample=fast,
                                  min_height=-(-h // reduce), min_width=-(-w // reduce))


def _check_window(data, window, reduce, fast, index=None):
    whole = _whole(data, reduce, fast)
    px, (oy, ox) = images.decode_jpeg_window(data, Box(*window), reduce, fast, index)
    assert px.dtype == np.uint8 and px.ndim == 3 and px.shape[2] == 3
    assert oy % reduce == 0 and ox % reduce == 0
    ty, tx = oy // reduce, ox // reduce
    # the block covers the window, clipped to the image
    y0, y1, x0, x1 = window
    assert ty <= max(y0 // reduce, 0) and tx <= max(x0 // reduce, 0)
    assert ty + px.shape[0] >= min(-(-y1 // reduce), whole.shape[0])
    assert tx + px.shape[1] >= min(-(-x1 // reduce), whole.shape[1])
    # inside the window every pixel is the whole decode's (the margin around it may differ)
    wy0, wx0 = max(y0 // reduce, 0), max(x0 // reduce, 0)
    wy1, wx1 = min(-(-y1 // reduce), whole.shape[0]), min(-(-x1 // reduce), whole.shape[1])
    np.testing.assert_array_equal(px[wy0 - ty:wy1 - ty, wx0 - tx:wx1 - tx],
                                  whole[wy0:wy1, wx0:wx1])


@pytest.mark.realdata
@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("recoded", [False, True])  # partial decoding / restart segments
def test_window_equals_the_same_pixels_of_a_whole_decode(fast, recoded):
    rng = np.random.default_rng(3)
    for data in _real_jpegs():
        data = images.add_restart_markers(data) if recoded else data
        h, w = simplejpeg.decode_jpeg_header(data)[:2]
        for reduce in (1, 2, 4, 8):
            for _ in range(3):
                y0, x0 = int(rng.integers(-5, h - 2)), int(rng.integers(-5, w - 2))
                y1, x1 = int(rng.integers(y0 + 1, h + 9)), int(rng.integers(x0 + 1, w + 9))
                _check_window(data, (y0, y1, x0, x1), reduce, fast)
        _check_window(data, (0, h, 0, w), 1, fast)
        _check_window(data, (h - 3, h, w - 5, w), 1, fast)  # the last MCU's partial pixels


@pytest.mark.realdata
@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_progressive_and_other_chroma_subsampling_jpegs():
    import io

    from PIL import Image

    data = _real_jpegs(per_set=1)[0]
    img = Image.open(io.BytesIO(data))
    rng = np.random.default_rng(5)
    for kw in (dict(progressive=True), dict(subsampling=0), dict(subsampling=1)):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90, **kw)
        h, w = img.height, img.width
        for reduce in (1, 2):
            for fast in (True, False):
                y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                _check_window(buf.getvalue(), (y0, y0 + h // 3, x0, x0 + w // 3), reduce, fast)


@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_gray_jpeg_comes_out_rgb_and_garbage_falls_back_to_a_clear_error():
    gray = np.random.default_rng(0).integers(0, 255, (37, 53), dtype=np.uint8)
    data = cv2.imencode(".jpg", cv2.GaussianBlur(gray, (5, 5), 0))[1].tobytes()
    _check_window(data, (3, 30, 10, 40), 1, True)
    with pytest.raises(ValueError):  # from the whole-image decoder after the window one fails
        images.decode_jpeg_window(b"\xff\xd8not a jpeg", Box(0, 4, 0, 4))


def test_without_the_extension_the_whole_image_is_decoded(monkeypatch):
    img = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    data = simplejpeg.encode_jpeg(img, quality=90)
    monkeypatch.setattr(images, "_jpegwindow", None)
    px, origin = images.decode_jpeg_window(data, Box(5, 20, 7, 30), 2, False)
    assert origin == (0, 0)
    np.testing.assert_array_equal(px, _whole(data, 2, False))


def _markers(data: bytes) -> dict[int, list[bytes]]:
    """Header marker segments ``{marker: [payload, ...]}`` up to the first scan."""
    out: dict[int, list[bytes]] = {}
    i = 2
    while data[i + 1] != 0xDA:
        n = int.from_bytes(data[i + 2:i + 4], "big")
        out.setdefault(data[i + 1], []).append(data[i + 4:i + 2 + n])
        i += 2 + n
    return out


@pytest.mark.realdata
@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_restart_recoding_keeps_every_pixel():
    for data in _real_jpegs():
        out = images.add_restart_markers(data)
        for fast in (True, False):
            np.testing.assert_array_equal(_whole(out, 1, fast), _whole(data, 1, fast))
        interval = int.from_bytes(_markers(out)[0xDD][0], "big")
        w = simplejpeg.decode_jpeg_header(data)[1]
        per_row = -(-w // 16)  # these sets are 4:2:0: 16-pixel MCUs
        assert 1 <= interval <= 4 and per_row % interval == 0
        assert 0xDD not in _markers(data)  # the sources had none: the re-coding added them


@pytest.mark.realdata
@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_a_restart_coded_window_reads_only_its_own_segments():
    data = images.add_restart_markers(_real_jpegs(per_set=1)[-1])  # DAVIS: 854x480
    h, w = simplejpeg.decode_jpeg_header(data)[:2]
    want = _whole(data, 1, True)
    # Garble the first tenth of the entropy-coded data (0xFF and the byte after it kept: the
    # markers stay intact): rows at
    # the top decode to garbage, a window at the bottom must not notice.
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    part = data[start:start + len(data) // 10]
    junk = bytes(b if b == 0xFF or part[i - 1] == 0xFF else (b ^ 0x5A) % 255
                 for i, b in enumerate(part))
    bad = data[:start] + junk + data[start + len(junk):]
    garbled = simplejpeg.decode_jpeg(bad, colorspace="RGB", fastdct=True, fastupsample=True,
                                     strict=False)
    assert not np.array_equal(garbled[:16], want[:16])
    px, (oy, ox) = images.decode_jpeg_window(bad, Box(h - 100, h, w // 2, w // 2 + 200), 1, True)
    np.testing.assert_array_equal(px[h - 100 - oy:, w // 2 - ox:w // 2 - ox + 200],
                                  want[h - 100:, w // 2:w // 2 + 200])


@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_restart_recoding_of_other_jpeg_layouts_keeps_pixels_and_markers():
    import io

    from PIL import Image

    rng = np.random.default_rng(2)
    base = cv2.GaussianBlur(rng.integers(0, 255, (61, 7 * 16 + 3, 3), dtype=np.uint8), (7, 7), 0)
    img = Image.fromarray(base)
    exif = Image.Exif()
    exif[0x010E] = "iis-pipe test"  # ImageDescription
    layouts = [dict(progressive=True), dict(subsampling=0), dict(subsampling=1),
               dict(exif=exif.tobytes(), comment=b"kept")]
    for kw in layouts:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90, **kw)
        data = buf.getvalue()
        out = images.add_restart_markers(data, mcus=4)
        np.testing.assert_array_equal(_whole(out, 1, False), _whole(data, 1, False))
        for marker in (0xE1, 0xFE):  # EXIF and comment segments survive
            assert _markers(out).get(marker) == _markers(data).get(marker)
        _check_window(out, (9, 50, 17, 90), 1, True)
        _check_window(out, (9, 50, 17, 90), 2, False)
    gray = simplejpeg.encode_jpeg(base[:, :, :1].copy(), colorspace="GRAY", quality=90)
    out = images.add_restart_markers(gray, mcus=3)  # 15 blocks per row: every 3rd
    assert int.from_bytes(_markers(out)[0xDD][0], "big") == 3
    _check_window(out, (5, 40, 20, 70), 1, True)
    with pytest.raises(ValueError, match="re-coding failed"):
        images.add_restart_markers(b"\xff\xd8not a jpeg")


@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_jpegs_restarting_elsewhere_than_on_row_segments_decode_all_the_same():
    import io

    from PIL import Image

    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(rng.integers(0, 255, (70, 8 * 16 + 5, 3), dtype=np.uint8), (7, 7), 0)
    # 9 MCUs per 4:2:0 row: every 3rd divides it (segments), every 4th and 5th do not (the
    # decoder must notice and decode the usual way), every row's worth of MCUs too
    for every in (3, 4, 5, 9):
        buf = io.BytesIO()
        Image.fromarray(base).save(buf, "JPEG", quality=90, restart_marker_blocks=every)
        data = buf.getvalue()
        assert int.from_bytes(_markers(data)[0xDD][0], "big") == every
        for reduce in (1, 2):
            _check_window(data, (11, 60, 19, 101), reduce, True)
            _check_window(data, (0, 70, 40, 133), reduce, False)


def test_restart_recoding_needs_the_extension(monkeypatch):
    monkeypatch.setattr(images, "_jpegwindow", None)
    with pytest.raises(RuntimeError, match="not built"):
        images.add_restart_markers(b"\xff\xd8")


@pytest.mark.skipif(images._jpegwindow is None, reason="_jpegwindow extension not built")
def test_corrupt_restart_coded_jpegs_raise_or_decode_never_crash():
    # the C code parses headers and scans for markers itself: a bad length or a stray marker
    # must end in ValueError (or garbage pixels), never in a read past the buffer
    rng = np.random.default_rng(9)
    base = cv2.GaussianBlur(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8), (5, 5), 0)
    good = images.add_restart_markers(simplejpeg.encode_jpeg(base, quality=90), mcus=2)
    outcomes = set()
    for it in range(400):
        d = bytearray(good)
        if it % 3 == 0:
            d = d[:int(rng.integers(2, len(d)))]
        else:  # flips in the header (it % 3 == 1) or anywhere
            end = min(len(d), 700) if it % 3 == 1 else len(d)
            for _ in range(int(rng.integers(1, 8))):
                d[int(rng.integers(0, end))] = int(rng.integers(0, 256))
        y0, x0 = int(rng.integers(-4, 96)), int(rng.integers(-4, 160))
        try:
            images.decode_jpeg_window(bytes(d), Box(y0, y0 + 40, x0, x0 + 60), 1, True)
            outcomes.add("decoded")
        except ValueError:
            outcomes.add("refused")
    assert outcomes == {"decoded", "refused"}
