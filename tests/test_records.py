"""Record encoding: layered masks, distance maps within the stated bound, whole records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from iis_pipe.records import arrays, distances, masks, runs, schema
from iis_pipe.geometry.box import Box, mask_bbox
from iis_pipe.regions.candidates import region_candidates


def _davis_masks(davis_dir, n=12):
    files = sorted((davis_dir / "gt").glob("*.png"))[:: max(1, 345 // n)][:n]
    out = []
    for f in files:
        ids = np.array(Image.open(f))
        out.append((f.stem, [ids == v for v in np.unique(ids) if v not in (0, 255)],
                    ids == 255))
    return out


def _grabcut_masks(grabcut_dir):
    for f in sorted((grabcut_dir / "boundary_GT").glob("*.bmp")):
        a = np.array(Image.open(f))
        yield f.stem, a == 255


def test_layers_round_trip_and_keep_overlaps():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :80]
    ms = []
    for _ in range(7):
        cy, cx, r = rng.integers(10, 50), rng.integers(10, 70), rng.integers(5, 20)
        ms.append((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
    ms = np.stack(ms)
    assert (ms.sum(0) > 1).any(), "the fixture must contain overlaps"
    stacked, slots = masks.pack_layers(ms)
    back = masks.unpack_layers(stacked, slots, 60)
    assert np.array_equal(back, ms)
    assert stacked.shape[0] // 60 == len({layer for layer, _ in slots}) > 1


def test_disjoint_masks_need_one_layer():
    ids = np.zeros((30, 40), np.uint8)
    ids[:10] = 1
    ids[10:20, :20] = 2
    ids[25:, 30:] = 3
    ms = np.stack([ids == v for v in (1, 2, 3)])
    stacked, slots = masks.pack_layers(ms)
    assert stacked.shape == (30, 40) and {layer for layer, _ in slots} == {0}
    assert np.array_equal(masks.unpack_layers(stacked, slots, 30, [2]), ms[[2]])


def _real_layers(davis_dir, voc_sample_dir):
    """Stacked label layers of real masks: DAVIS and VOC instances (one layer each), and DAVIS
    objects with a shifted copy overlapping them (two layers)."""
    from conftest import real_instances

    for name, inst in real_instances(davis_dir, voc_sample_dir, 50):
        yield name, masks.pack_layers(inst)[0], 1
        both = np.stack([inst[0], np.roll(inst[0], (9, 17), (0, 1))])
        yield name + " overlapped", masks.pack_layers(both)[0], 2


def test_label_runs_format_by_hand():
    layers = np.array([[0, 0, 1, 1, 2], [3, 3, 3, 3, 3]], np.uint8)
    found = runs.encode_runs(layers)
    assert found.dtype == np.uint16
    assert found.tolist() == [[2, 0], [4, 1], [5, 2], [5, 3]]
    assert runs.row_starts(found, 2, 5).tolist() == [0, 3, 4]
    assert runs.decode_runs(found, 2, 5).tolist() == layers.tolist()
    wide = np.zeros((2, 70000), np.uint16)
    wide[1, 66000:] = 300
    found = runs.encode_runs(wide)
    assert found.dtype == np.uint32 and found.tolist() == [[70000, 0], [66000, 0], [70000, 300]]
    back = runs.decode_runs(found, 2, 70000)
    assert back.dtype == np.uint16 and np.array_equal(back, wide)


def _runs_reference(layers):
    """Plain numpy: a run ends where a row's label changes, and at the row's end."""
    r, w = layers.shape
    change = np.ones((r, w), bool)
    change[:, 1:] = layers[:, 1:] != layers[:, :-1]
    ys, xs = np.nonzero(change)
    ends = np.append(xs[1:], w)
    ends[np.flatnonzero(np.diff(ys))] = w
    return np.stack([ends, layers[ys, xs]], 1)


@pytest.mark.realdata
def test_label_runs_round_trip_on_real_masks(davis_dir, voc_sample_dir):
    n = 0
    for name, layers, n_layers in _real_layers(davis_dir, voc_sample_dir):
        found = runs.encode_runs(layers)
        np.testing.assert_array_equal(found, _runs_reference(layers))
        assert len(found) < layers.size / 20, name  # masks are long runs
        back = runs.decode_runs(found, *layers.shape)
        assert back.dtype == np.uint8 and np.array_equal(back, layers), name
        starts = runs.row_starts(found, *layers.shape)
        for y in range(0, len(layers), 37):  # each row: runs of equal labels, ends rising
            row = found[starts[y]:starts[y + 1]].astype(int)
            edges = np.flatnonzero(np.diff(layers[y].astype(int))) + 1
            assert row[:, 0].tolist() == [*edges, layers.shape[1]], name
            assert row[:, 1].tolist() == layers[y, [0, *edges]].tolist(), name
        n += n_layers
    assert n > 20


def test_label_runs_refuse_corruption():
    layers = np.array([[0, 0, 1, 1, 2], [3, 3, 3, 3, 3]], np.uint8)
    found = runs.encode_runs(layers)
    bad = {"rows": (found, 3, 5), "width": (found, 2, 4), "past the end": (found, 2, 6),
           "truncated": (found[:-1], 2, 5), "dtype": (found.astype(np.int64), 2, 5)}
    falling = found.copy()
    falling[1, 0] = 1
    bad["not rising"] = (falling, 2, 5)
    zero = found.copy()
    zero[0, 0] = 0
    bad["empty run"] = (zero, 2, 5)
    for what, args in bad.items():
        with pytest.raises(ValueError, match="label runs"):
            runs.row_starts(*args)
        with pytest.raises(ValueError, match="label runs"):
            runs.decode_runs(*args)


def _exact(mask):
    inside = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~mask)
    return np.where(mask, inside, outside)


def _check_bound(mask, coding, expand=None):
    """The module's bound against scipy: on the region to the clip, off it to the reach
    (schema 5, ``expand``) or the clip (schema 1-4, None); saturated beyond."""
    reach = coding.clip - 1 if expand is None else distances.reach(int(mask.sum()), expand, coding)
    q, win = distances.encode_region(mask, mask_bbox(mask), coding,
                                     None if expand is None else reach)
    full = distances.unpack_region(q, win, mask.shape, coding.clip)
    exact = _exact(mask)
    decoded = full.astype(np.float64) * coding.step
    free = np.where(mask, exact < (coding.clip - 0.5) * coding.step,
                    exact <= (reach + 0.5) * coding.step)
    err = np.abs(decoded - exact)[free]
    assert err.max(initial=0) <= coding.step / 2 + 1e-6
    assert (full[~free & mask] == coding.clip).all()
    assert (full[~free & ~mask] >= min(reach + 1, coding.clip)).all()
    if expand is not None:  # the window holds the band to the reach, and no more than needed
        margin = int(np.ceil((reach + 0.5) * coding.step))
        assert win == mask_bbox(mask).grow(margin, mask.shape)
    return err.max(initial=0)


@pytest.mark.realdata
@pytest.mark.parametrize("coding", [distances.DistanceCoding(), distances.DistanceCoding(2.0, 40)])
@pytest.mark.parametrize("expand", [None, 0.25, 1.0])
def test_distance_bound_on_grabcut(grabcut_dir, coding, expand):
    worst = max(_check_bound(m, coding, expand) for _, m in _grabcut_masks(grabcut_dir))
    assert worst > 0  # the quantisation is real, not a copy of the exact values


@pytest.mark.realdata
@pytest.mark.parametrize("coding", [distances.DistanceCoding(), distances.DistanceCoding(0.5, 30)])
@pytest.mark.parametrize("expand", [None, 0.25])
def test_distance_bound_on_davis_instances(davis_dir, coding, expand):
    for _, insts, _ in _davis_masks(davis_dir):
        for m in insts:
            _check_bound(m, coding, expand)


@pytest.mark.realdata
def test_distance_bands_round_trip_on_real_masks(davis_dir, voc_sample_dir):
    """The 2-bit delta bands give back every level (raw bands where deltas exceed 1, as
    with a step under one pixel), read whole or by rows."""
    rng = np.random.default_rng(3)
    compress = arrays.zstd_compressor(3)
    vocs = [np.array(Image.open(p)) for p in sorted((voc_sample_dir / "masks").glob("*.png"))[:3]]
    found = [m for _, insts, _ in _davis_masks(davis_dir, 4) for m in insts]
    found += [ids == v for ids in vocs for v in np.unique(ids) if v not in (0, 255)]
    raw_bands = 0
    for coding in (distances.DistanceCoding(), distances.DistanceCoding(0.5, 60)):
        for m in found:
            q, _ = distances.encode_region(m, mask_bbox(m), coding,
                                           distances.reach(int(m.sum()), 0.25, coding))
            span = distances.encode_bands(q, 64, compress)
            whole, first = distances.decode_rows(span, q.shape, 64, 0, q.shape[0],
                                                 arrays.zstd_frames)
            assert first == 0 and np.array_equal(whole, q)
            for _ in range(3):
                y0 = int(rng.integers(-5, q.shape[0]))
                y1 = int(rng.integers(y0 + 1, q.shape[0] + 5))
                rows, first = distances.decode_rows(span, q.shape, 64, y0, y1, arrays.zstd_frames)
                assert first <= max(y0, 0) and first + len(rows) >= min(y1, q.shape[0])
                np.testing.assert_array_equal(rows, q[first:first + len(rows)])
                # a box: from its first band's top to its last row, over its columns only
                x0 = int(rng.integers(-5, q.shape[1]))
                x1 = int(rng.integers(x0 + 1, q.shape[1] + 5))
                box = Box(y0, y1, x0, x1)
                part, (fy, fx) = distances.decode_box(span, q.shape, 64, box, arrays.zstd_frames)
                clipped = box.clip(q.shape)
                assert clipped.y0 - 64 < fy <= clipped.y0 and fx == clipped.x0
                assert part.shape == (clipped.y1 - fy, clipped.width)
                np.testing.assert_array_equal(part, q[fy:clipped.y1, clipped.x0:clipped.x1])
            for y0, y1 in ((q.shape[0] + 3, q.shape[0] + 9), (q.shape[0] + 70, q.shape[0] + 80),
                           (-9, -3)):  # rows off the map: what is given is the map's
                rows, first = distances.decode_rows(span, q.shape, 64, y0, y1, arrays.zstd_frames)
                np.testing.assert_array_equal(rows, q[first:first + len(rows)])
                assert len(rows) == 0 or (y0 > 0 and first + len(rows) == q.shape[0])
            n = -(-q.shape[0] // 64)
            lengths = np.frombuffer(span[:4 * n], "<u4")
            raw_bands += sum(arrays.zstd_frames(span[4 * n + s:4 * n + s + k])[0] == 1
                             for s, k in zip(np.cumsum([0, *lengths[:-1]]), lengths))
    assert raw_bands > 0  # the step-0.5 maps
    with pytest.raises(ValueError, match="corrupt"):
        distances.decode_rows(span[:-3], q.shape, 64, 0, q.shape[0], arrays.zstd_frames)


@pytest.mark.realdata
def test_quantise_kernel_equals_numpy_on_davis(davis_dir):
    for coding in (distances.DistanceCoding(), distances.DistanceCoding(0.5, 30)):
        limit, table = distances._quantiser(coding)
        for _, insts, _ in _davis_masks(davis_dir, 6):
            for m in insts:
                d2 = distances._sq_map(m)
                out = np.empty(d2.shape, np.uint8)
                distances._quantise(d2, m, limit, table, np.uint8(17), out)
                q = table[np.minimum(d2, limit)]
                np.testing.assert_array_equal(out, np.where(m, q, np.minimum(q, 17)))


@pytest.mark.realdata
def test_record_round_trip_on_davis(davis_dir):
    stem, insts, void = _davis_masks(davis_dir, 3)[1]
    img_bytes = (davis_dir / "img" / f"{stem}.jpg").read_bytes()
    h, w = void.shape
    inst = np.stack(insts)
    regions, meta, dropped = region_candidates(inst, [{"label": i + 1} for i in range(len(inst))])
    members = schema.encode_record(stem, img_bytes, "jpg", (h, w), regions, meta, void,
                                   {"source": "davis", "split": "val"},
                                   distances.DistanceCoding())
    assert members["jpg"] is img_bytes  # the record stores what it is given
    rec = schema.decode_record(members)
    assert np.array_equal(rec.regions, inst)
    assert np.array_equal(rec.ignore, void)
    assert rec.image.shape == (h, w, 3)
    for i, m in enumerate(inst):
        inside, outside = rec.inside_outside(i)
        exact = _exact(m)
        reach = rec.meta["regions"][i]["dt_reach"]
        assert reach == distances.reach(int(m.sum()), schema.DEFAULT_EXPAND, rec.coding)
        free = np.where(m, exact < 254.5, exact < reach + 0.5)
        assert np.abs(np.where(m, inside, outside) - exact)[free].max() <= 0.5 + 1e-6
        assert (outside[~m & ~free] >= reach + 1).all()
        assert (inside[~m] == 0).all() and (outside[m] == 0).all()
    assert [r["area"] for r in rec.meta["regions"]] == [int(m.sum()) for m in inst]
    assert [r["label"] for r in rec.meta["regions"]] == list(range(1, len(inst) + 1))
    # the stream's view: the count in meta.json, the rest in the table
    light = schema.decode_meta(members, regions=False)
    table = schema.region_table(members, light)
    assert light["regions"] == len(inst) and light["dt"]["expand"] == schema.DEFAULT_EXPAND
    assert table.bbox.tolist() == [r["bbox"] for r in rec.meta["regions"]]
    assert table.slots(range(len(inst))).tolist() == [[r["layer"], r["label_id"]]
                                                      for r in rec.meta["regions"]]


@pytest.mark.realdata
def test_inside_outside_kernel_equals_numpy_on_davis(davis_dir):
    rng = np.random.default_rng(2)
    coding = distances.DistanceCoding()
    for stem, insts, _ in _davis_masks(davis_dir, 4):
        for m in insts:
            q = distances.encode_region(m, mask_bbox(m), coding)
            full = distances.unpack_region(q[0], q[1], m.shape, coding.clip)
            # a resized, flipped view of it, as the stream passes: any scale, strided arrays
            for scale in (coding.step, float(rng.uniform(0.5, 1.5))):
                view, mview = full[:, ::-1], m[:, ::-1]
                d = view.astype(np.float32) * np.float32(scale)  # plain numpy reference
                want_in, want_out = np.where(mview, d, 0), np.where(mview, 0, d)
                got_in, got_out = distances.inside_outside(view, mview, coding, scale)
                assert got_in.dtype == got_out.dtype == np.float32
                assert np.array_equal(got_in, want_in) and np.array_equal(got_out, want_out)


@pytest.mark.realdata
def test_stored_distance_rows_decode_only_their_bands(davis_dir):
    stem, insts, void = _davis_masks(davis_dir, 3)[2]
    h, w = void.shape
    regions, meta, _ = region_candidates(np.stack(insts), [{} for _ in insts])
    members = schema.encode_record(stem, b"", "jpg", (h, w), regions, meta, void,
                                   {"source": "davis", "split": "val"},
                                   distances.DistanceCoding())
    rec_meta = schema.decode_meta(members, regions=False)
    table = schema.region_table(members, rec_meta)
    band = rec_meta["dt"]["band_rows"]
    rng = np.random.default_rng(4)
    for i in range(len(insts)):
        full = schema.decode_dt_window(members, rec_meta, table, i)  # every band
        wy, wx, wh, ww = table.window[i].tolist()
        assert full.shape == (wh, ww)
        offset, length = table.span[i].tolist()
        n = -(-wh // band)
        lengths = np.frombuffer(members[schema.DT][offset:offset + 4 * n], "<u4")
        starts = offset + 4 * n + np.cumsum([0, *lengths])  # band j: starts[j]..starts[j + 1]
        assert starts[-1] == offset + length
        for _ in range(6):
            y0 = int(rng.integers(-10, h))
            y1 = int(rng.integers(y0 + 1, h + 10))
            a, b = max(y0, wy), min(y1, wy + wh)
            # garble every band that holds none of the asked rows: reading one fails
            needed = range((a - wy) // band, -(-(b - wy) // band)) if a < b else range(0)
            garbled = bytearray(members[schema.DT])
            for j in range(n):
                if j not in needed:
                    garbled[starts[j]:starts[j + 1]] = b"\xff" * (starts[j + 1] - starts[j])
            q, (oy, ox) = schema.decode_dt_rows({**members, schema.DT: bytes(garbled)},
                                                rec_meta, table, i, y0, y1)
            assert ox == wx and (oy - wy) % band == 0
            if a < b:  # every asked row of the window is there, equal to the whole decode
                assert oy <= a and oy + len(q) >= b
                np.testing.assert_array_equal(q, full[oy - wy:oy - wy + len(q)])
            assert -(-len(q) // band) == len(needed)
    garbled = bytearray(members[schema.DT])  # every band of the last region
    garbled[starts[0]:starts[-1]] = b"\xff" * (starts[-1] - starts[0])
    with pytest.raises(ValueError, match="corrupt"):  # garbling is seen
        schema.decode_dt_rows({**members, schema.DT: bytes(garbled)}, rec_meta, table, i, 0, h)


def _v4_members(m, region_meta, coding):
    """A version 4 record as its writer made it (kept here as the reference of that format):
    label runs, each map over its bbox grown by the whole clip as an ``.npy`` in LZ4 bands
    of 32 rows, every region's fields in ``meta.json``."""
    layers, slots = masks.pack_layers(m)
    frames, regions, offset = [], [], 0
    for i, (r, rm, (layer, label)) in enumerate(zip(m, region_meta, slots)):
        q, win = distances.encode_region(r, Box.from_xywh(rm["bbox"]), coding)
        frame, lengths = arrays.encode_array_bands(q, 32, "lz4")
        regions.append({"id": i, "layer": layer, "label_id": label, "instance": i,
                        "component": None, "area": int(r.sum()), "bbox": list(rm["bbox"]),
                        "dt_window": list(win.to_yxhw()), "dt_span": [offset, len(frame)],
                        "dt_frames": lengths})
        frames.append(frame)
        offset += len(frame)
    h, w = m.shape[1:]
    meta = {"schema": 4, "key": "k", "source": "x", "split": "y", "height": h, "width": w,
            "image": {"ext": "jpg", "file": None}, "mask_files": [],
            "layers": layers.shape[0] // h, "ignored": 0,
            "dt": {"step": coding.step, "clip": coding.clip, "band_rows": 32},
            "regions": regions, "dropped": []}
    return {"jpg": b"", schema.RUNS: arrays.encode_array(runs.encode_runs(layers)),
            schema.IGNORE: arrays.encode_array(np.zeros((h, w), bool)),
            schema.DT_LZ4: b"".join(frames), schema.META: json.dumps(meta).encode()}, meta


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_older_versions_still_read(version):
    rng = np.random.default_rng(1)
    coding = distances.DistanceCoding()
    m = np.zeros((2, 80, 50), bool)
    m[0, 10:65, 12:30] = True
    m[1, 30:75, 20:45] = True  # overlaps the first: two layers
    region_meta = [{"bbox": mask_bbox(r).to_xywh(), "area": int(r.sum())} for r in m]
    members = schema.encode_record("k", b"", "jpg", (80, 50), m, region_meta,
                                   np.zeros((80, 50), bool), {"source": "x", "split": "y"},
                                   coding)
    new_meta = schema.decode_meta(members)
    assert new_meta["schema"] == schema.SCHEMA_VERSION == 6
    old, meta = _v4_members(m, region_meta, coding)
    assert old[schema.DT_LZ4][:4] == b"\x04\x22\x4d\x18"  # versions 3 and 4: LZ4 frames
    meta["schema"] = version
    layers = masks.pack_layers(m)[0]
    if version < 4:
        del old[schema.RUNS]
    if version == 1:  # layers in one zstd frame, one zstd frame per map, no bands
        old[schema.REGIONS] = arrays.encode_array(layers)
        del meta["dt"]["band_rows"]
    elif version < 4:  # layers in zstd bands
        old[schema.REGIONS], meta["layers_frames"] = arrays.encode_array_bands(layers, 32)
    if version < 3:
        frames, offset = [], 0
        for r, b in zip(meta["regions"], region_meta):
            q = distances.encode_region(m[r["id"]], Box.from_xywh(b["bbox"]), coding)[0]
            if version == 1:
                frame = arrays.encode_array(q)
                del r["dt_frames"]
            else:  # zstd bands
                frame, r["dt_frames"] = arrays.encode_array_bands(q, 32)
            r["dt_span"] = [offset, len(frame)]
            frames.append(frame)
            offset += len(frame)
        del old[schema.DT_LZ4]
        old[schema.DT_ZSTD] = b"".join(frames)
    old[schema.META] = json.dumps(meta).encode()
    meta = schema.decode_meta(old)
    np.testing.assert_array_equal(schema.decode_regions(old, meta), m)
    np.testing.assert_array_equal(schema.decode_regions(members, new_meta), m)
    old_dt, new_dt = schema.decode_dt(old, meta), schema.decode_dt(members, new_meta)
    old_table = schema.region_table(old, meta)
    assert (old_table.reach == coding.clip - 1).all()
    for q_old, q_new, r, n in zip(old_dt, new_dt, m, schema.region_table(members, new_meta).reach):
        exact = r | (q_old <= n)  # schema 5 keeps outside levels to the reach only
        np.testing.assert_array_equal(q_old[exact], q_new[exact])
        assert (q_new[~exact] > n).all()
    for _ in range(6):
        y0, y1 = sorted(rng.integers(-5, 90, 2))
        got = schema.decode_layer_runs(old, meta, y0, y1 + 1)
        want = schema.decode_layer_runs(members, new_meta, y0, y1 + 1)
        assert got.holds(y0, y1 + 1, 80) and want.holds(y0, y1 + 1, 80)
        a = runs.decode_runs(got.runs, 2 * got.rows, 50).reshape(2, got.rows, 50)
        b = runs.decode_runs(want.runs, 240, 50).reshape(3, 80, 50)  # and the union layer
        np.testing.assert_array_equal(a, b[:2, got.first:got.first + got.rows])
        np.testing.assert_array_equal(b[2] == 1, m.any(0))
        for i, r in enumerate(meta["regions"]):
            got, origin = schema.decode_dt_rows(old, meta, old_table, i, y0, y1 + 1)
            wy, wx = r["dt_window"][:2]
            assert origin[1] == wx and origin[0] <= max(y0, wy)
            full = schema.decode_dt_window(old, meta, old_table, i)
            np.testing.assert_array_equal(got, full[origin[0] - wy:origin[0] - wy + len(got)])
            np.testing.assert_array_equal(full, old_dt[i][wy:wy + full.shape[0],
                                                          wx:wx + full.shape[1]])


