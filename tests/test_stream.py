"""The training stream on shards prepared from real data: geometry, exactly-once epochs,
determinism whatever the workers, resume, corrupt shards, flat memory."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from iis_pipe.errors import BadInput
from iis_pipe.stream.augment import apply, plan
from iis_pipe.pipelines.prepare import RecordParams, prepare
from iis_pipe.stream import ShardStream, StreamLoader, ritm_cocolvis_hrnet18, stream_config

NO_PHOTO = dict(brightness_contrast_prob=0.0, rgb_shift_prob=0.0)


@pytest.fixture(scope="module")
def grabcut_shards(tmp_path_factory):
    from conftest import real_set

    root = real_set("GrabCut")
    out = tmp_path_factory.mktemp("gc") / "shards"
    prepare(root, out, workers=2, progress=False, shard_count=7)
    return out, root


@pytest.fixture(scope="module")
def grabcut_restart_shards(tmp_path_factory):
    """GrabCut with JPEGs re-coded with restart markers (``prepare --jpeg-restarts 4``)."""
    from conftest import real_set

    out = tmp_path_factory.mktemp("gc_rst") / "shards"
    prepare(real_set("GrabCut"), out, workers=2, progress=False, shard_count=7,
            params=RecordParams(jpeg_restarts=4))
    return out


@pytest.fixture(scope="module")
def toy_shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "shards"
    prepare("toy", out, source_options={"count": 37}, workers=1, progress=False, shard_count=5)
    return out


def _batches(loader, n=None):
    out = []
    for b in loader:
        out.append(b)
        if n is not None and len(out) == n:
            break
    return out


def _same(a, b):
    assert a["keys"] == b["keys"]
    for k in ("image", "target", "clicks", "transform"):
        assert torch.equal(a[k], b[k]), k


def test_plan_matches_an_independent_crop():
    img = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    # scale 1, flip, origin (5, 9): a plain slice and mirror
    p = plan((50, 70), (50, 70), True, (20, 30), (5, 9))
    out = apply(img, p, linear=True)
    assert np.array_equal(out, img[5:25][:, ::-1][:, 9:39])
    xy = np.array([[3.0, 7.0]])
    assert np.allclose(p.to_crop(xy), [[69 - 3 - 9, 7 - 5]])


def _nearest_reference(n, m):
    """Centre-aligned nearest neighbour as Pillow and OpenCV 5 step it: a half step, then whole
    steps of n / m, accumulated in float64 and truncated."""
    steps = np.full(m, n / m)
    steps[0] = n / m * 0.5
    return np.minimum(np.floor(np.add.accumulate(steps)).astype(int), n - 1)


def test_nearest_map_is_the_centre_rule_and_opencv_nearest_exact():
    import cv2

    from iis_pipe.stream.nearest import nearest_map

    opencv5 = int(cv2.__version__.split(".")[0]) >= 5  # 4.x rounds a 16-bit fixed point
    sizes = [*range(1, 40), 100, 229, 320, 333, 427, 480, 640, 854, 1200]
    for n in [*range(1, 200, 7), 229, 320, 427, 480, 640, 854, 1281]:
        for m in sizes:
            got = nearest_map(n, m)
            np.testing.assert_array_equal(got, _nearest_reference(n, m))
            if opencv5:
                want = cv2.resize(np.arange(n, dtype=np.int32)[None], (m, 1),
                                  interpolation=cv2.INTER_NEAREST_EXACT)[0]
                np.testing.assert_array_equal(got, want)


def _nearest_crop(a, origin, p, fill):
    """Plain numpy: the crop of plan ``p`` from ``a (L, n, m)`` (its ``[0, 0]`` at original
    pixel ``origin``): gather the window's nearest pixels, mirror, paste; off ``a``: ``fill``."""
    y0, y1, x0, x1 = p.window
    rows = _nearest_reference(y1 - y0, p.size[0]) + y0 - origin[0]
    cols = _nearest_reference(x1 - x0, p.size[1]) + x0 - origin[1]
    padded = np.full((len(a), a.shape[1] + 1, a.shape[2] + 1), fill, a.dtype)
    padded[:, :-1, :-1] = a  # index -1: off a
    rows = np.where((rows >= 0) & (rows < a.shape[1]), rows, -1)
    cols = np.where((cols >= 0) & (cols < a.shape[2]), cols, -1)
    block = padded[:, rows][:, :, cols]
    if p.flip:
        block = block[:, :, ::-1]
    crop = np.full((len(a), *p.crop), fill, a.dtype)
    crop[:, p.paste[0]:p.paste[0] + p.size[0], p.paste[1]:p.paste[1] + p.size[1]] = block
    return crop


