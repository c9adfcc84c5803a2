"""Entry-point indexes of untouched JPEGs: a window decoded from the index's segments under it
has the pixels of the whole image's decode; a bad index falls back, never crashes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from iis_pipe import images
from iis_pipe.geometry.box import Box
from test_images import _check_window, _real_jpegs, _whole

pytestmark = pytest.mark.skipif(images._jpegwindow is None,
                                reason="_jpegwindow extension not built")


def _windows(rng, h, w, n):
    """``n`` random windows (some over the edges), then the corners and whole rows."""
    out = []
    for _ in range(n):
        y0, x0 = int(rng.integers(-5, h - 1)), int(rng.integers(-5, w - 1))
        out.append((y0, int(rng.integers(y0 + 1, h + 9)), x0, int(rng.integers(x0 + 1, w + 9))))
    return out + [(0, 9, 0, 11), (h - 3, h, w - 5, w), (h // 2, h // 2 + 1, 0, w), (0, h, 0, w)]


def _check_cut(data, index, y0, y1, x0, x1):
    """The cut of rows [y0, y1), columns [x0, x1) is a JPEG of its own (another decoder reads
    it, strictly) whose pixels are the whole image's (plain upsampling reads no neighbour)."""
    cut, top, left = images._jpegwindow.cut_index(data, index, y0, y1, x0, x1)
    whole = _whole(data, 1, True)
    px = simplejpeg.decode_jpeg(cut, colorspace="RGB", fastdct=True, fastupsample=True,
                                strict=True)
    assert top <= max(y0, 0) and top + px.shape[0] >= min(y1, whole.shape[0])
    assert left <= max(x0, 0) and left + px.shape[1] >= min(x1, whole.shape[1])
    np.testing.assert_array_equal(px, whole[top:top + px.shape[0], left:left + px.shape[1]])
    return cut