@pytest.mark.parametrize("codec", arrays.CODECS)
def test_banded_arrays_read_whole_or_by_rows_and_refuse_corruption(codec):
    a = np.random.default_rng(2).integers(0, 50, (150, 37)).astype(np.uint16)
    data, lengths = arrays.encode_array_bands(a, 32, codec)
    assert len(lengths) == 1 + 5 and sum(lengths) == len(data)
    np.testing.assert_array_equal(arrays.decode_array(data), a)
    dtype, shape = arrays.decode_bands_header(data, lengths)
    assert (dtype, shape) == (a.dtype, a.shape)
    for y0, y1 in ((0, 1), (31, 33), (64, 150), (140, 400), (-5, 3)):
        rows, first = arrays.decode_rows(data, lengths, 32, y0, y1, shape, dtype)
        assert first <= max(y0, 0) and first + len(rows) >= min(y1, 150) and first % 32 == 0
        np.testing.assert_array_equal(rows, a[first:first + len(rows)])
    for bad in (data[:-5], data[:lengths[0] + 7], data[:lengths[0]] + b"\x00" * (len(data) - lengths[0])):
        with pytest.raises(ValueError, match="corrupt array member"):
            arrays.decode_array(bad)
    with pytest.raises(ValueError, match="corrupt array member"):
        arrays.decode_rows(data[:-5], lengths, 32, 100, 150, shape, dtype)