def _warp_reference(layers, first, p, slots):
    """Masks of ``slots`` and labelled pixels of the crop from ``layers (L, n, W)``."""
    crop = _nearest_crop(layers, (first, 0), p, 0)
    masks = np.array([crop[layer] == label for layer, label in slots], bool)
    return masks.reshape(-1, *p.crop), (crop > 0).any(0)


def _random_plans(rng, shape, n):
    from iis_pipe.stream.augment import AugmentConfig, draw_scale_flip, origin_range

    wide = AugmentConfig(scale_range=(0.2, 2.5))  # padding (small scales) and big upscales
    for _ in range(n):
        scaled, flip = draw_scale_flip(shape, wide, rng)
        crop = (int(rng.integers(40, 400)), int(rng.integers(40, 500)))
        top = origin_range(scaled, crop)
        origin = (int(rng.integers(top[0] + 1)), int(rng.integers(top[1] + 1)))
        yield plan(shape, scaled, flip, crop, origin, align=int(rng.choice([1, 2, 8])))


@pytest.mark.realdata
def test_label_runs_warp_like_resizing_the_layers(davis_dir, voc_sample_dir):
    import cv2

    from conftest import real_instances
    from iis_pipe.records import masks as layering, runs
    from iis_pipe.stream.nearest import warp_labels

    opencv5 = int(cv2.__version__.split(".")[0]) >= 5
    rng = np.random.default_rng(3)
    checked = flips = padded = 0
    for _, inst in real_instances(davis_dir, voc_sample_dir, 60):
        inst = np.concatenate([inst, np.roll(inst[:1], (15, 30), (1, 2))])  # overlaps: 2 layers
        stacked, slots = layering.pack_layers(inst)
        h, w = inst.shape[1:]
        n_layers = len(stacked) // h
        layers = stacked.reshape(n_layers, h, w)
        for p in _random_plans(rng, (h, w), 40):
            # all rows, or the window's rows only (as older records give them)
            a, b = (0, h) if rng.random() < 0.5 else (max(p.window[0], 0), min(p.window[1], h))
            part = layers[:, a:b]
            found = runs.encode_runs(part.reshape(-1, w))
            lr = runs.LayerRuns(found, runs.row_starts(found, n_layers * (b - a), w), a, b - a, w)
            chosen = rng.choice(len(slots), size=int(rng.integers(0, 3)), replace=False)
            want_slots = [slots[i] for i in chosen]
            got_m, got_t, got_o, visible = warp_labels(
                lr, n_layers, p, np.array(want_slots, np.int64).reshape(-1, 2))
            want_m, want_l = _warp_reference(part, a, p, want_slots)
            np.testing.assert_array_equal(got_m, want_m)
            want_t = want_m.any(0)
            np.testing.assert_array_equal(got_t, want_t)
            np.testing.assert_array_equal(got_o, want_l & ~want_t)
            assert visible == np.count_nonzero(want_t)
            # schema 5's union layer after the others: read with the targets' layers only
            with_union = np.concatenate([part, (part != 0).any(0, keepdims=True).astype(part.dtype)])
            found = runs.encode_runs(with_union.reshape(-1, w))
            lr = runs.LayerRuns(found, runs.row_starts(found, (n_layers + 1) * (b - a), w), a,
                                b - a, w)
            got_m, got_t, got_o, visible = warp_labels(
                lr, n_layers, p, np.array(want_slots, np.int64).reshape(-1, 2), union=n_layers)
            np.testing.assert_array_equal(got_m, want_m)
            np.testing.assert_array_equal(got_t, want_t)
            np.testing.assert_array_equal(got_o, want_l & ~want_t)
            assert visible == np.count_nonzero(want_t)
            if opencv5:  # and what resizing each layer with OpenCV gives
                for (layer, label), got in zip(want_slots, got_m):
                    resized = apply(layers[layer], p, linear=False)
                    np.testing.assert_array_equal(got, resized == label)
            checked += 1
            flips += p.flip
            padded += p.size != p.crop
    assert checked > 200 and flips > 50 and padded > 25


