"""Dataset readers: real evaluation sets read bit-exactly, bad inputs reported, synthetic formats
(COCO, SBD, VOC, folder) written here in their real on-disk layouts, toy set deterministic."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import scipy.sparse
from PIL import Image
from pycocotools import mask as mask_utils

from iis_pipe.errors import BadInput
from iis_pipe.sources import (FORMATS, Sample, SourceItem, detect_format, get_format, read,
                              record_key)
from iis_pipe.sources.coco import rle_string_counts


def split_results(results):
    results = list(results)
    return ([r for r in results if isinstance(r, (Sample, SourceItem))],
            [r for r in results if isinstance(r, BadInput)])


def plain(path) -> np.ndarray:
    """Mask values read independently of the package: PIL as stored (palette indices stay)."""
    return np.array(Image.open(path))


def copy_pairs(src: Path, dst: Path, folders: list[str], stems: list[str]) -> Path:
    """Copy the files of a few stems of a real set (never the whole set) into ``dst``."""
    for folder in folders:
        (dst / folder).mkdir(parents=True)
        for path in (src / folder).iterdir():
            if path.stem in stems:
                shutil.copy(path, dst / folder / path.name)
    return dst


def write_jpg(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def write_palette_png(path: Path, ids: np.ndarray) -> None:
    """A VOC/DAVIS-style 8-bit palette PNG with a full 256-entry palette."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette([(i * 37) % 256 for i in range(256 * 3)])
    im.save(path)