def test_checksum_sees_every_byte():
    members = {"jpg": b"abc", "meta.json": b"{}"}
    other = {"jpg": b"abd", "meta.json": b"{}"}
    assert schema.checksum(members) != schema.checksum(other)
    assert schema.checksum(members) == schema.checksum(dict(reversed(members.items())))


def test_reader_rejects_other_schema_version():
    with pytest.raises(ValueError, match="schema"):
        schema.decode_meta({"meta.json": b'{"schema": 99}'})


def test_min_area_and_components_are_accounted():
    inst = np.zeros((1, 20, 20), bool)
    inst[0, 2:6, 2:6] = True      # 16 px
    inst[0, 10:12, 10:12] = True  # 4 px, a second component
    regions, meta, dropped = region_candidates(inst, [{}], split_components=True, min_area=5)
    assert len(regions) == 1 and meta[0]["area"] == 16 and meta[0]["bbox"] == (2, 2, 4, 4)
    assert len(dropped) == 1 and dropped[0]["area"] == 4
    whole, _, none = region_candidates(inst, [{}])
    assert len(whole) == 1 and whole[0].mask.sum() == 20 and none == []
    assert whole[0].box == Box(2, 12, 2, 12) and whole[0].mask.shape == (10, 10)



def _small_record(ignore: np.ndarray, image_ext: str = "jpg") -> dict[str, bytes]:
    inst = np.zeros((1, 40, 30), bool)
    inst[0, 5:20, 8:25] = True
    m, region_meta, dropped = region_candidates(inst, [{"label": "cat"}])
    return schema.encode_record("k", b"img", image_ext, (40, 30), m, region_meta, ignore,
                                {"source": "x", "split": "y", "dropped": dropped},
                                distances.DistanceCoding())