def _read_box_reference(p, box):
    """The original pixels the nearest rule reads for a crop box (numpy): each crop pixel's
    source through the plan, the box holding them (empty: padding only)."""
    from iis_pipe.geometry.box import Box

    y0, y1, x0, x1 = p.window
    ys = np.arange(box.y0, box.y1) - p.paste[0]
    xs = np.arange(box.x0, box.x1) - p.paste[1]
    ys, xs = ys[(ys >= 0) & (ys < p.size[0])], xs[(xs >= 0) & (xs < p.size[1])]
    if p.flip:
        xs = p.size[1] - 1 - xs
    rows = _nearest_reference(y1 - y0, p.size[0])[ys] + y0
    cols = _nearest_reference(x1 - x0, p.size[1])[xs] + x0
    ry = (int(rows.min()), int(rows.max()) + 1) if len(rows) else (y0, y0)
    rx = (int(cols.min()), int(cols.max()) + 1) if len(cols) else (x0, x0)
    return Box(*ry, *rx)


@pytest.mark.realdata
def test_stored_maps_resampled_on_a_box_like_the_whole_crop(davis_dir, voc_sample_dir):
    import cv2

    from conftest import real_instances
    from iis_pipe.records import distances
    from iis_pipe.geometry.box import Box, mask_bbox
    from iis_pipe.stream.nearest import resample_box, source_box

    opencv5 = int(cv2.__version__.split(".")[0]) >= 5
    coding = distances.DistanceCoding(1.0, 60)  # a small clip: windows end inside the image
    rng = np.random.default_rng(4)
    checked = 0
    for _, inst in real_instances(davis_dir, voc_sample_dir, 70):
        for mask in inst[:3]:
            q, win = distances.encode_region(mask, mask_bbox(mask), coding)
            wy, wx = win.origin
            for p in _random_plans(rng, mask.shape, 25):
                whole = _nearest_crop(q[None], (wy, wx), p, coding.clip)[0]
                by0, by1 = sorted(int(v) for v in rng.integers(0, p.crop[0] + 1, 2))
                bx0, bx1 = sorted(int(v) for v in rng.integers(0, p.crop[1] + 1, 2))
                box = Box(by0, by1, bx0, bx1)
                out = np.empty((by1 - by0, bx1 - bx0), np.uint8)
                np.testing.assert_array_equal(resample_box(q, (wy, wx), p, box, coding.clip, out),
                                              whole[by0:by1, bx0:bx1])
                # the stored pixels the stream decodes: all that the box reads, and no more
                src = source_box(p, box)
                a, b = min(max(src.y0 - wy, 0), q.shape[0]), min(max(src.y1 - wy, 0), q.shape[0])
                c, d = min(max(src.x0 - wx, 0), q.shape[1]), min(max(src.x1 - wx, 0), q.shape[1])
                part = np.empty_like(out)
                resample_box(q[a:b, c:d], (wy + a, wx + c), p, box, coding.clip, part)
                np.testing.assert_array_equal(part, out)
                assert src == _read_box_reference(p, box)
                if opencv5:
                    want = apply(q, p, linear=False, fill=coding.clip, offset=(wy, wx))
                    np.testing.assert_array_equal(out, want[by0:by1, bx0:bx1])
                checked += 1
    assert checked > 200


@pytest.mark.realdata
def test_distances_on_the_sampled_window_only_change_no_click(grabcut_shards, monkeypatch):
    from iis_pipe.clicking import samplers
    from iis_pipe.geometry.box import Box

    cfg = stream_config(grabcut_shards[0], batch_size=8, seed=5, merge_prob=0.5)
    rows_only = _batches(StreamLoader(cfg), 4)
    # the sampler asks for maps over the whole crop instead of its window
    monkeypatch.setattr(samplers, "_window", lambda union, cfg, shape: (
        None if union[3] is None else Box.of_shape(shape)))
    for a, b in zip(rows_only, _batches(StreamLoader(cfg), 4), strict=True):
        _same(a, b)


@pytest.mark.parametrize("shards", ["grabcut_shards", "toy_shards"])
def test_stored_levels_give_the_clicks_of_float_maps(shards, request, monkeypatch):
    """The stream hands the sampler resized stored levels; the float inside / outside maps
    made of them (``distances.inside_outside``) give the same batches."""
    import iis_pipe.stream.sample as sample
    from iis_pipe.geometry.box import mask_bbox
    from iis_pipe.clicking.samplers import _band_window, _union, distance_window, levels_hold_band
    from iis_pipe.records import distances

    root = request.getfixturevalue(shards)
    cfg = stream_config(root[0] if isinstance(root, tuple) else root, batch_size=8, seed=6,
                        merge_prob=0.6)
    with_levels = _batches(StreamLoader(cfg), 3)
    real = sample.sample_clicks
    calls = []

    def floats(masks, scfg, rng, levels, **kw):
        window = distance_window(masks, scfg)
        if window is None:  # the targets fell out of the crop
            return real(masks, scfg, rng, **kw)
        levels, scale, reach = levels(window)
        assert levels.dtype == np.uint8
        (y0, x0), (h, w) = window[::2], levels.shape[1:]
        maps = [distances.inside_outside(q, m[y0:y0 + h, x0:x0 + w], distances.DistanceCoding(),
                                         scale) for q, m in zip(levels, masks)]
        union = _union(masks, [mask_bbox(m) for m in masks])
        r = _band_window(union[3], union[4], scfg.expand_ratio, masks.shape[1:])[1]
        held = levels_hold_band(reach, scale, r)  # else the band is computed from the masks
        calls.append((len(masks), held))
        return real(masks, scfg, rng, inside=np.stack([a for a, _ in maps]),
                    outside=np.stack([b for _, b in maps]) if held else None, origin=(y0, x0),
                    **kw)

    monkeypatch.setattr(sample, "sample_clicks", floats)
    for a, b in zip(with_levels, _batches(StreamLoader(cfg), 3), strict=True):
        _same(a, b)
    assert len(calls) >= 20 and (shards == "grabcut_shards" or max(calls)[0] > 1)
    assert any(held for _, held in calls)


