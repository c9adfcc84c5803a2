"""The click protocol on cases whose answer is known independently (an oracle needs one click, a
predictor that ignores clicks never gets there, ignore pixels never count), shards == folder,
failures recorded, the classical predictor improving with clicks, and the CLI's messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe import sources
from iis_pipe.images import decode_image
from iis_pipe.predictors import GrabCut, make_predictor
from iis_pipe.pipelines.evaluate import Protocol, evaluate, run_object
from iis_pipe.pipelines.prepare import prepare


class Empty:
    """Ignores clicks and previous mask: always the empty mask (picklable, for worker pools)."""

    def __call__(self, image, clicks, prev):
        return np.zeros(image.shape[:2], np.float32)


class Fails:
    def __call__(self, image, clicks, prev):
        raise RuntimeError("predictor broke")


def real_objects(root: Path, limit: int | None = None):
    """``(key, image, gt, ignore)`` of each instance of the first ``limit`` images of a set."""
    for i, s in enumerate(sources.read(root)):
        if limit is not None and i == limit:
            return
        assert not isinstance(s, Exception), s
        image = decode_image(s.image_bytes, s.image_ext)
        for gt in s.instances:
            yield s.key, image, gt, s.ignore


def link_pairs(src: Path, dst: Path, stems: list[str]) -> Path:
    """A GrabCut-layout folder holding symlinks to ``stems``' image and mask."""
    for sub in ("data_GT", "boundary_GT"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
        for f in (src / sub).iterdir():
            if f.stem in stems:
                (dst / sub / f.name).symlink_to(f)
    return dst


def test_oracle_needs_one_click_on_every_real_object(grabcut_dir, berkeley_dir):
    seen = 0
    for root, limit in ((grabcut_dir, None), (berkeley_dir, 10)):
        for key, image, gt, ignore in real_objects(root, limit):
            oracle = lambda image, clicks, prev, gt=gt: gt.astype(np.float32)  # noqa: E731
            ious, clicks, _ = run_object(oracle, image, gt, ignore)
            assert len(ious) == len(clicks) == 20
            assert (ious == 1.0).all(), key
            assert clicks[0].positive and gt[clicks[0].y, clicks[0].x], key
            seen += 1
    assert seen == 50 + 10


def test_ignore_pixels_never_count(grabcut_dir):
    """A prediction that differs from gt only on GrabCut's ignore band is perfect; the same
    difference outside the band is not."""
    key, image, gt, ignore = next(o for o in real_objects(grabcut_dir) if o[3].any())
    band_on = lambda image, clicks, prev: (gt | ignore).astype(np.float32)  # noqa: E731
    ious, _, _ = run_object(band_on, image, gt, ignore, Protocol(max_clicks=2))
    assert ious.tolist() == [1.0, 1.0]
    ious, _, _ = run_object(band_on, image, gt, None, Protocol(max_clicks=1))
    assert ious[0] < 1.0


def test_predictor_ignoring_clicks_never_reaches_85(grabcut_dir, tmp_path):
    res = evaluate([grabcut_dir], tmp_path, predictor=Empty(), limit=6, workers=1, progress=False)
    d = res.summary["datasets"][0]
    assert d["samples"] == 6 and d["failed"] == 0
    for t in (85, 90, 95):
        assert d[f"NoC@{t}"] == 20.0 and d[f"NoF@{t}"] == 6
    assert d["mIoU"] == [0.0] * 20
    assert all(r["noc85"] == 20 for r in res.rows)


def test_classical_predictor_improves_with_clicks(grabcut_dir):
    """On 5 real GrabCut images, GrabCut seeded by clicks gets better as clicks are added."""
    first, tenth = [], []
    for key, image, gt, ignore in real_objects(grabcut_dir, 5):
        ious, _, _ = run_object(GrabCut(), image, gt, ignore, Protocol(max_clicks=10))
        first.append(ious[0])
        tenth.append(ious[9])
    assert np.mean(tenth) > np.mean(first) + 0.1
    assert np.mean(tenth) > 0.85


def test_classical_predictor_is_deterministic(grabcut_dir):
    key, image, gt, ignore = next(real_objects(grabcut_dir, 1))
    runs = [run_object(GrabCut(), image, gt, ignore, Protocol(max_clicks=4))[:2] for _ in range(2)]
    assert runs[0][0].tolist() == runs[1][0].tolist() and runs[0][1] == runs[1][1]


def test_shards_evaluate_like_the_folder(grabcut_dir, tmp_path):
    folder = link_pairs(grabcut_dir, tmp_path / "set", ["banana1", "book", "ceramic"])
    prepare(folder, tmp_path / "shards", workers=1, progress=False)
    proto = Protocol(max_clicks=4)
    a = evaluate([folder], tmp_path / "a", protocol=proto, workers=1, progress=False).rows
    b = evaluate([tmp_path / "shards"], tmp_path / "b", protocol=proto, workers=2,
                 progress=False).rows
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        assert (ra["key"], ra["object"], ra["area"]) == (rb["key"], rb["object"], rb["area"])
        assert ra["ious"] == rb["ious"] and ra["clicks"] == rb["clicks"]


def test_regions_or_union_of_a_record(tmp_path):
    """The toy set has 1-4 objects per image: one row per region, or one per record."""
    opts = {"count": 4}
    regions = evaluate(["toy"], tmp_path / "r", predictor=Empty(), source_options=opts,
                       protocol=Protocol(max_clicks=1), workers=1, progress=False).rows
    union = evaluate(["toy"], tmp_path / "u", predictor=Empty(), source_options=opts,
                     protocol=Protocol(max_clicks=1, objects="union"), workers=1,
                     progress=False).rows
    assert len(union) == 4 < len(regions)
    assert sum(r["area"] for r in union) == sum(r["area"] for r in regions)  # toy never overlaps


def test_failures_are_recorded_with_file_and_reason(grabcut_dir, tmp_path):
    folder = link_pairs(grabcut_dir, tmp_path / "set", ["banana1"])
    (folder / "data_GT" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "boundary_GT" / "broken.bmp").symlink_to(grabcut_dir / "boundary_GT" / "banana1.bmp")
    res = evaluate([folder], tmp_path / "out", protocol=Protocol(max_clicks=2), workers=1,
                   progress=False)
    d = res.summary["datasets"][0]
    assert (d["samples"], d["failed"]) == (1, 1)
    bad = d["failures"][0]
    assert bad["key"] == "broken" and bad["file"].endswith("broken.jpg") and "JPEG" in bad["reason"]
    table = pq.read_table(tmp_path / "out" / "samples.parquet").to_pylist()
    assert [r["error"] is None for r in table] == [True, False]

    res = evaluate([folder], tmp_path / "out2", predictor=Fails(), workers=1, progress=False)
    reasons = [r["error"] for r in res.rows]
    assert res.summary["datasets"][0]["failed"] == 2 and "RuntimeError: predictor broke" in reasons


def test_model_checkpoint_predictor(tmp_path):
    """A (random) checkpoint runs through the model wrapper: full-size probabilities."""
    torch = pytest.importorskip("torch")
    from iis_pipe import models
    from iis_pipe.clicking import Click

    torch.manual_seed(0)
    ckpt = models.save(models.create("hrnet18s-conv1s").eval(), tmp_path / "m.pt")
    predictor = make_predictor(str(ckpt), max_size=64)
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    probs = predictor(image, [Click(10, 20, True), Click(30, 40, False)],
                      np.zeros((50, 70), np.float32))
    assert probs.shape == (50, 70) and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0


def test_make_predictor_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown predictor 'nope'.*grabcut"):
        make_predictor("nope")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        make_predictor(str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="no such option \\[.sise.\\]"):
        make_predictor("grabcut", sise=100)


def test_cli_messages_and_outputs(grabcut_dir, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a checkpoint")
    for args, message in [
        (["-p", str(tmp_path / "missing.pt")], "checkpoint not found"),
        (["-p", str(bad)], "corrupt.pt: not a readable torch checkpoint"),
        (["-p", "nope"], "unknown predictor 'nope'"),
        (["-P", "colour=1"], "no such option ['colour']"),
    ]:
        res = runner.invoke(main, ["evaluate", str(grabcut_dir), "-o", str(tmp_path / "x"), *args])
        assert res.exit_code == 1 and message in res.output, res.output
    res = runner.invoke(main, ["evaluate", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 1 and "nowhere is not a folder" in res.output, res.output

    folder = link_pairs(grabcut_dir, tmp_path / "set", ["banana1", "book"])
    for run in ("r1", "r2"):
        res = runner.invoke(main, ["evaluate", str(folder), "-o", str(tmp_path / run), "-q",
                                   "--max-clicks", "3", "-w", "1", "--name", run,
                                   *(["--plot-with", str(tmp_path / "r1")] if run == "r2" else [])])
        assert res.exit_code == 0, res.output
        assert f"| {run} | set |" in res.output and "NoC@90" in res.output
    summary = json.loads((tmp_path / "r2" / "summary.json").read_text())
    assert summary["protocol"] == {"max_clicks": 3, "threshold": 0.49, "objects": "regions",
                                   "robot": "standard", "seed": 0, "at_once": []}
    assert summary["wrappers"] == []
    assert (tmp_path / "r2" / "miou.png").read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(main, ["plot", str(tmp_path / "r1"), str(tmp_path / "r2"),
                               "-o", str(tmp_path / "both.png")])
    assert res.exit_code == 0 and (tmp_path / "both.png").is_file(), res.output
    res = runner.invoke(main, ["plot", str(tmp_path / "set"), "-o", str(tmp_path / "n.png")])
    assert res.exit_code == 1 and "no summary.json" in res.output


def test_runs_of_last_pt_checkpoints_are_told_apart(tmp_path):
    """Every training run writes last.pt: the default run name adds the run's folder."""
    from iis_pipe import models
    from iis_pipe.pipelines.evaluate import format_table

    names = []
    for run in ("small", "big"):
        ckpt = models.save(models.create("timm:test_convnext").eval(), tmp_path / run / "last.pt")
        res = evaluate(["toy"], tmp_path / f"eval-{run}", predictor=str(ckpt),
                       predictor_options={"max_size": 64}, source_options={"count": 1},
                       protocol=Protocol(max_clicks=1), workers=1, progress=False)
        names.append(res.summary["name"])
        assert f"| {run}/last | toy |" in format_table([res.summary])
    assert names == ["small/last", "big/last"]
    grabcut = evaluate(["toy"], tmp_path / "eval-g", source_options={"count": 1},
                       protocol=Protocol(max_clicks=1), workers=1, progress=False)
    assert grabcut.summary["name"] == "grabcut"