@pytest.mark.parametrize("image_ext", ["jpg", "png"])
def test_member_rules_match_what_the_writer_writes(image_ext):
    members = _small_record(np.zeros((40, 30), bool), image_ext)
    assert set(members) <= set(schema.MEMBER_SUFFIXES)
    assert sorted(members) == sorted([image_ext, "runs.npy.zst", "ignore.npy.zst", "dt.q2.zst",
                                      "table.npy.zst", "regions.json", "meta.json"])
    assert schema.missing_members(members) == []
    assert schema.image_member(members) == schema.find_image_member(members) == image_ext
    for name in ("ignore.npy.zst", "meta.json", "runs.npy.zst", "dt.q2.zst"):
        assert schema.missing_members({k: v for k, v in members.items() if k != name}) == [name]
    # older versions' names count as the member
    old = {k: v for k, v in members.items() if k not in ("runs.npy.zst", "dt.q2.zst")}
    assert schema.missing_members({**old, "regions.npy.zst": b"", "dt.npy.zst": b""}) == []
    no_image = {k: v for k, v in members.items() if k != image_ext}
    assert schema.find_image_member(no_image) is None
    with pytest.raises(ValueError, match="no image member"):
        schema.image_member(no_image)


def test_ignore_is_decoded_only_when_the_record_counts_some():
    none = _small_record(np.zeros((40, 30), bool))
    assert schema.decode_ignore_if_any(none, schema.decode_meta(none)) is None
    ign = np.zeros((40, 30), bool)
    ign[0, :7] = True
    some = _small_record(ign)
    got = schema.decode_ignore_if_any(some, schema.decode_meta(some))
    assert got.dtype == bool and np.array_equal(got, ign)
    v1_meta = {k: v for k, v in schema.decode_meta(some).items() if k != "ignored"}
    assert np.array_equal(schema.decode_ignore_if_any(some, v1_meta), ign)  # decoded to find out