@pytest.mark.realdata
def test_label_rows_under_the_window_only_change_no_sample(grabcut_shards, monkeypatch):
    from iis_pipe.records import runs, schema

    # small crops and a large minimum area: many crops are placed more than once
    cfg = stream_config(grabcut_shards[0], batch_size=8, seed=8, crop_size=(64, 96),
                        min_object_area=3000, scale_range=(0.5, 1.5))
    whole = _batches(StreamLoader(cfg), 4)
    asked = []

    def rows_only(members, meta, y0, y1, read_layers=None):  # as older records: the window's rows
        h, w = meta["height"], meta["width"]
        y0, y1 = max(y0, 0), min(y1, h)
        layers = schema.decode_layers(members, meta).reshape(meta["layers"], h, w)[:, y0:y1]
        found = runs.encode_runs(layers.reshape(-1, w))
        asked.append((y0, y1, h))
        return runs.LayerRuns(found, runs.row_starts(found, meta["layers"] * (y1 - y0), w),
                              y0, y1 - y0, w)

    monkeypatch.setattr(schema, "decode_layer_runs", rows_only)
    for a, b in zip(whole, _batches(StreamLoader(cfg), 4), strict=True):
        _same(a, b)
    assert any(y1 - y0 < h for y0, y1, h in asked)
    assert len(asked) > 32  # some samples asked again for other rows


@pytest.mark.realdata
def test_photometric_equals_the_saturating_opencv_passes(grabcut_dir):
    import cv2

    from iis_pipe.images import decode_image, read_image_file
    from iis_pipe.stream.augment import AugmentConfig, photometric

    cfg = AugmentConfig(brightness_contrast_prob=1.0, rgb_shift_prob=1.0)
    wide = AugmentConfig(brightness_contrast_prob=1.0, rgb_shift_prob=1.0, rgb_shift_limit=60,
                         brightness_limit=(-0.6, 0.6), contrast_limit=(-0.5, 1.0))
    only_bc = AugmentConfig(brightness_contrast_prob=1.0, rgb_shift_prob=0.0)
    only_shift = AugmentConfig(brightness_contrast_prob=0.0, rgb_shift_prob=1.0)
    neither = AugmentConfig(brightness_contrast_prob=0.0, rgb_shift_prob=0.0)
    paths = sorted((grabcut_dir / "data_GT").glob("*.jpg"))[:12]
    saturated = 0
    for n, path in enumerate(paths):
        img = decode_image(*read_image_file(path)[:2])
        for c in (cfg, wide, only_bc, only_shift, neither):
            slot = np.zeros_like(img)
            got = photometric(img, c, np.random.default_rng(n), out=slot)
            assert got is slot
            rng = np.random.default_rng(n)  # the same draws, the two plain OpenCV passes
            want = img
            if rng.random() < c.brightness_contrast_prob:
                alpha = 1.0 + rng.uniform(*c.contrast_limit)
                beta = rng.uniform(*c.brightness_limit)
                want = cv2.addWeighted(img, alpha, img, 0.0, beta * 255.0)
            if rng.random() < c.rgb_shift_prob:
                shift = rng.uniform(-c.rgb_shift_limit, c.rgb_shift_limit, size=3)
                want = cv2.add(want, (*shift.tolist(), 0.0))
            assert np.array_equal(got, want)
            assert np.array_equal(photometric(img, c, np.random.default_rng(n)), want)
            saturated += int(np.count_nonzero((want == 0) | (want == 255)) > 1000)
    assert saturated > 12  # clipping happened in many