def _encode(img: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def _image(rng, h, w, channels=3):
    import cv2

    noise = rng.integers(0, 255, (h, w, channels), dtype=np.uint8)
    img = cv2.GaussianBlur(noise, (7, 7), 0).reshape(h, w, channels)
    return img[:, :, 0] if channels == 1 else img


@pytest.mark.realdata
@pytest.mark.parametrize("fast", [True, False])
def test_real_jpeg_windows_from_their_segments_equal_a_whole_decode(fast):
    rng = np.random.default_rng(11)
    for data in _real_jpegs():
        index = images.jpeg_entry_index(data)
        assert index is not None and len(index) < 0.05 * len(data)  # 5-6 bytes per segment
        h, w = simplejpeg.decode_jpeg_header(data)[:2]
        for reduce in (1, 2, 4, 8):
            for window in _windows(rng, h, w, 4):
                _check_window(data, window, reduce, fast, index)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        cut = _check_cut(data, index, y0, y0 + 40, x0, x0 + 100)
        assert len(cut) < len(data) * 0.3  # a few segments of two or three MCU rows
        _check_cut(data, index, 0, h, 0, w)


@pytest.mark.realdata
def test_a_window_decoded_from_its_segments_never_reads_the_data_above():
    data = _real_jpegs(per_set=1)[-1]  # DAVIS: 854x480
    index = images.jpeg_entry_index(data)
    h, w = simplejpeg.decode_jpeg_header(data)[:2]
    want = _whole(data, 1, True)
    # garble the first half of the entropy-coded data (0xFF and the byte after it kept: the
    # stuffing stays where it was): rows above decode to garbage, a window below must not
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    part = data[start:start + (len(data) - start) // 2]
    junk = bytes(b if b == 0xFF or part[i - 1] == 0xFF else (b ^ 0x5A) % 255
                 for i, b in enumerate(part))
    bad = data[:start] + junk + data[start + len(junk):]
    px, (oy, ox) = images.decode_jpeg_window(bad, Box(h - 64, h, 100, 300), 1, True, index)
    np.testing.assert_array_equal(px[h - 64 - oy:, 100 - ox:300 - ox], want[h - 64:, 100:300])
    # without the index the garbage above reaches the window (the decoder loses its place)
    px, (oy, ox) = images.decode_jpeg_window(bad, Box(h - 64, h, 100, 300), 1, True)
    assert not np.array_equal(px[h - 64 - oy:, 100 - ox:300 - ox], want[h - 64:, 100:300])


@pytest.mark.parametrize("layout", ["444", "422", "420", "gray", "optimized", "odd"])
def test_written_jpegs_of_each_sampling_decode_windows_from_their_segments(layout):
    rng = np.random.default_rng(len(layout))
    h, w = (77, 141) if layout == "odd" else (96, 160)
    img = _image(rng, h, w, 1 if layout == "gray" else 3)
    kw = {"444": dict(subsampling=0), "422": dict(subsampling=1), "420": dict(subsampling=2),
          "gray": {}, "optimized": dict(optimize=True), "odd": dict(subsampling=2)}[layout]
    data = _encode(img, **kw)
    index = images.jpeg_entry_index(data)
    assert index is not None
    mcu_h = 16 if layout in ("420", "optimized", "odd") else 8
    mcu_w = 8 if layout in ("444", "gray") else 16
    assert int.from_bytes(index[18:20], "big") == -(-h // mcu_h)  # MCU rows
    assert index[17] * mcu_w == 64  # MCUs per segment: 64 pixels
    for reduce in (1, 2, 4, 8):
        for fast in (True, False):
            for window in _windows(rng, h, w, 6):
                _check_window(data, window, reduce, fast, index)
    for y0 in range(0, h, 5):
        _check_cut(data, index, y0, y0 + 7, 0, w)
        x0 = int(rng.integers(-3, w))
        _check_cut(data, index, y0, y0 + 30, x0, x0 + int(rng.integers(1, 90)))


def _dc_table(data: bytes) -> tuple[int, int, list[int], list[int]]:
    """``(offset, length, counts, symbols)`` of the DHT segment defining DC table 0 alone."""
    i = 2
    while data[i + 1] != 0xDA:
        n = int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xC4 and data[i + 4] == 0x00:
            counts = list(data[i + 5:i + 21])
            assert n == 2 + 17 + sum(counts)  # PIL writes a segment per table
            return i, 2 + n, counts, list(data[i + 21:i + 21 + sum(counts)])
        i += 2 + n
    raise AssertionError("no DC table 0")


def test_dc_differences_an_optimised_table_lacks_get_codes_of_their_own():
    # gray MCU rows a little brighter each: every DC difference is small, so the optimised
    # table codes no large category, but a cut's first DC values (against 0) are large
    img = np.repeat(np.arange(128, 256, 8, dtype=np.uint8), 8)[:, None].repeat(128, 1)
    data = _encode(np.ascontiguousarray(img), optimize=True)
    counts, symbols = _dc_table(data)[2:]
    assert max(symbols) < 8 and sum(counts) < 12
    index = images.jpeg_entry_index(data)
    _check_cut(data, index, 0, 8, 0, 64)  # the first row's DC needs no new code
    cut = _check_cut(data, index, 120, 128, 64, 128)  # it does: a DC table defined again
    assert cut.count(b"\xff\xc4") == data.count(b"\xff\xc4") + 1
    for fast in (True, False):
        _check_window(data, (120, 128, 64, 128), 1, fast, index)

    # the same JPEG with its DC table's free code space taken, down to 16 bits, by a
    # category it never uses (the same codes for the others: the same pixels): no room for
    # the missing ones, so a window needing a large category is decoded the other way
    at, n, counts, symbols = _dc_table(data)
    longest = max(l for l in range(16) if counts[l]) + 1  # bits
    free = 2 ** longest - sum(k << (longest - l - 1) for l, k in enumerate(counts[:longest]))
    assert free == 1  # the all-ones code, which no table may use
    counts[longest:] = [1] * (16 - longest)
    table = bytes([0]) + bytes(counts) + bytes(symbols + [15] * (16 - longest))
    full = data[:at] + b"\xff\xc4" + (2 + len(table)).to_bytes(2, "big") + table + data[at + n:]
    np.testing.assert_array_equal(_whole(full, 1, False), _whole(data, 1, False))
    index = images.jpeg_entry_index(full)
    _check_cut(full, index, 0, 8, 0, 64)
    with pytest.raises(ValueError, match="no code"):
        images._jpegwindow.cut_index(full, index, 120, 128, 64, 128)
    for fast in (True, False):
        _check_window(full, (120, 128, 64, 128), 1, fast, index)


@pytest.mark.parametrize("kw", [dict(progressive=True), dict(restart_marker_blocks=3),
                                dict(restart_marker_blocks=4)], ids=str)
def test_progressive_and_restart_coded_jpegs_get_no_index_and_decode_as_before(kw):
    rng = np.random.default_rng(6)
    data = _encode(_image(rng, 70, 133), **kw)
    assert images.jpeg_entry_index(data) is None
    assert images.jpeg_entry_index(b"\xff\xd8not a jpeg") is None
    index = images.jpeg_entry_index(_encode(_image(rng, 70, 133)))  # another image's
    for window in _windows(rng, 70, 133, 4):
        _check_window(data, window, 1, False, index)


def test_a_corrupt_or_foreign_index_falls_back_to_the_same_pixels():
    rng = np.random.default_rng(8)
    data = _encode(_image(rng, 96, 160))
    other = _encode(_image(rng, 96, 160))
    index = images.jpeg_entry_index(data)
    bad = [index[:-1], index + b"\0", images.jpeg_entry_index(other), b"", b"JIX1" * 40]
    for _ in range(60):
        flipped = bytearray(index)
        flipped[int(rng.integers(0, len(index)))] ^= 1 << int(rng.integers(0, 8))
        bad.append(bytes(flipped))
    for b in bad:
        with pytest.raises(ValueError, match="index"):
            images._jpegwindow.cut_index(data, b, 40, 60, 10, 100)
        y0 = int(rng.integers(0, 90))
        _check_window(data, (y0, y0 + 20, 30, 90), 1, bool(rng.integers(2)), b)


def test_corrupt_jpegs_with_their_index_raise_or_decode_never_crash():
    rng = np.random.default_rng(9)
    good = _encode(_image(rng, 96, 160))
    index = images.jpeg_entry_index(good)
    outcomes = set()
    for it in range(300):
        d = bytearray(good)
        if it % 3 == 0:  # truncated: the index no longer fits
            d = d[:int(rng.integers(2, len(d)))]
        else:  # flips in the header (it % 3 == 1) or anywhere, same length
            end = min(len(d), 700) if it % 3 == 1 else len(d)
            for _ in range(int(rng.integers(1, 8))):
                d[int(rng.integers(0, end))] = int(rng.integers(0, 256))
        y0, x0 = int(rng.integers(-4, 96)), int(rng.integers(-4, 160))
        try:
            images.decode_jpeg_window(bytes(d), Box(y0, y0 + 40, x0, x0 + 60), 1, True, index)
            outcomes.add("decoded")
        except ValueError:
            outcomes.add("refused")
    assert outcomes == {"decoded", "refused"}


@pytest.fixture(scope="module")
def davis_shards(tmp_path_factory):
    """Shards of 24 DAVIS frames (links to the real files), JPEGs untouched."""
    from conftest import real_set

    from iis_pipe.pipelines.prepare import prepare

    davis = real_set("DAVIS")
    root = tmp_path_factory.mktemp("davis") / "DAVIS"
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    for s in sorted(p.stem for p in (davis / "gt").glob("*.png"))[::14][:24]:
        (root / "img" / f"{s}.jpg").symlink_to(davis / "img" / f"{s}.jpg")
        (root / "gt" / f"{s}.png").symlink_to(davis / "gt" / f"{s}.png")
    out = tmp_path_factory.mktemp("davis_shards") / "o"
    prepare(root, out, workers=1, progress=False, shard_count=3)
    return out, root


def _records(out):
    from iis_pipe.shards.tar import iter_records

    return {k: m for s in sorted(out.glob("shard-*.tar")) for k, m in iter_records(s)}


@pytest.mark.realdata
def test_prepare_stores_the_index_of_untouched_jpegs_only(davis_shards, tmp_path):
    from iis_pipe.pipelines.prepare import RecordParams, prepare
    from iis_pipe.records import schema

    out, root = davis_shards
    recs = _records(out)
    assert len(recs) == 24
    for key, members in recs.items():
        source = (root / "img" / f"{key}.jpg").read_bytes()
        assert members["jpg"] == source  # untouched
        assert schema.decode_meta(members)["schema"] == 6
        assert schema.jpeg_index(members, schema.decode_meta(members)) == \
            images.jpeg_entry_index(source) is not None
    prepare(root, tmp_path / "rst", workers=1, progress=False, shard_count=1,
            params=RecordParams(jpeg_restarts=4))
    assert not any(schema.JPEG_INDEX in m for m in _records(tmp_path / "rst").values())


@pytest.mark.realdata
@pytest.mark.parametrize("fast", [True, False])
def test_stream_samples_are_the_same_with_and_without_the_index(davis_shards, monkeypatch,
                                                                fast):
    import torch

    from iis_pipe.records import schema
    from iis_pipe.stream import StreamLoader, sample, stream_config

    indexed = []

    def decode(data, window, reduce, fast, index=None):
        indexed.append(index is not None)
        return images.decode_jpeg_window(data, window, reduce, fast, index)

    monkeypatch.setattr(sample, "decode_jpeg_window", decode)
    cfg = stream_config(davis_shards[0], batch_size=8, seed=5, fast_decode=fast)
    with_index = list(StreamLoader(cfg))
    assert len(indexed) == 24 and all(indexed)
    monkeypatch.setattr(schema, "jpeg_index", lambda members, meta: None)
    without = list(StreamLoader(cfg))
    assert len(indexed) == 48 and not any(indexed[24:])
    assert len(with_index) == len(without) == 3
    for a, b in zip(with_index, without, strict=True):
        assert a["keys"] == b["keys"]
        for name in ("image", "target", "clicks"):
            assert torch.equal(a[name], b[name])


@pytest.mark.realdata
def test_records_without_the_index_or_of_version_5_make_the_same_samples(davis_shards):
    import json

    from iis_pipe.records import schema
    from iis_pipe.stream.sample import SampleConfig, make_sample

    cfg = SampleConfig()
    for i, members in enumerate(list(_records(davis_shards[0]).values())[:8]):
        stripped = {k: v for k, v in members.items() if k != schema.JPEG_INDEX}
        meta = json.loads(members[schema.META])
        v5 = {**stripped, schema.META: json.dumps({**meta, "schema": 5}).encode()}
        # a version-5 reader's view: a member it does not know is not read
        v5_with = {**v5, schema.JPEG_INDEX: members[schema.JPEG_INDEX]}
        assert schema.jpeg_index(v5_with, schema.decode_meta(v5_with)) is None
        want = make_sample(members, cfg, np.random.default_rng(i))
        for other in (stripped, v5, v5_with):
            got = make_sample(other, cfg, np.random.default_rng(i))
            for name in ("image", "target", "clicks"):
                np.testing.assert_array_equal(got[name], want[name])


def _fnv1a(data: bytes) -> bytes:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h.to_bytes(4, "little")


def test_an_index_garbled_under_a_valid_checksum_never_crashes():
    # the checksum catches accidents; past it the C code still checks every offset it reads,
    # so a forged index can only cost the window's pixels or a refusal
    rng = np.random.default_rng(10)
    data = _encode(_image(rng, 96, 160))
    index = images.jpeg_entry_index(data)
    outcomes = set()
    for _ in range(300):
        body = bytearray(index[:-4])
        for _ in range(int(rng.integers(1, 6))):
            body[int(rng.integers(20, len(body)))] = int(rng.integers(0, 256))
        forged = bytes(body) + _fnv1a(bytes(body))
        y0, x0 = int(rng.integers(0, 90)), int(rng.integers(0, 150))
        try:
            images._jpegwindow.cut_index(data, forged, y0, y0 + 30, x0, x0 + 50)
            outcomes.add("cut")
        except ValueError:
            outcomes.add("refused")
        images.decode_jpeg_window(data, Box(y0, y0 + 30, x0, x0 + 50), 1, True, forged)
    assert outcomes == {"cut", "refused"}