def write_short_palette_png(path: Path, ids: np.ndarray, entries: int) -> None:
    """An 8-bit palette PNG whose palette has only ``entries`` colours (PIL would shrink the bit
    depth and wrap the indices, so the chunks are written by hand)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    h, w = ids.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in ids.astype(np.uint8))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
                     + chunk(b"PLTE", bytes(range(3 * entries))) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


# --- real evaluation sets -------------------------------------------------------------------


def test_grabcut_real_matches_plain_reading(grabcut_dir):
    samples, bad = split_results(read(grabcut_dir, "grabcut"))
    assert len(samples) == 50 and not bad
    with_band = 0
    for s in samples:
        values = plain(Path(s.meta["mask_files"][0]))
        values = values[:, :, 0] if values.ndim == 3 else values
        assert s.instances.shape == (1, *values.shape) and s.size == values.shape
        assert np.array_equal(s.instances[0], values == 255)
        assert np.array_equal(s.ignore, values == 128)
        with_band += bool((values == 128).any())
    assert with_band > 0  # the ignore check above is not vacuous
    assert {s.image_ext for s in samples} == {"jpg", "png"}  # bmp images are re-encoded


def test_berkeley_real_matches_plain_reading(berkeley_dir):
    samples, bad = split_results(read(berkeley_dir, "berkeley"))
    assert len(samples) == 100 and not bad
    for s in samples:
        values = plain(Path(s.meta["mask_files"][0]))
        assert np.array_equal(s.instances[0], (values[:, :, 0] if values.ndim == 3 else values) > 127)
        assert s.instances.shape[0] == 1 and not s.ignore.any()


def test_davis_real_instances_per_index(davis_dir):
    items, bad = split_results(get_format("davis").scan(davis_dir))
    assert len(items) == 345 and not bad
    assert [i.key for i in items] == sorted(i.key for i in items)
    with_void = [i for i in items if (plain(i.files["mask"]) == 255).any()]
    assert len(with_void) == 1
    subset = items[::6] + with_void  # a full load pass is the slow part; counts are checked above
    load = get_format("davis").load
    for item in subset:
        s, ids = load(item), plain(item.files["mask"])
        values = [v for v in np.unique(ids) if v not in (0, 255)]
        assert s.instances.shape[0] == len(values)
        assert [m["label"] for m in s.instance_meta] == values
        for inst, v in zip(s.instances, values, strict=True):
            assert np.array_equal(inst, ids == v)
        assert np.array_equal(s.ignore, ids == 255)
    multi = next(i for i in items if len(np.unique(plain(i.files["mask"]))) > 2)
    merged = load(next(i for i in get_format("davis").scan(davis_dir, merge_instances=True)
                       if i.key == multi.key))
    ids = plain(multi.files["mask"])
    assert merged.instances.shape[0] == 1
    assert np.array_equal(merged.instances[0], (ids != 0) & (ids != 255))


@pytest.mark.realdata
def test_present_values_equal_unique_on_real_masks(davis_dir, voc_sample_dir):
    from iis_pipe.sources._common import present_values

    files = sorted((davis_dir / "gt").glob("*.png"))[::40] + sorted(voc_sample_dir.rglob("*.png"))
    assert len(files) > 8
    rng = np.random.default_rng(0)
    for f in files:
        ids = np.array(Image.open(f))
        for a in (ids, ids.astype(np.uint16) * 257, ids[::3, 1::2], ids[ids > 100]):
            got = present_values(a)
            assert got.dtype == a.dtype and np.array_equal(got, np.unique(a)), f.name
    wide = rng.integers(0, 2**16, 5000).astype(np.uint16)
    assert np.array_equal(present_values(wide), np.unique(wide))
    assert np.array_equal(present_values(np.array([5, -3, 5])), [-3, 5])


def test_folder_real_voc_sample(voc_sample_dir):
    samples, bad = split_results(read(voc_sample_dir))
    assert len(samples) == 1 and not bad
    s = samples[0]
    masks = sorted((voc_sample_dir / "masks").glob("voc_sample_*.png"))
    assert s.instances.shape == (19, 375, 500) and s.meta["source"] == "folder"
    assert [m["label"] for m in s.instance_meta] == [p.stem.split("_")[-1] for p in masks]
    for inst, path in zip(s.instances, masks, strict=True):
        assert np.array_equal(inst, plain(path) > 127)


def test_detection_of_real_sets(grabcut_dir, berkeley_dir, davis_dir, voc_sample_dir):
    assert detect_format(grabcut_dir) == "grabcut"
    assert detect_format(berkeley_dir) == "berkeley"
    assert detect_format(davis_dir) == "davis"
    assert detect_format(voc_sample_dir) == "folder"
    assert detect_format(None) == "toy"


def test_detection_errors(tmp_path):
    with pytest.raises(ValueError, match="no known layout.*data_GT"):
        detect_format(tmp_path)
    for d in ("data_GT", "boundary_GT", "img", "gt"):
        (tmp_path / d).mkdir()
    with pytest.raises(ValueError, match=r"several formats \['grabcut', 'davis'\]"):
        detect_format(tmp_path)
    with pytest.raises(ValueError, match="known: grabcut"):
        get_format("nope")
    with pytest.raises(TypeError, match="has no option.*merge_instances"):
        read(tmp_path, "grabcut", merge_instances=True)


def test_record_key():
    assert record_key("val2017", "a.b c") == "val2017/a_b_c"
    assert record_key("x-1_y") == "x-1_y"


# --- bad inputs on copies of real files -----------------------------------------------------


def test_truncated_jpeg(grabcut_dir, tmp_path):
    root = copy_pairs(grabcut_dir, tmp_path / "gc", ["data_GT", "boundary_GT"], ["106024", "124080"])
    jpg = root / "data_GT" / "124080.jpg"
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size * 2 // 3])
    samples, bad = split_results(read(root))
    assert [s.key for s in samples] == ["106024"]
    assert len(bad) == 1 and bad[0].file == str(jpg) and bad[0].key == "124080"
    assert "truncated" in bad[0].reason


def test_grabcut_unknown_mask_value(grabcut_dir, tmp_path):
    root = copy_pairs(grabcut_dir, tmp_path / "gc", ["data_GT", "boundary_GT"], ["124080"])
    bmp = root / "boundary_GT" / "124080.bmp"
    values = plain(bmp)
    values[:3, :3] = 77
    Image.fromarray(values).save(bmp)
    (bad,) = list(read(root))
    assert isinstance(bad, BadInput) and bad.file == str(bmp) and "unknown mask value [77]" in bad.reason


def test_mask_of_another_size(berkeley_dir, tmp_path):
    root = copy_pairs(berkeley_dir, tmp_path / "bk", ["images", "masks"], ["101085"])
    png = root / "masks" / "101085.png"
    Image.open(png).resize((100, 80)).save(png)
    (bad,) = list(read(root, "berkeley"))
    assert isinstance(bad, BadInput) and bad.file == str(png) and "mask is 80x100" in bad.reason


def test_missing_pairs_and_empty_mask(davis_dir, tmp_path):
    root = copy_pairs(davis_dir, tmp_path / "dv", ["img", "gt"], ["000", "001", "002", "003"])
    (root / "gt" / "001.png").unlink()
    (root / "img" / "002.jpg").unlink()
    write_palette_png(root / "gt" / "003.png", np.zeros(plain(root / "gt" / "000.png").shape))
    items, bad = split_results(get_format("davis").scan(root))
    assert [i.key for i in items] == ["000", "003"]
    assert [(b.file, b.key) for b in bad] == [(str(root / "img" / "001.jpg"), "001"),
                                             (str(root / "gt" / "002.png"), "002")]
    assert "image without mask" in bad[0].reason and "mask without image" in bad[1].reason
    results = list(read(root))
    assert sum(isinstance(r, Sample) for r in results) == 1
    empty = [r for r in results if isinstance(r, BadInput) and r.key == "003"]
    assert len(empty) == 1 and "empty mask" in empty[0].reason


def test_davis_unknown_palette_index(davis_dir, tmp_path):
    """An index past the file's palette has no colour, so no annotator drew it."""
    root = copy_pairs(davis_dir, tmp_path / "dv", ["img", "gt"], ["000"])
    ids = plain(root / "gt" / "000.png")
    ids[:4, :4] = 7
    write_short_palette_png(root / "gt" / "000.png", ids, entries=3)
    assert plain(root / "gt" / "000.png")[0, 0] == 7  # the file really holds index 7
    (bad,) = list(read(root))
    assert isinstance(bad, BadInput) and "unknown palette index [7]" in bad.reason