@pytest.mark.realdata
def test_geometry_clicks_and_masks(grabcut_shards):
    out, root = grabcut_shards
    cfg = stream_config(out, batch_size=10, seed=1, max_num_points=6, **NO_PHOTO)
    n_checked = n_band = 0
    for b in StreamLoader(cfg):
        for j, key in enumerate(b["keys"]):
            raw = np.array(Image.open(root / "boundary_GT" / f"{key}.bmp"))
            t = b["target"][j, 0].numpy()
            assert set(np.unique(t)) <= {-1.0, 0.0, 1.0}
            assert (t == 1).any(), "no empty targets unless asked for"
            clicks = b["clicks"][j].numpy()
            n = clicks.shape[0] // 2
            m = b["transform"][j].numpy().astype(np.float64)
            inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
            for i, (y, x, _) in enumerate(clicks):
                if y < 0:
                    continue
                assert t[y, x] == (1 if i < n else 0), "positives on target, negatives off it"
                # the click maps back onto the right pixel of the original ground truth
                ox, oy, _ = inv @ [x, y, 1]
                yy, xx = int(round(oy)), int(round(ox))
                near = raw[max(yy - 1, 0):yy + 2, max(xx - 1, 0):xx + 2]
                assert ((near == 255) if i < n else (near != 255)).any()
            # ignore pixels are those of the 128 band moved with the image, or padding
            ys, xs = np.nonzero(t == -1)
            ox, oy = (inv[:2, :2] @ np.stack([xs, ys]) + inv[:2, 2:]).round().astype(int)
            ok = (oy >= 0) & (oy < raw.shape[0]) & (ox >= 0) & (ox < raw.shape[1])
            if ok.sum() > 20:
                assert (raw[oy[ok], ox[ok]] == 128).mean() > 0.9
            n_band += int(ok.sum() > 0)
            n_checked += 1
    assert n_checked == 50 and n_band > 20


@pytest.mark.realdata
def test_image_is_the_original_pixels_at_scale_one(grabcut_shards):
    out, root = grabcut_shards
    cfg = stream_config(out, batch_size=5, seed=2, scale_range=(1.0, 1.0), crop_size=(96, 128),
                        image_dtype="uint8", fast_decode=False, **NO_PHOTO)
    b = next(iter(StreamLoader(cfg)))
    from iis_pipe.images import read_image_file, decode_image

    for j, key in enumerate(b["keys"]):
        path = next((root / "data_GT").glob(f"{key}.*"))
        data, ext, _ = read_image_file(path)
        orig = decode_image(data, ext)
        m = b["transform"][j].numpy()
        img = b["image"][j].permute(1, 2, 0).numpy()
        flip = m[0, 0] < 0
        x0 = int(round(-m[0, 2] if not flip else m[0, 2] - 127))
        y0 = int(round(-m[1, 2]))
        want = orig[y0:y0 + 96, x0:x0 + 128] if not flip else orig[y0:y0 + 96, x0:x0 + 128][:, ::-1]
        assert np.array_equal(img, want)


@pytest.mark.realdata
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("restarts", [False, True])  # partial decoding / restart segments
def test_window_decoding_changes_no_pixel(grabcut_shards, request, monkeypatch, fast, restarts):
    from iis_pipe import images

    if images._jpegwindow is None:
        pytest.skip("_jpegwindow extension not built")
    shards = (request.getfixturevalue("grabcut_restart_shards") if restarts
              else grabcut_shards[0])
    cfg = stream_config(shards, batch_size=8, seed=4, fast_decode=fast)
    windowed = _batches(StreamLoader(cfg), 3)
    monkeypatch.setattr(images, "_jpegwindow", None)  # whole-image decoding
    for a, b in zip(windowed, _batches(StreamLoader(cfg), 3), strict=True):
        _same(a, b)


@pytest.mark.realdata
def test_batches_written_in_place_equal_the_collated_ones(grabcut_shards):
    # uint8 / int8 batches are written by each sample into its slot; float ones are stacked
    kw = dict(batch_size=8, seed=6, crop_size=(96, 128), max_num_points=4)
    compact = _batches(StreamLoader(stream_config(grabcut_shards[0], image_dtype="uint8",
                                                  target_dtype="int8", **kw), num_workers=2))
    floats = _batches(StreamLoader(stream_config(grabcut_shards[0], **kw)))
    assert [len(b["keys"]) for b in compact] == [8] * 6 + [2]  # the last one is short
    for a, b in zip(compact, floats, strict=True):
        assert a["keys"] == b["keys"] and torch.equal(a["clicks"], b["clicks"])
        assert torch.equal(a["image"], (b["image"] * 255).round().to(torch.uint8))
        assert torch.equal(a["target"].float(), b["target"])
    assert any((a["target"] == -1).any() for a in compact)  # GrabCut's ignore bands came along