def test_shard_names_and_pattern():
    import fnmatch

    assert schema.shard_name(42) == "shard-000042.tar"
    assert schema.shard_glob() == "shard-*.tar"
    assert fnmatch.fnmatch(schema.shard_name(7, "val"), schema.shard_glob("val"))
    assert not fnmatch.fnmatch(schema.shard_name(7, "val"), schema.shard_glob())


def test_written_meta_has_the_typed_keys():
    meta = schema.decode_meta(_small_record(np.zeros((40, 30), bool)))
    declared = set(schema.RecordMeta.__annotations__)
    assert schema.RecordMeta.__required_keys__ <= set(meta) <= declared
    # version 4 and 5 have "ignored", version 5 "union_layer"
    assert set(meta) - schema.RecordMeta.__required_keys__ == {"ignored", "union_layer"}
    assert set(meta["image"]) == set(schema.ImageMeta.__annotations__)
    assert set(meta["dt"]) == set(schema.DtMeta.__annotations__)
    (region,) = meta["regions"]
    assert schema.RegionMeta.__required_keys__ <= set(region) <= set(schema.RegionMeta.__annotations__)
    assert {"dt_reach", "label"} <= set(region)


def test_layer_frames_read_some_layers_as_the_whole_member_reads_them():
    """A record of overlapping regions stores a frame per layer (and the union): the layers
    asked for decode as the whole member does, the others come back without runs, and the
    member still reads whole (readers that know no ``runs_frames``)."""
    rng = np.random.default_rng(4)
    inst = np.zeros((9, 60, 70), bool)
    for k in range(9):  # overlapping boxes: several layers
        y, x = rng.integers(0, 40), rng.integers(0, 50)
        inst[k, y:y + int(rng.integers(5, 20)), x:x + int(rng.integers(5, 20))] = True
    m, region_meta, dropped = region_candidates(inst, [{} for _ in inst])
    members = schema.encode_record("k", b"img", "jpg", (60, 70), m, region_meta, np.zeros((60, 70), bool),
                                   {"source": "x", "split": "y", "dropped": dropped}, distances.DistanceCoding())
    meta = schema.decode_meta(members)
    stored = meta["layers"] + 1
    assert meta["layers"] >= 3 and len(meta["runs_frames"]) == stored + 1
    whole = schema.decode_layer_runs(members, meta, 0, 60)
    full = runs.decode_runs(whole.runs, stored * 60, 70).reshape(stored, 60, 70)
    assert np.array_equal(arrays.decode_array(members[schema.RUNS]), whole.runs)
    np.testing.assert_array_equal(full[:-1], schema.decode_layers(members, meta).reshape(-1, 60, 70))
    for wanted in ([0], [meta["layers"]], [2, meta["layers"], 0]):
        some = schema.decode_layer_runs(members, meta, 0, 60, wanted)
        for layer in range(stored):
            rows = range(layer * 60, (layer + 1) * 60)
            if layer in wanted:
                got = np.concatenate([some.runs[some.starts[r]:some.starts[r + 1]] for r in rows])
                assert np.array_equal(got, whole.runs[whole.starts[layer * 60]:whole.starts[(layer + 1) * 60]])
            else:
                assert all(some.starts[r] == some.starts[r + 1] for r in rows)
    bad = dict(meta, runs_frames=meta["runs_frames"][:-1])
    with pytest.raises(ValueError, match="runs_frames"):
        schema.decode_layer_runs(members, bad, 0, 60, [0])
    # parts that hold the right runs in all but cut at another row are refused
    a, b = whole.starts[60], whole.starts[2 * 60]
    for cut in (whole.starts[59], whole.starts[61]):
        with pytest.raises(ValueError, match="corrupt label runs"):
            runs.some_layer_runs([whole.runs[:cut], whole.runs[cut:b]], [0, 1], stored, 60, 70)
    assert a < b and runs.some_layer_runs([whole.runs[:a], whole.runs[a:b]], [0, 1], stored,
                                          60, 70).starts[2 * 60] == b


