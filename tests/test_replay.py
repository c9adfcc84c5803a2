"""``evaluate --clicks``: given clicks reach the predictor in order with its previous output fed
back, the IoU after the last given click carries on, a robot run's clicks replayed score the
same, and every bad entry is a message (before work) or a failure row naming the object."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from app_helpers import grabcut_truth, iou_of
from iis_pipe.cli.main import main
from iis_pipe.clicking import Click
from iis_pipe.clicking.clickfile import ObjectClicks, clicks_json, parse_clicks, read_clicks
from iis_pipe.pipelines.evaluate import Protocol, evaluate


def squares(shape, clicks):
    """``(H, W) float32``: 1 on a square of side 21 around each click."""
    out = np.zeros(shape, np.float32)
    for c in clicks:
        out[max(0, c.y - 10):c.y + 11, max(0, c.x - 10):c.x + 11] = 1
    return out


class Recorder:
    """Predicts ``squares``; records the clicks and previous output it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, clicks, prev):
        self.calls.append((list(clicks), prev.copy()))
        return squares(image.shape[:2], clicks)


def write(tmp_path, doc, name="clicks.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_given_clicks_reach_the_predictor_in_order(grabcut_dir, tmp_path):
    gt, ignore = grabcut_truth(grabcut_dir, "124080")
    ys, xs = np.nonzero(gt)
    given = [[int(ys[0]), int(xs[0]), 1], [5, 7, 0], [int(ys[-1]), int(xs[-1]), True]]
    path = write(tmp_path, [{"key": "124080", "clicks": given}])  # the hand-written form
    rec = Recorder()
    res = evaluate([grabcut_dir], tmp_path / "run", predictor=rec, clicks=path, workers=1,
                   protocol=Protocol(max_clicks=5), progress=False)
    assert [r["key"] for r in res.rows] == ["124080"]  # only the object the file names
    assert [c for c, _ in rec.calls] == [[Click(*c[:2], bool(c[2])) for c in given[:k]]
                                         for k in (1, 2, 3)]
    assert not rec.calls[0][1].any()  # zeros before the first click, then its own output back
    for k in (1, 2):
        assert np.array_equal(rec.calls[k][1], squares(gt.shape, rec.calls[k - 1][0]))
    # The IoU of the three squares, computed here, then carried to clicks 4 and 5.
    pred = squares(gt.shape, rec.calls[2][0]) > 0.49
    row = res.rows[0]
    assert row["ious"][2] == pytest.approx(iou_of(gt, pred, ignore)) and row["ious"][3:] == [row["ious"][2]] * 2
    assert json.loads(row["clicks"]) == [[y, x, int(p)] for y, x, p in given]
    assert res.summary["protocol"]["robot"] == f"clicks {path}"
    assert res.summary["datasets"][0]["samples"] == 1


def test_a_robot_run_replayed_scores_the_same(grabcut_dir, tmp_path):
    run = evaluate([grabcut_dir], tmp_path / "robot", limit=3, workers=1, progress=False,
                   protocol=Protocol(max_clicks=4))
    replay = evaluate([grabcut_dir], tmp_path / "replay", workers=1, progress=False,
                      protocol=Protocol(max_clicks=4), clicks=tmp_path / "robot" / "samples.parquet")
    assert len(replay.rows) == 3
    for a, b in zip(run.rows, replay.rows):
        assert (a["key"], a["clicks"], a["ious"]) == (b["key"], b["clicks"], b["ious"])


def test_bad_entries_become_failure_rows(grabcut_dir, tmp_path):
    doc = clicks_json([
        ObjectClicks("124080", 0, (Click(400, 5, True),), dataset="GrabCut"),  # image is 321 high
        ObjectClicks("124080", 1, (Click(5, 5, True),), dataset="GrabCut"),  # one object only
        ObjectClicks("nosuchkey", 0, (Click(5, 5, True),), dataset="GrabCut"),
    ])
    res = evaluate([grabcut_dir], tmp_path / "run", clicks=write(tmp_path, doc), workers=1,
                   progress=False, protocol=Protocol(max_clicks=3))
    errors = {(r["key"], r["object"]): r["error"] for r in res.rows}
    assert "outside the 321x481 image" in errors[("124080", 0)]
    assert "the record has 1" in errors[("124080", 1)]
    assert "not in the source" in errors[("nosuchkey", 0)]
    assert res.summary["datasets"][0]["failed"] == 3


@pytest.mark.parametrize("doc, message", [
    ({"version": 9, "objects": []}, "expected {\"version\": 1"),
    ([{"clicks": [[1, 2, 1]]}], "'key' must be"),
    ([{"key": "a", "clicks": [[1, 2]]}], "click 0 [1, 2] is not [y, x, positive]"),
    ([{"key": "a", "clicks": [[1, -2, 1]]}], "is not [y, x, positive]"),
    ([{"key": "a", "clicks": []}], "non-empty list"),
    ([{"key": "a", "object": -1, "clicks": [[1, 2, 1]]}], "'object' must be"),
])
def test_malformed_click_files(tmp_path, doc, message):
    with pytest.raises(ValueError, match="clicks.json: .*") as e:
        read_clicks(write(tmp_path, doc))
    assert message in str(e.value)


def test_exported_document_round_trips():
    objs = [ObjectClicks("k", 2, (Click(1, 2, True), Click(3, 4, False)), "D", "f.jpg", (5, 6))]
    assert parse_clicks(json.loads(json.dumps(clicks_json(objs)))) == objs


def test_cli_replay_and_its_messages(grabcut_dir, tmp_path):
    runner = CliRunner()
    good = write(tmp_path, [{"key": "124080", "clicks": [[150, 240, 1]]}])
    res = runner.invoke(main, ["evaluate", str(grabcut_dir), "-o", str(tmp_path / "r"), "-q",
                               "-w", "1", "--max-clicks", "2", "--clicks", str(good)])
    assert res.exit_code == 0, res.output
    assert "1 objects evaluated, 0 failed" in res.output
    cases = [(write(tmp_path, [{"key": "124080", "dataset": "VOC", "clicks": [[1, 1, 1]]}],
                    "d.json"), "name dataset 'VOC', not one of the sources: GrabCut"),
             (write(tmp_path, [{"key": "124080", "clicks": [[1, 1, 1]] * 3}], "n.json"),
              "3 clicks, more than --max-clicks 2"),
             (tmp_path / "missing.json", "clicks file not found"),
             (write(tmp_path, "not json", "bad.json"), "expected a list of objects")]
    (tmp_path / "garbage.json").write_text("{oops")
    cases.append((tmp_path / "garbage.json", "not a JSON click file"))
    for path, message in cases:
        res = runner.invoke(main, ["evaluate", str(grabcut_dir), "-o", str(tmp_path / "x"),
                                   "-q", "--max-clicks", "2", "--clicks", str(path)])
        assert res.exit_code == 1 and message in res.output, (path, res.output)
        assert "Traceback" not in res.output