@pytest.mark.realdata
def test_exactly_once_with_two_ranks_and_two_workers(grabcut_shards):
    keys = []
    for rank in (0, 1):
        cfg = stream_config(grabcut_shards[0], batch_size=4, seed=3, rank=rank, world_size=2,
                            crop_size=(64, 96), max_num_points=4)
        keys += [k for b in StreamLoader(cfg, num_workers=2) for k in b["keys"]]
    assert len(keys) == 50 and len(set(keys)) == 50


@pytest.mark.realdata
def test_same_batches_whatever_the_workers_and_timing(grabcut_shards):
    cfg = stream_config(grabcut_shards[0], batch_size=4, seed=4, crop_size=(64, 96),
                        max_num_points=4)
    a = _batches(StreamLoader(cfg, num_workers=0))
    b = _batches(StreamLoader(cfg, num_workers=2))
    assert len(a) == len(b) == 13
    for x, y in zip(a, b):
        _same(x, y)
    other = _batches(StreamLoader(stream_config(grabcut_shards[0], batch_size=4, seed=5,
                                                crop_size=(64, 96), max_num_points=4)))
    assert [x["keys"] for x in other] != [x["keys"] for x in a]


@pytest.mark.realdata
def test_resampled_epochs_have_a_fixed_size(grabcut_shards):
    cfg = stream_config(grabcut_shards[0], batch_size=8, seed=6, resampled=True,
                        samples_per_epoch=60, crop_size=(64, 96), max_num_points=4)
    for workers in (0, 2):
        loader = StreamLoader(cfg, num_workers=workers)
        sizes = [sum(len(b["keys"]) for b in loader) for _ in range(2)]
        assert sizes == [60, 60]
    e0 = _batches(StreamLoader(cfg))
    loader = StreamLoader(cfg)
    first = [k for b in loader for k in b["keys"]]
    second = [k for b in loader for k in b["keys"]]
    assert first == [k for b in e0 for k in b["keys"]] and first != second


@pytest.mark.realdata
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_gives_the_uninterrupted_batches(grabcut_shards, workers):
    cfg = stream_config(grabcut_shards[0], batch_size=3, seed=7, crop_size=(64, 96),
                        max_num_points=4)
    whole = _batches(StreamLoader(cfg, num_workers=workers))
    first = StreamLoader(cfg, num_workers=workers)
    _batches(first, 5)
    state = first.state_dict()
    assert state["batch"] == 5
    second = StreamLoader(cfg, num_workers=workers)
    second.load_state_dict(state)
    rest = _batches(second)
    assert len(rest) == len(whole) - 5
    for x, y in zip(rest, whole[5:]):
        _same(x, y)


@pytest.mark.realdata
def test_corrupt_shard_is_counted_or_raised(grabcut_shards, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(grabcut_shards[0], bad)
    shard = bad / "shard-000002.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    cfg = stream_config(bad, batch_size=4, seed=8, crop_size=(64, 96), max_num_points=4,
                        shuffle_shards=False)
    loader = StreamLoader(cfg)
    with pytest.warns(UserWarning, match="shard-000002.tar"):
        keys = [k for b in loader for k in b["keys"]]
    assert 50 - 7 <= len(keys) < 50 and len(set(keys)) == len(keys)
    assert [e[0] for e in loader.errors] == [str(shard)]
    strict = StreamLoader(stream_config(bad, batch_size=4, seed=8, crop_size=(64, 96),
                                        max_num_points=4, strict=True))
    with pytest.raises(BadInput, match="shard-000002.tar"):
        _batches(strict)


@pytest.mark.realdata
def test_shard_scan_is_remembered_until_the_file_changes(grabcut_shards, tmp_path, monkeypatch):
    import os

    from iis_pipe.stream import reader

    shard = tmp_path / "shard.tar"
    shutil.copy(sorted(grabcut_shards[0].glob("*.tar"))[0], shard)
    first = list(reader.scan_local(str(shard)))
    assert len(first) > 1

    def no_parse(path):
        raise AssertionError("headers parsed again")

    monkeypatch.setattr(reader, "_scan_tar", no_parse)
    assert list(reader.scan_local(str(shard))) == first  # remembered
    monkeypatch.undo()
    data = shard.read_bytes()
    shard.write_bytes(data[:5000])  # cut: size and time change, so it is scanned anew
    got = []
    with pytest.raises(BadInput, match="truncated or corrupt"):
        got.extend(reader.scan_local(str(shard)))
    assert len(got) < len(first)
    with pytest.raises(BadInput, match="truncated or corrupt"):  # the fault, remembered too
        list(reader.scan_local(str(shard)))
    shard.write_bytes(data)
    os.utime(shard, ns=(0, 0))  # restored bytes, another time: a fresh, whole scan
    assert list(reader.scan_local(str(shard))) == first