def test_region_table_is_stored_narrow_and_read_as_int64_either_way():
    """The region table is written as int32 when its values fit (half the bytes for the stream
    to decompress); the int64 tables written before read the same."""
    rng = np.random.default_rng(6)
    inst = np.zeros((5, 50, 60), bool)
    for k in range(5):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        inst[k, y:y + int(rng.integers(5, 20)), x:x + int(rng.integers(5, 20))] = True
    m, region_meta, dropped = region_candidates(inst, [{} for _ in inst])
    members = schema.encode_record("k", b"img", "jpg", (50, 60), m, region_meta,
                                   np.zeros((50, 60), bool),
                                   {"source": "x", "split": "y", "dropped": dropped},
                                   distances.DistanceCoding())
    stored = arrays.decode_array(members[schema.TABLE])
    assert stored.dtype == np.int32 and stored.shape == (len(region_meta), 14)
    meta = schema.decode_meta(members, regions=False)
    wide = {**members, schema.TABLE: arrays.encode_array(stored.astype(np.int64))}
    for got, want in zip(schema.region_table(members, meta), schema.region_table(wide, meta)):
        assert got.dtype == want.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    assert schema.region_table(members, meta).area.tolist() == [r["area"] for r in region_meta]


def test_zstd_compressor_is_per_thread():
    """A ZstdCompressor used by two threads at once corrupts memory (prepare on a thread pool
    crashed or wrote other checksums): each thread gets its own, reused within the thread."""
    import threading

    from iis_pipe.records.arrays import zstd_compressor, zstd_frames

    mine = zstd_compressor(6)
    assert zstd_compressor(6) is mine
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(zstd_compressor(6)))
    t.start()
    t.join()
    assert theirs[0] is not mine
    data = bytes(range(256)) * 64
    assert zstd_frames(theirs[0](data)) == data == zstd_frames(mine(data))
