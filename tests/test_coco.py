"""COCO + LVIS over the same images (several annotation files, one record per image, duplicates
across files dropped by mask IoU), and the lean annotation index (one annotation decoded at a
time, polygons as arrays) read against ``json.load`` of the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iis_pipe.errors import BadInput
from iis_pipe.sources import Sample, read
from iis_pipe.sources.coco import index_annotations

from test_sources import split_results, write_jpg

H, W = 60, 80
# pycocotools' own decode trips numpy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def box(x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, list[list[float]]]:
    """A rectangle's mask ``(H, W) bool`` (pixels x0..x1-1, y0..y1-1) and its COCO polygon
    (pixel corners: pycocotools fills the pixels whose centres the outline encloses)."""
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask, [[x0, y0, x1, y0, x1, y1, x0, y1]]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def coco_file(path: Path, images: list[dict], anns: list[dict], names: dict[int, str], **dump) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": i, "name": n} for i, n in names.items()]}, **dump))
    return path


@pytest.fixture
def coco_lvis(tmp_path):
    """``images/a.jpg`` and ``b.jpg`` (COCO lists them by file name), ``train2017/c.jpg`` (only
    LVIS, by coco_url), and the boxes each file draws on image 1."""
    for name in ("images/a.jpg", "images/b.jpg", "train2017/c.jpg", "images/d.jpg"):
        write_jpg(tmp_path / name, H, W)
    masks = {"A": box(10, 10, 40, 30), "B": box(45, 20, 75, 50), "A2": box(11, 10, 40, 31),
             "C": box(0, 40, 20, 60), "B2": box(55, 20, 75, 60)}
    coco = coco_file(tmp_path / "annotations" / "instances_train2017.json",
                     [{"id": 1, "file_name": "a.jpg", "height": H, "width": W},
                      {"id": 2, "file_name": "b.jpg", "height": H, "width": W},
                      {"id": 4, "file_name": "d.jpg", "height": H, "width": W}],
                     [{"id": 10, "image_id": 1, "category_id": 1, "segmentation": masks["A"][1]},
                      {"id": 11, "image_id": 1, "category_id": 2, "segmentation": masks["B"][1]},
                      {"id": 12, "image_id": 2, "category_id": 1, "segmentation": masks["A"][1]},
                      {"id": 13, "image_id": 4, "category_id": 1, "segmentation": masks["A"][1]}],
                     {1: "person", 2: "dog"})
    lvis = coco_file(tmp_path / "annotations" / "lvis_v1_train.json",
                     [{"id": 1, "coco_url": "http://images.cocodataset.org/train2017/a.jpg", "height": H, "width": W},
                      {"id": 3, "coco_url": "http://images.cocodataset.org/train2017/c.jpg", "height": H, "width": W},
                      {"id": 4, "coco_url": "http://images.cocodataset.org/train2017/d.jpg", "height": H + 1,
                       "width": W}],
                     # LVIS ids collide with COCO's: annotations are told apart by their file
                     [{"id": 10, "image_id": 1, "category_id": 7, "segmentation": masks["A2"][1]},
                      {"id": 20, "image_id": 1, "category_id": 8, "segmentation": masks["C"][1]},
                      {"id": 21, "image_id": 1, "category_id": 9, "segmentation": masks["B2"][1]},
                      {"id": 22, "image_id": 3, "category_id": 7, "segmentation": masks["C"][1]},
                      {"id": 23, "image_id": 4, "category_id": 7, "segmentation": masks["C"][1]}],
                     {7: "person", 8: "bench", 9: "dog"})
    return tmp_path, coco, lvis, {k: m for k, (m, _) in masks.items()}


def test_two_files_one_record_per_image(coco_lvis):
    root, coco, lvis, m = coco_lvis
    assert iou(m["A"], m["A2"]) > 0.8 and 0.2 < iou(m["B"], m["B2"]) < 0.8  # the premises
    samples, bad = split_results(read(root, "coco", annotations=f"{coco},{lvis}"))
    by_key = {s.key: s for s in samples}
    assert sorted(by_key) == ["a", "b", "train2017/c"]
    a = by_key["a"]
    assert a.meta["split"] == "train2017" and a.meta["mask_files"] == [str(coco), str(lvis)]
    assert [(x["source_id"], x["annotation_file"], x["label"]) for x in a.instance_meta] == [
        (10, 0, "person"), (11, 0, "dog"), (20, 1, "bench"), (21, 1, "dog")]
    assert np.array_equal(a.instances, np.stack([m["A"], m["B"], m["C"], m["B2"]]))
    (dup,) = a.meta["dropped"]
    assert dup["kind"] == "duplicate" and (dup["source_id"], dup["annotation_file"]) == (10, 1)
    assert dup["reason"] == f"IoU {iou(m['A'], m['A2']):.3f} with annotation 10 of instances_train2017.json"
    assert np.array_equal(by_key["b"].instances, m["A"][None])
    assert np.array_equal(by_key["train2017/c"].instances, m["C"][None])
    assert by_key["train2017/c"].instance_meta[0]["annotation_file"] == 1
    (clash,) = bad
    assert clash.key == "d" and clash.file == str(lvis)
    assert clash.reason == f"image id 4 is {H + 1}x{W} here but {H}x{W} in {coco}"


def test_file_order_and_threshold_decide(coco_lvis):
    root, coco, lvis, m = coco_lvis
    lvis_first = {s.key: s for s in read(root, "coco", annotations=[str(lvis), str(coco)])
                  if isinstance(s, Sample)}
    a = lvis_first["train2017/a"]  # keyed by the first file listing it: LVIS's coco_url path
    assert [(x["source_id"], x["annotation_file"]) for x in a.instance_meta] == [(10, 0), (20, 0), (21, 0),
                                                                                 (11, 1)]
    assert np.array_equal(a.instances[0], m["A2"]) and a.meta["dropped"][0]["source_id"] == 10
    strict = {s.key: s for s in read(root, "coco", annotations=[str(coco), str(lvis)], duplicate_iou=0.99)
              if isinstance(s, Sample)}
    assert len(strict["a"].instances) == 5 and "dropped" not in strict["a"].meta
    for wrong in (0, 1.5, "x"):
        with pytest.raises(ValueError, match="duplicate_iou"):
            list(read(root, "coco", annotations=[str(coco), str(lvis)], duplicate_iou=wrong))
    with pytest.raises(ValueError, match="twice"):
        list(read(root, "coco", annotations=f"{coco},{coco}"))


def test_prepare_counts_duplicates(coco_lvis, tmp_path):
    from iis_pipe.pipelines.prepare import prepare
    from iis_pipe.records import schema
    from iis_pipe.shards.tar import iter_records

    root, coco, lvis, _ = coco_lvis
    res = prepare(root, tmp_path / "out", format="coco", workers=1, progress=False,
                  source_options={"annotations": f"{coco},{lvis}"})
    assert (res.inputs, res.records, res.regions, res.rejects) == (4, 3, 6, 1)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["dropped"] == {"duplicate": 1}
    assert manifest["mask_encoding"] == {"coco": {"polygon": 3}}
    records = {k: v for s in (tmp_path / "out").glob("shard-*.tar") for k, v in iter_records(s)}
    meta = schema.decode_meta(records["a"])
    assert [d["kind"] for d in meta["dropped"]] == ["duplicate"]


def test_lean_index_equals_json_load(tmp_path):
    """Pretty-printed, members in another order, numbers as ints and floats, RLE and crowd
    annotations: the index holds what ``json.load`` reads, polygons as float64 arrays."""
    rng = np.random.default_rng(3)
    anns = []
    for j in range(60):
        poly = [[float(v) for v in np.round(rng.uniform(0, 50, 8), 2)], [1, 2, 30, 2, 30, 25]]
        seg = poly if j % 3 else {"size": [H, W], "counts": [100, 20, H * W - 120]}
        anns.append({"segmentation": seg, "id": j, "image_id": j % 7, "category_id": 1 + j % 2,
                     "iscrowd": int(j % 3 == 0), "bbox": [0, 0, 1, 1], "area": 1.5})
    doc = {"annotations": anns, "info": {"x": [1, {"y": "]},"}]},
           "images": [{"id": i, "file_name": f"{i}.jpg", "height": H, "width": W} for i in range(7)],
           "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b\u00e9"}]}
    path = tmp_path / "a.json"
    for dump in ({"indent": 2}, {"separators": (",", ":")}, {"indent": "\t", "ensure_ascii": False}):
        path.write_text(json.dumps(doc, **dump), encoding="utf-8")
        entries, by_image = index_annotations(path)
        assert entries == sorted(doc["images"], key=lambda e: e["file_name"])
        got = [a for i in sorted(by_image) for a in by_image[i]]
        want = sorted(anns, key=lambda a: (a["image_id"], a["id"]))
        assert [(a["id"], a["category_id"], a["iscrowd"]) for a in got] == [
            (a["id"], a["category_id"], a["iscrowd"]) for a in want]
        assert [a["category"] for a in got] == [["a", "b\u00e9"][a["category_id"] - 1] for a in want]
        for g, w in zip(got, want, strict=True):
            if isinstance(w["segmentation"], dict):
                assert g["segmentation"] == w["segmentation"]
            else:
                assert all(isinstance(p, np.ndarray) and p.dtype == np.float64 for p in g["segmentation"])
                assert [p.tolist() for p in g["segmentation"]] == w["segmentation"]
    text = json.dumps(doc)
    for broken in (text[: len(text) // 2], text.replace('"annotations": [', '"annotations": [,'),
                   text.replace('"images"', '"imagez"'), "[]"):
        path.write_text(broken)
        with pytest.raises(BadInput, match="corrupt annotation file"):
            index_annotations(path)


def test_cli_takes_the_files_repeated_or_comma_separated(coco_lvis, tmp_path):
    from click.testing import CliRunner

    from iis_pipe.cli.main import main

    root, coco, lvis, _ = coco_lvis
    outputs = []
    for i, opts in enumerate((["-O", f"annotations={coco}", "-O", f"annotations={lvis}"],
                              ["-O", f"annotations={coco},{lvis}"])):
        out = tmp_path / f"o{i}"
        r = CliRunner().invoke(main, ["prepare", str(root), "-f", "coco", *opts, "-o", str(out), "-w", "1", "-q"])
        assert r.exit_code == 0, r.output
        assert "3 records, 6 regions, 1 rejected of 4 inputs" in r.output
        assert "instances dropped: duplicate 1" in r.output and "masks of coco: polygon 3" in r.output
        outputs.append((out / "index.parquet").read_bytes())
    assert outputs[0] == outputs[1]