# --- COCO -----------------------------------------------------------------------------------


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return {"size": list(mask.shape), "counts": [0] + runs if flat[0] else runs}


# pycocotools' own decode trips numpy 2's copy-keyword deprecation; not ours to fix.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
def test_coco_polygon_rle_overlap_crowd(tmp_path):
    h, w = 60, 80
    write_jpg(tmp_path / "images" / "a.jpg", h, w)
    write_jpg(tmp_path / "images" / "b.jpg", h, w, seed=1)  # listed, no annotations

    def box(r0, r1, c0, c1):
        return np.pad(np.ones((r1 - r0, c1 - c0), bool), ((r0, h - r1), (c0, w - c1)))

    compressed, uncompressed, crowd = box(20, 40, 30, 60), box(35, 50, 40, 70), box(0, 5, 0, 80)
    rle = mask_utils.encode(np.asfortranarray(compressed.astype(np.uint8)))
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[10, 10, 40, 10, 40, 30, 10, 30]]},
        {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0,
         "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")}},
        {"id": 3, "image_id": 1, "category_id": 2, "iscrowd": 0,
         "segmentation": uncompressed_rle(uncompressed)},
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": uncompressed_rle(crowd)},
        {"id": 5, "image_id": 9, "category_id": 1, "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 5]]},
    ]
    images = [{"id": 1, "file_name": "a.jpg", "height": h, "width": w},
              {"id": 2, "file_name": "b.jpg", "height": h, "width": w},
              {"id": 3, "file_name": "c.jpg", "height": h, "width": w}]  # file missing
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": categories}))
    assert detect_format(tmp_path) == "coco"
    samples, bad = split_results(read(tmp_path))
    assert len(samples) == 1
    s = samples[0]
    assert s.key == "a" and s.meta["split"] == "val" and s.instances.shape == (3, h, w)
    assert [m["label"] for m in s.instance_meta] == ["cat", "dog", "dog"]
    assert [m["source_id"] for m in s.instance_meta] == [1, 2, 3]
    poly, rle_c, rle_u = s.instances
    assert poly[12:28, 12:38].all() and not poly[35:, :].any() and abs(int(poly.sum()) - 600) < 80
    assert np.array_equal(rle_c, compressed) and np.array_equal(rle_u, uncompressed)
    assert (poly & rle_c)[20:28, 30:38].all()  # overlaps survive in both instances
    assert (rle_c & rle_u).sum() == 5 * 20
    assert np.array_equal(s.ignore, crowd)
    reasons = sorted((b.key, b.reason.split(" (")[0]) for b in bad)
    assert reasons == [("b", "no instances"), ("c", "image file missing"),
                       ("image_id_9", "1 annotation(s) of image id 9, which is not in the images list")]

    anns[2]["segmentation"]["counts"][0] += 1  # runs no longer cover the image
    (tmp_path / "annotations" / "instances_val.json").write_text(json.dumps(
        {"images": images[:1], "annotations": anns[:4], "categories": [{"id": 1}, {"id": 2}]}))
    (bad,) = list(read(tmp_path))
    assert isinstance(bad, BadInput) and "corrupt annotation 3" in bad.reason


