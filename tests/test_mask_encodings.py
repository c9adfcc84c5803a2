"""Every mask encoding the public distributions of each format use (palette, 8-bit gray 0/255 or
0/1, gray ids, 16-bit ids, RGB), written here from known masks or converted from the real sets,
each read to the same instances, with the encoding named as found."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from iis_pipe.errors import BadInput
from iis_pipe.sources import Sample, read

from test_sources import copy_pairs, plain, split_results, write_jpg, write_palette_png

# The VOC/DAVIS palette's colours of the indices used here, as published (RGB).
VOC_COLOURS = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
               5: (128, 0, 128), 255: (224, 224, 192)}


def render_rgb(ids: np.ndarray) -> np.ndarray:
    """``(H, W)`` indices -> ``(H, W, 3) uint8`` in the VOC colours above."""
    out = np.zeros((*ids.shape, 3), np.uint8)
    for index, colour in VOC_COLOURS.items():
        out[ids == index] = colour
    assert np.isin(ids, list(VOC_COLOURS)).all()
    return out


def save_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, mode="RGB").save(path)


def save_gray(path: Path, values: np.ndarray) -> None:
    """8-bit or 16-bit gray PNG, written by OpenCV (not the package's reader)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), values)


def one(root: Path, fmt: str, **options) -> Sample:
    (sample,) = list(read(root, fmt, **options))
    assert isinstance(sample, Sample), sample
    return sample


def known_ids(h: int = 30, w: int = 40) -> np.ndarray:
    """Objects 1, 2 and 5 with a void (255) band, as DAVIS/VOC index maps have."""
    ids = np.zeros((h, w), np.uint8)
    ids[2:12, 3:15], ids[15:28, 20:38], ids[5:9, 25:30] = 1, 2, 5
    ids[12, 3:15] = 255
    return ids


# --- DAVIS / COCO_MVal ----------------------------------------------------------------------


def test_davis_gray_0_255_layout_of_coco_mval(tmp_path):
    """COCO_MVal as distributed: 8-bit gray, 0 background, 255 the object, no void (today this
    was read as all-void and rejected as an empty mask)."""
    obj = np.zeros((30, 40), np.uint8)
    obj[4:20, 6:30] = 255
    for values, kind in ((obj, "0/255"), (obj // 255, "0/1")):
        root = tmp_path / kind.replace("/", "_")
        write_jpg(root / "img" / "a.jpg", 30, 40)
        save_gray(root / "gt" / "a.png", values)
        s = one(root, "davis")
        assert s.mask_encoding == f"gray {kind}"
        assert s.instances.shape == (1, 30, 40) and np.array_equal(s.instances[0], obj == 255)
        assert not s.ignore.any() and s.instance_meta == [{"label": 1}]


def test_davis_every_encoding_of_one_index_map(tmp_path):
    """The same index map as palette, gray indices, 16-bit ids and RGB palette colours: the
    same instances (palette, gray and RGB keep 255 as void; 16-bit ids too)."""
    ids = known_ids()
    writers = {"palette ids": lambda p: write_palette_png(p, ids),
               "gray ids": lambda p: save_gray(p, ids),
               "gray16 ids": lambda p: save_gray(p, ids.astype(np.uint16)),
               "rgb colours ids": lambda p: save_rgb(p, render_rgb(ids))}
    for encoding, write in writers.items():
        root = tmp_path / encoding.replace(" ", "_")
        write_jpg(root / "img" / "a.jpg", *ids.shape)
        write(root / "gt" / "a.png")
        s = one(root, "davis")
        assert s.mask_encoding == encoding
        assert [m["label"] for m in s.instance_meta] == [1, 2, 5]
        assert np.array_equal(s.instances, np.stack([ids == 1, ids == 2, ids == 5]))
        assert np.array_equal(s.ignore, ids == 255)


def test_davis_rgb_colour_outside_the_palette(tmp_path):
    ids = known_ids()
    rgb = render_rgb(ids)
    rgb[0, 0] = (10, 200, 30)
    write_jpg(tmp_path / "img" / "a.jpg", *ids.shape)
    save_rgb(tmp_path / "gt" / "a.png", rgb)
    (bad,) = list(read(tmp_path, "davis"))
    assert isinstance(bad, BadInput) and bad.file == str(tmp_path / "gt" / "a.png")
    assert "(10, 200, 30)" in bad.reason and "palette" in bad.reason


@pytest.mark.realdata
def test_davis_real_masks_in_every_encoding(davis_dir, tmp_path):
    """Real DAVIS palette masks converted to gray indices, RGB colours and COCO_MVal's gray
    0/255 (object = every nonzero, non-void index) read back to the palette's instances."""
    stems = ["000", "042", "180"]
    src = copy_pairs(davis_dir, tmp_path / "palette", ["img", "gt"], stems)
    for stem in stems:
        ids = plain(src / "gt" / f"{stem}.png")
        assert set(np.unique(ids)) - set(VOC_COLOURS) == set()
        for name, values in (("gray", ids), ("rgb", render_rgb(ids))):
            dst = tmp_path / name
            (dst / "img").mkdir(parents=True, exist_ok=True)
            (dst / "img" / f"{stem}.jpg").write_bytes((src / "img" / f"{stem}.jpg").read_bytes())
            (save_rgb if name == "rgb" else save_gray)(dst / "gt" / f"{stem}.png", values)
        mval = tmp_path / "mval"
        (mval / "img").mkdir(parents=True, exist_ok=True)
        (mval / "img" / f"{stem}.jpg").write_bytes((src / "img" / f"{stem}.jpg").read_bytes())
        save_gray(mval / "gt" / f"{stem}.png", np.where((ids > 0) & (ids < 255), 255, 0).astype(np.uint8))
    palette = {s.key: s for s in read(src, "davis")}
    assert {s.mask_encoding for s in palette.values()} == {"palette ids"}
    for name in ("gray", "rgb"):
        for s in read(tmp_path / name, "davis"):
            p = palette[s.key]
            single = set(np.unique(plain(src / "gt" / f"{s.key}.png"))) <= {0, 1}
            encoding = "rgb colours ids" if name == "rgb" else "gray 0/1" if single else "gray ids"
            assert s.mask_encoding == encoding and s.instance_meta == p.instance_meta
            assert np.array_equal(s.instances, p.instances) and np.array_equal(s.ignore, p.ignore)
    for s in read(mval, "davis"):
        ids = plain(src / "gt" / f"{s.key}.png")
        assert s.mask_encoding == "gray 0/255" and s.instances.shape[0] == 1
        assert np.array_equal(s.instances[0], (ids > 0) & (ids < 255)) and not s.ignore.any()


# --- VOC ------------------------------------------------------------------------------------


def test_voc_palette_gray_and_rgb_object_and_class_maps(tmp_path):
    ids = known_ids()
    classes = np.where(ids == 255, 255, np.where(ids > 0, 3, 0)).astype(np.uint8)  # all "bird"
    for encoding, write in (("palette", write_palette_png), ("gray", save_gray),
                            ("rgb colours", lambda p, a: save_rgb(p, render_rgb(a)))):
        root = tmp_path / encoding.replace(" ", "_")
        write_jpg(root / "JPEGImages" / "2007_000032.jpg", *ids.shape)
        write(root / "SegmentationObject" / "2007_000032.png", ids)
        write(root / "SegmentationClass" / "2007_000032.png", classes)
        s = one(root, "voc")
        assert s.mask_encoding == f"{encoding} ids"
        assert np.array_equal(s.instances, np.stack([ids == 1, ids == 2, ids == 5]))
        assert np.array_equal(s.ignore, ids == 255)
        assert [(m["label"], m["source_id"]) for m in s.instance_meta] == [("bird", 1), ("bird", 2),
                                                                             ("bird", 5)]


# --- Berkeley, GrabCut, folder --------------------------------------------------------------


def test_berkeley_rgb_gray_and_0_1_masks(tmp_path):
    obj = np.zeros((30, 40), np.uint8)
    obj[5:25, 10:30] = 255
    obj[5, 10:30] = 140  # an anti-aliased edge value, above half
    obj[4, 10:30] = 90   # and one below
    cases = {"rgb 0/255": lambda p: save_rgb(p, np.repeat(obj[:, :, None], 3, 2)),
             "gray 0/255": lambda p: save_gray(p, obj),
             "gray 0/1": lambda p: save_gray(p, (obj > 127).astype(np.uint8)),
             "palette 0/255": lambda p: write_palette_png(p, obj)}
    for encoding, write in cases.items():
        root = tmp_path / encoding.replace(" ", "_").replace("/", "_")
        write_jpg(root / "images" / "a.jpg", 30, 40)
        write(root / "masks" / "a.png")
        s = one(root, "berkeley")
        assert s.mask_encoding == encoding and np.array_equal(s.instances[0], obj > 127)


def test_grabcut_24_bit_bmp(tmp_path):
    trimap = np.zeros((30, 40), np.uint8)
    trimap[5:25, 10:30], trimap[4, 10:30] = 255, 128
    write_jpg(tmp_path / "data_GT" / "a.jpg", 30, 40)
    (tmp_path / "boundary_GT").mkdir()
    assert cv2.imwrite(str(tmp_path / "boundary_GT" / "a.bmp"), np.repeat(trimap[:, :, None], 3, 2))
    assert Image.open(tmp_path / "boundary_GT" / "a.bmp").mode == "RGB"
    s = one(tmp_path, "grabcut")
    assert s.mask_encoding == "rgb 0/128/255"
    assert np.array_equal(s.instances[0], trimap == 255) and np.array_equal(s.ignore, trimap == 128)


def test_folder_16_bit_ids_rgb_colours_and_binary_files(tmp_path):
    h, w = 30, 40
    ids16 = np.zeros((h, w), np.uint16)
    ids16[0:10, 0:10], ids16[10:20, 0:10], ids16[20:30, 5:40] = 1000, 70, 40000
    ids = known_ids(h, w)
    obj = np.zeros((h, w), np.uint8)
    obj[3:9, 3:9] = 1
    for stem in ("a", "b", "c"):
        write_jpg(tmp_path / "images" / f"{stem}.jpg", h, w)
    save_gray(tmp_path / "masks" / "a.png", ids16)
    save_rgb(tmp_path / "masks" / "b.png", render_rgb(ids))
    write_palette_png(tmp_path / "masks" / "c_1_cat.png", obj)
    save_gray(tmp_path / "masks" / "c_2_dog.png", obj * 255)
    by_key = {s.key: s for s in read(tmp_path, "folder", ignore_value=255)}
    a, b, c = by_key["a"], by_key["b"], by_key["c"]
    assert a.mask_encoding == "gray16 ids" and [m["label"] for m in a.instance_meta] == [70, 1000, 40000]
    assert np.array_equal(a.instances, np.stack([ids16 == 70, ids16 == 1000, ids16 == 40000]))
    assert b.mask_encoding == "rgb colours ids" and np.array_equal(b.ignore, ids == 255)
    assert np.array_equal(b.instances, np.stack([ids == 1, ids == 2, ids == 5]))
    assert c.mask_encoding == "gray 0/255 + palette 0/1 (a file per object)"
    assert np.array_equal(c.instances, np.stack([obj > 0, obj > 0]))


# --- the real copies: what each reader finds, and the manifest's counts ---------------------


@pytest.mark.realdata
def test_real_sets_name_their_encodings(grabcut_dir, berkeley_dir, davis_dir, voc_sample_dir, tmp_path):
    """Counts found by PIL here (mode and values of every mask file) equal the readers'."""
    from iis_pipe.pipelines.prepare import prepare

    def pil_counts(folder: Path, name) -> Counter:
        return Counter(name(Image.open(p)) for p in sorted(folder.iterdir()))

    def grabcut_name(im):
        assert im.mode == "L"
        return "gray 0/128/255" if 128 in np.unique(np.array(im)) else "gray 0/255"

    expected = {
        "grabcut": (grabcut_dir, pil_counts(grabcut_dir / "boundary_GT", grabcut_name)),
        "berkeley": (berkeley_dir, pil_counts(berkeley_dir / "masks",
                                              lambda im: {"RGB": "rgb 0/255"}[im.mode])),
        "davis": (davis_dir, pil_counts(davis_dir / "gt", lambda im: {"P": "palette ids"}[im.mode])),
        "folder": (voc_sample_dir, Counter({"gray 0/255 (a file per object)": 1})),
    }
    assert {m.mode for m in map(Image.open, (voc_sample_dir / "masks").iterdir())} == {"L"}
    for fmt, (root, counts) in expected.items():
        found = Counter(s.mask_encoding for s in read(root, fmt))
        assert found == counts, fmt
    res = prepare(grabcut_dir, tmp_path / "gc", format="grabcut", workers=1, progress=False)
    assert res.mask_encoding == {"grabcut": dict(sorted(expected["grabcut"][1].items()))}
    import json
    manifest = json.loads((tmp_path / "gc" / "manifest.json").read_text())
    assert manifest["mask_encoding"] == res.mask_encoding
