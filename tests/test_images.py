"""Window (partial) JPEG decoding against whole-image decoding by another libjpeg-turbo build."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import simplejpeg

from iis_pipe import images


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


def _check_window(data, window, reduce, fast):
    whole = _whole(data, reduce, fast)
    px, (oy, ox) = images.decode_jpeg_window(data, window, reduce, fast)
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
def test_window_equals_the_same_pixels_of_a_whole_decode(fast):
    rng = np.random.default_rng(3)
    for data in _real_jpegs():
        h, w = simplejpeg.decode_jpeg_header(data)[:2]
        for reduce in (1, 2, 4, 8):
            for _ in range(3):
                y0, x0 = int(rng.integers(-5, h - 2)), int(rng.integers(-5, w - 2))
                y1, x1 = int(rng.integers(y0 + 1, h + 9)), int(rng.integers(x0 + 1, w + 9))
                _check_window(data, (y0, y1, x0, x1), reduce, fast)
        _check_window(data, (0, h, 0, w), 1, fast)


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
        images.decode_jpeg_window(b"\xff\xd8not a jpeg", (0, 4, 0, 4))


def test_without_the_extension_the_whole_image_is_decoded(monkeypatch):
    img = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    data = simplejpeg.encode_jpeg(img, quality=90)
    monkeypatch.setattr(images, "_jpegwindow", None)
    px, origin = images.decode_jpeg_window(data, (5, 20, 7, 30), 2, False)
    assert origin == (0, 0)
    np.testing.assert_array_equal(px, _whole(data, 2, False))