def test_rle_string_counts_match_pycocotools():
    rng = np.random.default_rng(0)
    mask = (cv2.resize(rng.random((6, 9)), (90, 70)) > 0.5).astype(np.uint8)
    counts = rle_string_counts(mask_utils.encode(np.asfortranarray(mask))["counts"].decode("ascii"))
    rebuilt = np.repeat(np.arange(len(counts)) % 2, counts).reshape(90, 70).T
    assert sum(counts) == mask.size and np.array_equal(rebuilt, mask)


# --- SBD and VOC, written in their real layouts ---------------------------------------------


def test_sbd_gtinst(tmp_path):
    h, w = 40, 50
    seg = np.zeros((h, w), np.uint8)
    seg[5:20, 5:25], seg[22:35, 10:45] = 1, 2
    seg[20:22, 5:45] = 255  # void/boundary
    boundaries = np.empty((2, 1), dtype=object)
    for i in (1, 2):
        m = (seg == i).astype(np.uint8)
        boundaries[i - 1, 0] = scipy.sparse.csc_matrix(m - cv2.erode(m, np.ones((3, 3), np.uint8)) > 0)
    for stem in ("2008_000002", "2008_000003"):
        write_jpg(tmp_path / "img" / f"{stem}.jpg", h, w)
        (tmp_path / "inst").mkdir(exist_ok=True)
        scipy.io.savemat(tmp_path / "inst" / f"{stem}.mat", {"GTinst": {
            "Segmentation": seg, "Boundaries": boundaries,
            "Categories": np.array([[15], [9]] if stem.endswith("2") else [[15]], np.uint8)}})
    write_jpg(tmp_path / "img" / "2008_000004.jpg", h, w)
    (tmp_path / "inst" / "2008_000004.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage")
    (tmp_path / "val.txt").write_text("2008_000002\n2008_000009\n")
    assert detect_format(tmp_path) == "sbd"

    samples, bad = split_results(read(tmp_path, split="val"))
    (s,) = samples
    assert s.meta["split"] == "val" and s.key == "2008_000002"
    assert np.array_equal(s.instances, np.stack([seg == 1, seg == 2]))
    assert np.array_equal(s.ignore, seg == 255)
    assert [(m["label"], m["class_id"], m["source_id"]) for m in s.instance_meta] == [
        ("person", 15, 1), ("chair", 9, 2)]
    assert len(bad) == 1 and bad[0].key == "2008_000009" and "neither image nor mask" in bad[0].reason

    reasons = {b.key: b.reason for b in read(tmp_path) if isinstance(b, BadInput)}
    assert "unknown instance id 2" in reasons["2008_000003"]
    assert "corrupt annotation" in reasons["2008_000004"]


def test_voc_object_and_class_maps(tmp_path):
    h, w = 40, 60
    objects = np.zeros((h, w), np.uint8)
    objects[5:20, 5:30], objects[22:38, 20:55] = 1, 2
    objects[20:22, :] = 255
    classes = np.where(objects == 1, 5, np.where(objects == 2, 15, objects)).astype(np.uint8)
    classes[30:32, 20:25] = 9  # a few stray pixels: the majority (person) still wins
    write_jpg(tmp_path / "JPEGImages" / "2007_000032.jpg", h, w)
    write_palette_png(tmp_path / "SegmentationObject" / "2007_000032.png", objects)
    write_palette_png(tmp_path / "SegmentationClass" / "2007_000032.png", classes)
    sets = tmp_path / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "val.txt").write_text("2007_000032\n")
    (sets / "train.txt").write_text("2007_000039\n")
    assert detect_format(tmp_path) == "voc"

    (s,) = list(read(tmp_path, split="val"))
    assert isinstance(s, Sample)
    assert np.array_equal(s.instances, np.stack([objects == 1, objects == 2]))
    assert np.array_equal(s.ignore, objects == 255)
    assert [(m["label"], m["source_id"]) for m in s.instance_meta] == [("bottle", 1), ("person", 2)]
    (bad,) = list(read(tmp_path, split="train"))
    assert isinstance(bad, BadInput) and bad.key == "2007_000039"
    with pytest.raises(ValueError, match=r"splits there: \['train', 'val'\]"):
        next(read(tmp_path, split="test"))

    classes[0, 0] = 42
    write_palette_png(tmp_path / "SegmentationClass" / "2007_000032.png", classes)
    (bad,) = list(read(tmp_path, split="val"))
    assert isinstance(bad, BadInput) and "unknown class index [42]" in bad.reason