@pytest.mark.realdata
def test_corrupt_record_is_skipped_with_its_key(grabcut_shards, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(grabcut_shards[0], bad)
    shard = bad / "shard-000000.tar"
    data = bytearray(shard.read_bytes())
    from iis_pipe.records.schema import SCHEMA_VERSION

    at = data.find(b'"schema":%d' % SCHEMA_VERSION)
    data[at:at + 10] = b'"schema":9'  # same length: the tar stays whole, the record does not
    shard.write_bytes(bytes(data))
    loader = StreamLoader(stream_config(bad, batch_size=4, seed=9, crop_size=(64, 96),
                                        max_num_points=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = [k for b in loader for k in b["keys"]]
    assert len(keys) == 49
    (url, key, reason), = loader.errors
    stems = {f.stem for f in (grabcut_shards[1] / "data_GT").iterdir()}
    assert url == str(shard) and key in stems and key not in keys and "schema" in reason


def test_pipe_urls_stream_like_local_files(toy_shards):
    shards = sorted(toy_shards.glob("shard-*.tar"))
    knobs = dict(batch_size=8, seed=12, crop_size=(64, 96), max_num_points=4)
    local = _batches(StreamLoader(stream_config(toy_shards, **knobs)))
    piped = _batches(StreamLoader(stream_config([f"pipe:cat {s}" for s in shards], **knobs)))
    assert len(local) == len(piped) == 5
    for x, y in zip(local, piped):
        _same(x, y)


def test_ritm_preset_knobs(toy_shards):
    cfg = ritm_cocolvis_hrnet18(toy_shards, batch_size=2)
    s = cfg.sample
    assert (s.augment.crop_size, s.augment.scale_range) == ((320, 480), (0.75, 1.40))
    assert (s.target.merge_prob, s.target.min_object_area, s.sampler.max_num_points) == \
        (0.15, 1000, 24)
    assert cfg.resampled and cfg.samples_per_epoch == 30000 and cfg.batch_size == 2
    b = next(iter(StreamLoader(cfg, num_workers=1)))  # through a worker's shared memory
    assert b["image"].dtype == torch.uint8 and b["image"].shape == (2, 3, 320, 480)
    assert b["target"].dtype == torch.int8 and b["target"].shape == (2, 1, 320, 480)
    assert b["clicks"].shape == (2, 48, 3)
    # the compact dtypes carry the same batch as the float ones
    f = next(iter(StreamLoader(ritm_cocolvis_hrnet18(toy_shards, batch_size=2,
                                                     image_dtype="float32",
                                                     target_dtype="float32"))))
    assert f["target"].dtype == torch.float32 and torch.equal(f["target"], b["target"].float())
    assert torch.equal((f["image"] * 255).round().to(torch.uint8), b["image"])
    assert set(torch.unique(f["target"]).tolist()) <= {-1.0, 0.0, 1.0}
    with pytest.raises(TypeError, match="nonsense"):
        stream_config(toy_shards, nonsense=1)
    with pytest.raises(ValueError, match="target_dtype"):
        stream_config(toy_shards, target_dtype="float16")


def test_background_probability_asks_for_empty_targets(toy_shards):
    cfg = stream_config(toy_shards, batch_size=37, seed=10, crop_size=(64, 96),
                        max_num_points=4, background_prob=0.5)
    b = next(iter(StreamLoader(cfg)))
    empty = [(b["target"][j] == 1).sum().item() == 0 for j in range(37)]
    assert 5 < sum(empty) < 32
    none = next(iter(StreamLoader(stream_config(toy_shards, batch_size=37, seed=10,
                                                crop_size=(64, 96), max_num_points=4))))
    assert all((none["target"][j] == 1).any() for j in range(37))


@pytest.mark.slow
def test_memory_stays_flat(tmp_path):
    import resource

    tiny = tmp_path / "tiny"
    prepare("toy", tiny, source_options={"count": 64, "height": 40, "width": 56}, workers=1,
            progress=False, shard_count=16)
    cfg = stream_config(tiny, batch_size=50, seed=11, resampled=True,
                        samples_per_epoch=20_000, crop_size=(32, 48), max_num_points=4,
                        shuffle_buffer=100)
    rss = []
    for i, _ in enumerate(ShardStream(cfg)):
        if i in (40, 399):
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    assert i == 399  # 20k samples
    assert rss[1] - rss[0] < 20_000  # KiB: no growth beyond noise


def test_sample_generators_depend_on_position_only():
    from iis_pipe.stream.order import sample_generators

    def draws(rng):  # 64- and 32-bit draws: the generator buffers half words in between
        return (rng.random(3).tolist(), rng.integers(0, 2**31, 5, dtype=np.uint32).tolist(),
                rng.normal(size=2).tolist())

    gen = sample_generators(11, 2)
    first = {p: draws(gen(p)) for p in (0, 1, 7, 2**40)}
    gen(7).integers(0, 9, dtype=np.uint32)  # left mid-way: the next move starts afresh
    for p in (2**40, 7, 0, 1):
        assert draws(gen(p)) == first[p]
        fresh = np.random.Philox(key=np.array([11, 2], np.uint64),
                                 counter=np.array([0, 0, p, 0], np.uint64))
        assert draws(np.random.Generator(fresh)) == first[p]
    assert len({str(v) for v in first.values()}) == 4
    assert draws(sample_generators(11, 3)(7)) != first[7]
    assert draws(sample_generators(12, 2)(7)) != first[7]


def test_expand_ratio_beyond_the_records_is_refused(toy_shards, tmp_path):
    """The maps hold the border band to the records' dt_expand (0.25 by default): a stream
    asking for more is refused at start when a manifest says so (naming it), else at the
    first record (naming the shard and key), never skipped as a bad record."""
    import shutil

    from iis_pipe.stream.sample import ExpandBeyondRecords

    _batches(StreamLoader(stream_config(toy_shards, batch_size=4, expand_ratio=0.25)), 1)
    with pytest.raises(ExpandBeyondRecords, match=r"manifest\.json: expand_ratio 0\.3 .* 0\.25"):
        StreamLoader(stream_config(toy_shards, batch_size=4, expand_ratio=0.3))
    bare = tmp_path / "bare"  # the shards without their manifest
    bare.mkdir()
    for shard in sorted(toy_shards.glob("shard-*.tar")):
        shutil.copy(shard, bare)
    loader = StreamLoader(stream_config(bare, batch_size=4, expand_ratio=0.3))
    with pytest.raises(ExpandBeyondRecords, match=r"shard-\d+\.tar, record .*--dt-expand 0\.3"):
        _batches(loader, 1)
    assert loader.errors == []


def test_dense_records_stream_the_same_reading_only_the_targets_layers(tmp_path, monkeypatch):
    """Overlapping objects (several layers and the union): the stream decompresses only the
    targets' layers and the union, and makes the batches it makes reading every layer."""
    import json

    import cv2

    from iis_pipe.records import schema

    rng = np.random.default_rng(5)
    (tmp_path / "src" / "images").mkdir(parents=True)
    entries, anns = [], []
    for i in range(6):
        pixels = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (160, 120))
        cv2.imwrite(str(tmp_path / "src" / "images" / f"{i}.jpg"), pixels)
        entries.append({"id": i + 1, "file_name": f"{i}.jpg", "height": 120, "width": 160})
        for _ in range(25):
            x, y = rng.uniform(0, 140, 1)[0], rng.uniform(0, 100, 1)[0]
            s = rng.uniform(4, 40)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": [[x, y, x + s, y, x + s / 2, y + s]]})
    (tmp_path / "src" / "annotations").mkdir()
    (tmp_path / "src" / "annotations" / "instances_x.json").write_text(json.dumps(
        {"images": entries, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    out = tmp_path / "shards"
    prepare(tmp_path / "src", out, format="coco", workers=1, progress=False)
    cfg = stream_config(out, batch_size=4, seed=3, crop_size=(64, 96), merge_prob=0.5)
    asked = []
    decode = schema.decode_layer_runs

    def counting(members, meta, y0, y1, read_layers=None):
        assert "runs_frames" in meta and meta["layers"] > 2
        asked.append(len(set(read_layers)))
        return decode(members, meta, y0, y1, read_layers)

    monkeypatch.setattr(schema, "decode_layer_runs", counting)
    some = _batches(StreamLoader(cfg), 3)
    assert asked and max(asked) <= 3  # up to two targets' layers and the union
    monkeypatch.setattr(schema, "decode_layer_runs", lambda m, meta, y0, y1, read_layers=None:
                        decode(m, meta, y0, y1))
    for a, b in zip(some, _batches(StreamLoader(cfg), 3), strict=True):
        _same(a, b)
