"""Readers decode each instance into its box only (``BoxMask``): the pixels equal pycocotools'
full-size decode (COCO polygons and RLEs) and full-size id comparisons (id maps), on written
shapes and real DAVIS masks, and records made from box masks equal records made from full masks."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from iis_pipe.geometry.box import EMPTY_MASK, BoxMask
from iis_pipe.images import jpeg_entry_index
from iis_pipe.pipelines.prepare import RecordParams, make_record
from iis_pipe.records import schema
from iis_pipe.regions.candidates import region_candidates
from iis_pipe.sources import SourceItem, get_format
from iis_pipe.sources._common import split_ids
from iis_pipe.sources.coco import rle_string_counts, runs_mask, segmentation_runs

# pycocotools' own decode trips numpy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def plain_box(mask: np.ndarray) -> BoxMask:
    """The reference: a full mask cropped to its tight box found with ``np.nonzero``."""
    ys, xs = np.nonzero(mask)
    if not ys.size:
        return EMPTY_MASK
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return BoxMask((y0, y1, x0, x1), mask[y0:y1, x0:x1])


def assert_same(got: BoxMask, full: np.ndarray, what) -> None:
    want = plain_box(full.astype(bool))
    if want is EMPTY_MASK:
        assert got is EMPTY_MASK, what
        return
    assert tuple(got.box) == tuple(int(v) for v in want.box), what
    assert got.mask.dtype == bool and got.mask.flags.c_contiguous, what
    assert np.array_equal(got.mask, want.mask), what


def star(rng, h: int, w: int, area: float, spill: float = 0.0) -> list[float]:
    """A star polygon of about ``area`` pixels, its centre anywhere in the image grown by
    ``spill`` of its size (so some cross the border)."""
    k = int(rng.integers(3, 17))
    angles = np.sort(rng.uniform(0, 2 * math.pi, k))
    r = math.sqrt(area / math.pi) * rng.uniform(0.4, 1.0, k)
    cx = rng.uniform(-spill * w, (1 + spill) * w)
    cy = rng.uniform(-spill * h, (1 + spill) * h)
    return np.round(np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1).ravel(), 2).tolist()


def test_polygons_decode_into_their_box_as_pycocotools_decodes_them():
    rng = np.random.default_rng(0)
    for trial in range(400):
        h, w = int(rng.integers(1, 500)), int(rng.integers(1, 700))
        area = math.exp(rng.uniform(math.log(0.05), math.log(0.6 * h * w)))
        parts = [star(rng, h, w, area, spill=0.2) for _ in range(int(rng.integers(1, 4)))]
        full = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(parts, h, w)))
        rle, runs = segmentation_runs(parts, h, w)
        assert_same(runs_mask(runs, h, w), full, trial)
        assert np.array_equal(mask_utils.decode(rle), full)


def test_rles_decode_into_their_box_as_pycocotools_decodes_them():
    """Masks whose runs span columns, fill whole columns, the whole image, one pixel, the first
    or the last pixel; as compressed and uncompressed counts."""
    rng = np.random.default_rng(1)
    masks = []
    for _ in range(150):
        h, w = int(rng.integers(1, 200)), int(rng.integers(1, 300))
        cells = rng.random((int(rng.integers(1, 9)), int(rng.integers(1, 9))))
        masks.append(cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR) > rng.uniform(0.1, 0.9))
    full_image, corner, last, cols = (np.ones((7, 5), bool), np.zeros((7, 5), bool),
                                      np.zeros((7, 5), bool), np.zeros((7, 5), bool))
    corner[0, 0] = last[-1, -1] = True
    cols[:, 1:3] = True
    masks += [full_image, corner, last, cols, np.zeros((7, 5), bool), np.ones((1, 1), bool)]
    for trial, mask in enumerate(masks):
        h, w = mask.shape
        string = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")
        for counts in (string, rle_string_counts(string).tolist()):
            rle, runs = segmentation_runs({"size": [h, w], "counts": counts}, h, w)
            assert_same(runs_mask(runs, h, w), mask, trial)
            assert np.array_equal(mask_utils.decode(rle), mask)


def test_real_masks_decode_into_their_box(davis_dir):
    """Every object of 40 DAVIS frames as a compressed RLE, and its outline as a polygon."""
    for path in sorted((davis_dir / "gt").glob("*.png"))[::9][:40]:
        ids = np.array(Image.open(path))
        h, w = ids.shape
        for v in [v for v in np.unique(ids) if v not in (0, 255)]:
            mask = ids == v
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            _, runs = segmentation_runs({"size": [h, w], "counts": rle["counts"].decode()}, h, w)
            assert_same(runs_mask(runs, h, w), mask, (path.name, v))
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            poly = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
            full = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, h, w)))
            assert_same(runs_mask(segmentation_runs(poly, h, w)[1], h, w), full, (path.name, v))


def test_id_maps_split_into_their_boxes(davis_dir):
    """8-bit (one pass finds every box), 16-bit and 32-bit (compared value by value) maps."""
    rng = np.random.default_rng(2)
    maps = [np.array(Image.open(p)) for p in sorted((davis_dir / "gt").glob("*.png"))[::23]]
    sparse = np.zeros((40, 50), np.uint16)
    sparse[3:9, 40:50], sparse[39, 0], sparse[10:30, 5] = 40000, 7, 300
    maps += [sparse, rng.integers(0, 4, (30, 20)).astype(np.int32) * 1000, np.zeros((3, 3), np.uint8)]
    for k, ids in enumerate(maps):
        got, values, ignore = split_ids(ids, void=255 if ids.dtype == np.uint8 else None)
        want = [v for v in np.unique(ids) if v != 0 and not (ids.dtype == np.uint8 and v == 255)]
        assert values == [int(v) for v in want], k
        for v, bm in zip(want, got, strict=True):
            assert_same(bm, ids == v, (k, v))
        assert np.array_equal(ignore, ids == 255 if ids.dtype == np.uint8 else np.zeros(ids.shape, bool))


def test_records_from_box_masks_equal_records_from_full_masks(tmp_path, davis_dir):
    """A written COCO set (polygons, compressed and uncompressed RLEs, a crowd region, a
    sub-pixel polygon): the record ``prepare`` makes equals the record encoded from
    pycocotools' full-size masks, with and without split components."""
    rng = np.random.default_rng(3)
    jpeg = sorted((davis_dir / "img").glob("*.jpg"))[0]
    gt = np.array(Image.open(davis_dir / "gt" / (jpeg.stem + ".png")))
    h, w = gt.shape
    anns = []
    for v in [v for v in np.unique(gt) if v not in (0, 255)]:
        counts = mask_utils.encode(np.asfortranarray((gt == v).astype(np.uint8)))["counts"].decode()
        anns.append({"segmentation": {"size": [h, w], "counts": counts}})
        anns.append({"segmentation": {"size": [h, w], "counts": rle_string_counts(counts).tolist()}})
    for _ in range(60):
        area = math.exp(rng.uniform(math.log(5), math.log(0.2 * h * w)))
        anns.append({"segmentation": [star(rng, h, w, area, 0.1) for _ in range(int(rng.integers(1, 3)))]})
    anns.append({"segmentation": [[10.2, 10.3, 10.9, 10.4, 10.5, 10.8]]})  # no pixel
    anns.append({"segmentation": [star(rng, h, w, 900.0)], "iscrowd": 1})
    for i, a in enumerate(anns):
        a.update(id=i + 1, image_id=1, category_id=1, iscrowd=a.get("iscrowd", 0))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_x.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": jpeg.name, "height": h, "width": w}],
         "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    fmt = get_format("coco")
    (item,) = [it for it in fmt.scan(tmp_path, images=str(davis_dir / "img")) if isinstance(it, SourceItem)]
    sample = fmt.load(item)
    kept = [a for a in anns if not a["iscrowd"]]
    full = [mask_utils.decode(segmentation_runs(a["segmentation"], h, w)[0]).astype(bool) for a in kept]
    full = np.stack([m for m in full if m.any()])
    assert len(sample.instance_masks) == len(full) >= 50 and len(full) < len(kept)
    assert np.array_equal(sample.instances, full)
    for params in (RecordParams(), RecordParams(split_components=True, min_area=4)):
        members = make_record(item, "coco", params)["members"]
        regions, meta, dropped = region_candidates(full, sample.instance_meta, split_components=params.split_components,
                                                   min_area=params.min_area)
        want = schema.encode_record(sample.key, sample.image_bytes, sample.image_ext, sample.size, regions, meta,
                                    sample.ignore, {**sample.meta, "dropped": dropped}, params.coding, params.dt_expand,
                                    jpeg_entry_index(sample.image_bytes))
        assert members == want