# --- generic folder and toy -----------------------------------------------------------------


def test_folder_prefix_matching_and_id_masks(tmp_path):
    h, w = 30, 40
    for stem in ("a", "a_1", "b"):
        write_jpg(tmp_path / "images" / f"{stem}.jpg", h, w)
    masks = tmp_path / "masks"
    masks.mkdir()
    one, two = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    one[2:10, 2:10], two[5:20, 5:30] = 255, 1
    Image.fromarray(one).save(masks / "a_1.png")  # whole mask of a_1, not a part of a
    Image.fromarray(one).save(masks / "a_2_cat.png")
    Image.fromarray(two).save(masks / "a_dog.png")
    ids = np.zeros((h, w), np.uint8)
    ids[0:10, 0:10], ids[10:20, 0:10], ids[20:30, :] = 1, 3, 9
    Image.fromarray(ids).save(masks / "b.png")
    Image.fromarray(one).save(masks / "zzz.png")
    assert detect_format(tmp_path) == "folder"

    results = list(read(tmp_path, ignore_value=9))
    by_key = {r.key: r for r in results}
    a, a1, b = by_key["a"], by_key["a_1"], by_key["b"]
    assert [m["label"] for m in a.instance_meta] == ["cat", "dog"]
    assert np.array_equal(a.instances, np.stack([one > 0, two > 0]))
    assert a1.instances.shape[0] == 1 and np.array_equal(a1.instances[0], one > 0)
    assert [m["label"] for m in b.instance_meta] == [1, 3] and np.array_equal(b.ignore, ids == 9)
    assert isinstance(by_key["zzz"], BadInput) and "mask without image" in by_key["zzz"].reason
    b_default = next(r for r in read(tmp_path) if r.key == "b")
    assert b_default.instances.shape[0] == 3 and not b_default.ignore.any()


def test_toy_deterministic_disjoint():
    first, again = list(read(None, count=12, seed=5)), list(read("toy", "toy", count=12, seed=5))
    assert [s.image_bytes for s in first] == [s.image_bytes for s in again]
    other = list(read(None, count=12, seed=6))
    assert all(x.image_bytes != y.image_bytes for x, y in zip(first, other, strict=True))
    assert len({s.key for s in first}) == 12 and all("." not in s.key for s in first)
    for s in first:
        assert s.image_ext == "jpg" and s.image_bytes[:2] == b"\xff\xd8" and s.size == (240, 320)
        assert 1 <= s.instances.shape[0] <= 4 and s.instances.any(axis=(1, 2)).all()
        assert s.instances.sum(0).max() == 1  # disjoint
        assert not (s.instances.any(0) & s.ignore).any()
    assert any(s.ignore.any() for s in first) and len({s.instances.shape[0] for s in first}) > 1
    with pytest.raises(ValueError, match="count"):
        next(read(None, count=-1))


def test_registry_is_complete():
    assert set(FORMATS) == {"grabcut", "berkeley", "davis", "folder", "coco", "sa1b", "sbd", "voc", "toy"}


def test_rle_string_counts_equal_pycocotools_on_many_masks():
    """Against pycocotools' own reading (its RLE of a string, decoded back) on masks of many
    run lengths, including runs past 2^15 (4-char numbers) and negative deltas."""
    rng = np.random.default_rng(1)
    for trial in range(40):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 400))
        cells = rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12))))
        mask = (cv2.resize(cells, (w, h), interpolation=cv2.INTER_LINEAR) > rng.uniform(0.2, 0.8))
        string = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")
        counts = rle_string_counts(string)
        assert counts.sum() == h * w and (counts >= 0).all()
        rebuilt = np.repeat(np.arange(len(counts)) % 2, counts).reshape(w, h).T
        assert np.array_equal(rebuilt, mask), trial
    for bad, reason in (("0\x7f", "invalid compressed RLE character"), ("0h", "ends inside a number"),
                        ("hhhhhhh0", "more than 7 characters"), ("0é", "not ASCII")):
        with pytest.raises(ValueError, match=reason):
            rle_string_counts(bad)
