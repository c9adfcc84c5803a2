"""SA-1B: folders and tars written here in the distribution's shape (JPEG + JSON of compressed
RLE strings made by pycocotools), read back mask for mask, filtered, capped, and rejected."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from iis_pipe.errors import BadInput
from iis_pipe.sources import Sample, SourceItem, detect_format, get_format, read

H, W = 48, 64

# pycocotools' own decode trips numpy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def sa_image(index: int) -> tuple[bytes, list[np.ndarray], list[dict]]:
    """JPEG bytes, the masks ``(H, W) bool`` and their annotation dicts of image ``index``."""
    rng = np.random.default_rng(index)
    pixels = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (W, H))
    jpeg = cv2.imencode(".jpg", pixels)[1].tobytes()
    masks, anns = [], []
    for k in range(4):
        mask = np.zeros((H, W), np.uint8)
        cy, cx = int(rng.integers(8, H - 8)), int(rng.integers(8, W - 8))
        cv2.ellipse(mask, (cx, cy), (3 + 4 * k, 2 + 3 * k), 0, 0, 360, 1, -1)
        rle = mask_utils.encode(np.asfortranarray(mask))
        masks.append(mask.astype(bool))
        anns.append({"id": 1000 * index + k,
                     "segmentation": {"size": [H, W], "counts": rle["counts"].decode("ascii")},
                     "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": int(mask.sum()),
                     "predicted_iou": [0.95, 0.80, 0.91, 0.70][k],
                     "stability_score": [0.97, 0.96, 0.85, 0.99][k],
                     "point_coords": [[float(cx), float(cy)]], "crop_box": [0.0, 0.0, float(W), float(H)]})
    return jpeg, masks, anns


def sa_json(index: int, anns: list[dict], h: int = H, w: int = W) -> bytes:
    return json.dumps({"image": {"image_id": index, "width": w, "height": h, "file_name": f"sa_{index}.jpg"},
                       "annotations": anns}).encode()


def write_folder(root: Path, indices) -> dict[int, list[np.ndarray]]:
    root.mkdir(parents=True, exist_ok=True)
    masks = {}
    for i in indices:
        jpeg, masks[i], anns = sa_image(i)
        (root / f"sa_{i}.jpg").write_bytes(jpeg)
        (root / f"sa_{i}.json").write_bytes(sa_json(i, anns))
    return masks


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def tar_members(indices, prefix: str = "") -> dict[str, bytes]:
    members = {}
    for i in indices:
        jpeg, _, anns = sa_image(i)
        members[f"{prefix}sa_{i}.jpg"] = jpeg
        members[f"{prefix}sa_{i}.json"] = sa_json(i, anns)
    return members


def samples_and_rejects(results):
    results = list(results)
    return ([r for r in results if isinstance(r, Sample)], [r for r in results if isinstance(r, BadInput)])


def test_folder_reads_every_mask(tmp_path):
    masks = write_folder(tmp_path, [1, 2, 3])
    assert detect_format(tmp_path) == "sa1b"
    samples, bad = samples_and_rejects(read(tmp_path))
    assert bad == [] and [s.key for s in samples] == ["sa_1", "sa_2", "sa_3"]
    for s, i in zip(samples, [1, 2, 3], strict=True):
        assert s.size == (H, W) and s.image_ext == "jpg" and s.mask_encoding == "compressed rle"
        assert s.image_bytes == (tmp_path / f"sa_{i}.jpg").read_bytes()
        assert np.array_equal(s.instances, np.stack(masks[i]))
        assert [m["source_id"] for m in s.instance_meta] == [1000 * i + k for k in range(4)]
        assert s.instance_meta[1]["predicted_iou"] == 0.80 and "label" not in s.instance_meta[0]
        assert s.meta["image_file"] == f"sa_{i}.jpg" and s.meta["mask_files"] == [f"sa_{i}.json"]
        assert not s.ignore.any()


def test_thresholds_and_cap_keep_the_largest(tmp_path):
    masks = write_folder(tmp_path, [7])[7]
    (s,) = read(tmp_path, min_predicted_iou=0.9)
    assert [m["source_id"] % 1000 for m in s.instance_meta] == [0, 2]  # 0.80 and 0.70 are out
    assert [(d["source_id"], d["kind"]) for d in s.meta["dropped"]] == [(7001, "predicted_iou"),
                                                                        (7003, "predicted_iou")]
    assert s.meta["dropped"][0]["reason"] == "predicted_iou 0.8 < 0.9"
    (s,) = read(tmp_path, min_predicted_iou=0.75, min_stability_score=0.9)
    assert [m["source_id"] % 1000 for m in s.instance_meta] == [0, 1]
    assert [(d["source_id"], d["kind"]) for d in s.meta["dropped"]] == [(7002, "stability_score"),
                                                                        (7003, "predicted_iou")]
    # The masks' areas grow with k (ellipse axes grow), so the two largest are 2 and 3, kept in file order.
    areas = [int(m.sum()) for m in masks]
    assert areas == sorted(areas) and len(set(areas)) == 4
    (s,) = read(tmp_path, max_objects=2)
    assert [m["source_id"] % 1000 for m in s.instance_meta] == [2, 3]
    assert np.array_equal(s.instances, np.stack(masks[2:]))
    assert [(d["source_id"], d["kind"]) for d in s.meta["dropped"]] == [(7001, "max_objects"), (7000, "max_objects")]
    (nothing,) = read(tmp_path, min_predicted_iou=0.99)
    assert isinstance(nothing, BadInput) and "no mask left" in nothing.reason and "predicted_iou 4" in nothing.reason
    for bad in ({"max_objects": 0}, {"min_predicted_iou": 1.5}, {"min_stability_score": "x"}):
        with pytest.raises(ValueError):
            list(read(tmp_path, "sa1b", **bad))


def test_tar_equals_folder_record_for_record(tmp_path):
    """Read from tars in place: the same samples, and prepare writes the same records and index."""
    from iis_pipe.pipelines.prepare import prepare
    from iis_pipe.shards.index import read_index

    write_folder(tmp_path / "folder", [1, 2, 3, 4])
    write_tar(tmp_path / "tars" / "sa_000000.tar", tar_members([1, 2]))
    write_tar(tmp_path / "tars" / "sa_000001.tar", tar_members([3, 4], prefix="./"))
    assert detect_format(tmp_path / "tars") == "sa1b"
    items = list(get_format("sa1b").scan(tmp_path / "tars"))
    assert all(isinstance(i, SourceItem) for i in items)
    assert items[2].files["image"] == f"{tmp_path / 'tars' / 'sa_000001.tar'}:./sa_3.jpg"
    from_folder, from_tar = list(read(tmp_path / "folder")), list(read(tmp_path / "tars"))
    for a, b in zip(from_folder, from_tar, strict=True):
        assert (a.key, a.image_bytes, a.meta, a.instance_meta) == (b.key, b.image_bytes, b.meta, b.instance_meta)
        assert np.array_equal(a.instances, b.instances)
    runs = {}
    for name in ("folder", "tars"):
        out = tmp_path / f"out-{name}"
        res = prepare(tmp_path / name, out, workers=1, progress=False, source_options={"max_objects": 3})
        assert (res.records, res.regions, res.rejects) == (4, 12, 0)
        assert json.loads((out / "manifest.json").read_text())["dropped"] == {"max_objects": 4}
        with tarfile.open(out / "shard-000000.tar") as tf:
            runs[name] = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        runs[name + "-index"] = read_index(out)
    assert runs["folder"] == runs["tars"] and len(runs["folder"]) > 0
    assert runs["folder-index"].equals(runs["tars-index"])


def test_rejects_name_the_file_and_the_reason(tmp_path):
    root = tmp_path / "f"
    write_folder(root, [1, 2, 3, 4, 5])
    jpeg, _, anns = sa_image(2)
    anns[1]["segmentation"]["counts"] = anns[1]["segmentation"]["counts"][:-3]  # runs short of H*W
    (root / "sa_2.json").write_bytes(sa_json(2, anns))
    _, _, anns = sa_image(3)
    anns[2]["segmentation"]["size"] = [H + 1, W]
    (root / "sa_3.json").write_bytes(sa_json(3, anns))
    (root / "sa_4.json").write_bytes(sa_json(4, sa_image(4)[2], h=H * 2))
    (root / "sa_5.jpg").unlink()
    (root / "sa_6.jpg").write_bytes(sa_image(6)[0])
    samples, bad = samples_and_rejects(read(root))
    assert [s.key for s in samples] == ["sa_1"]
    found = {b.key: (b.file, b.reason) for b in bad}
    assert found["sa_2"][0] == str(root / "sa_2.json") and "corrupt annotation 2001" in found["sa_2"][1]
    assert "RLE size [49, 64] is not the image's [48, 64]" in found["sa_3"][1]
    assert "corrupt annotation 3002" in found["sa_3"][1]
    assert "image is 48x64 but the annotation file says 96x64" in found["sa_4"][1]
    assert found["sa_5"] == (str(root / "sa_5.json"), f"mask without image (no sa_5.* in {root})")
    assert found["sa_6"][0] == str(root / "sa_6.jpg") and "image without mask" in found["sa_6"][1]


def test_truncated_and_broken_tars(tmp_path):
    whole = tmp_path / "w" / "sa_000009.tar"
    write_tar(whole, tar_members([1, 2, 3]))
    data = whole.read_bytes()
    with tarfile.open(whole) as tf:
        infos = {m.name: m for m in tf.getmembers()}
    root = tmp_path / "t"
    root.mkdir()
    # Cut inside sa_2.json's data: sa_1 whole, sa_2's json cut, sa_3 gone.
    cut = infos["sa_2.json"].offset_data + 10
    (root / "sa_000000.tar").write_bytes(data[:cut])
    # Cut right after sa_1's pair: every listed member whole, the end marker missing.
    boundary = infos["sa_2.jpg"].offset
    (root / "sa_000001.tar").write_bytes(data[:boundary])
    (root / "sa_000002.tar").write_bytes(b"this is not a tar file" * 40)
    results = list(read(root))
    samples, bad = samples_and_rejects(results)
    assert [s.key for s in samples] == ["sa_1", "sa_1"]  # one per readable tar (prepare rejects the repeat key)
    t0, t1, t2 = (str(root / f"sa_00000{i}.tar") for i in range(3))
    reasons = sorted((b.file, b.reason.split(" (")[0].split(",")[0]) for b in bad)
    assert reasons == sorted([
        (f"{t0}:sa_2.json", "truncated tar: the member's data ends past the end of the file"),
        (t0, "truncated tar: it ends inside a member"),
        (f"{t0}:sa_2.jpg", "image without annotation"),
        (t1, "truncated tar: no end-of-archive marker"),
        (t2, "unreadable tar after 0 members"),
    ])
    # A member cut after the scan (the tar shrank): load names the member.
    item = next(i for i in get_format("sa1b").scan(whole.parent) if isinstance(i, SourceItem) and i.key == "sa_3")
    whole.write_bytes(data[:infos["sa_3.json"].offset_data + 5])
    with pytest.raises(BadInput, match="truncated tar") as e:
        get_format("sa1b").load(item)
    assert e.value.file == f"{whole}:sa_3.json"
