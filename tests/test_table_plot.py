"""``iis-pipe table`` of several runs (Markdown and LaTeX, datasets as columns, exact metric
names) and ``iis-pipe plot`` telling evaluation and training runs apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.pipelines.evaluate import SAMPLES_FILE, SAMPLES_SCHEMA, SUMMARY_FILE, dataset_summary
from iis_pipe.pipelines.table import table
from iis_pipe.shards import index as idx


def _run(folder, name, per_dataset, max_clicks=4, at_once=(), robot="standard", wrappers=()):
    """A run folder as evaluate writes it, from hand-made IoU rows."""
    rows, datasets = [], []
    for ds, table_ in per_dataset.items():
        for i, ious in enumerate(table_):
            rows.append({"dataset": ds, "key": f"k{i}", "object": 0, "file": f"{i}.jpg",
                         "area": 10, "ious": list(ious), "noc85": 1, "noc90": 1, "noc95": 1,
                         "clicks": "[]", "seconds": 0.4,
                         "at_once": [0.5 + 0.1 * j for j in range(len(at_once))] or None,
                         "error": None})
        rows.append({"dataset": ds, "key": "bad", "object": -1, "file": "bad.jpg", "area": 0,
                     "ious": None, "noc85": None, "noc90": None, "noc95": None, "clicks": None,
                     "seconds": 0.0, "at_once": None, "error": "corrupt"})
        datasets.append({"dataset": ds, **dataset_summary([r for r in rows if r["dataset"] == ds],
                                                          max_clicks), "seconds": 1.0})
    folder.mkdir(parents=True)
    idx.write_table(rows, SAMPLES_SCHEMA, folder / SAMPLES_FILE)
    summary = {"name": name, "protocol": {"max_clicks": max_clicks, "threshold": 0.49,
                                          "objects": "regions", "robot": robot, "seed": 3,
                                          "at_once": list(at_once)},
               "wrappers": list(wrappers), "datasets": datasets}
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    return folder


@pytest.fixture
def runs(tmp_path):
    a = _run(tmp_path / "a", "grabcut", {
        "GrabCut": [[0.5, 0.86, 0.91, 0.95], [0.2, 0.4, 0.6, 0.8]],
        "Berkeley": [[0.9, 0.9, 0.9, 0.9]]}, at_once=(1, 3))
    b = _run(tmp_path / "b", "grabcut", {"Berkeley": [[0.1, 0.95, 0.95, 0.95]]},
             robot="uniform", wrappers=[{"name": "zoom_in", "target_size": 400}], at_once=(3,))
    return a, b


def test_markdown_table_datasets_as_columns(runs):
    text = table(runs, ["NoC@90", "NoF@90", "mIoU@2", "mIoU@3-once", "SPC"])
    lines = text.splitlines()
    assert lines[0] == ("| Run | GrabCut NoC@90 | GrabCut NoF@90 | GrabCut mIoU@2 | "
                        "GrabCut mIoU@3-once | GrabCut SPC | Berkeley NoC@90 | Berkeley NoF@90 | "
                        "Berkeley mIoU@2 | Berkeley mIoU@3-once | Berkeley SPC |")
    # GrabCut: NoC@90 (3 + 4) / 2 = 3.50, NoF 1, mIoU@2 (0.86 + 0.4) / 2, at once 0.6, SPC 0.1
    assert lines[2] == ("| grabcut | 3.50 | 1 | 0.630 | 0.600 | 0.100 | 1.00 | 0 | 0.900 | "
                        "0.600 | 0.100 |")
    # the second run lacks GrabCut; its robot and zoom are in its name
    assert lines[3].startswith("| grabcut +zoom_in(400) [uniform robot, seed 3] | - | - | - | -")
    assert "- NoC@90: mean clicks to IoU >= 0.90 within the run's 4 clicks" in text
    assert "objects: GrabCut 2, Berkeley 1" in text   # the failed rows are not objects


def test_a_metric_the_run_cannot_give_is_refused(runs):
    with pytest.raises(ValueError, match="NoC@95/100 needs 100 clicks"):
        table(runs, ["NoC@95/100"])
    with pytest.raises(ValueError, match="no 1-points-at-once"):
        table(runs, ["mIoU@1-once"])


def test_latex_table(runs):
    text = table(runs, ["NoC@85", "mIoU@1"], fmt="latex",
                 datasets=["Berkeley"])
    assert r"\multicolumn{2}{c}{Berkeley}" in text and r"NoC@85 & mIoU@1 \\" in text
    assert r"grabcut +zoom\_in(400) [uniform robot, seed 3] & 2.00 & 0.100 \\" in text
    assert text.count(r"\\") == 4 and text.splitlines()[0] == r"\begin{tabular}{l|cc}"


def test_table_cli(runs, tmp_path):
    res = CliRunner().invoke(main, ["table", *map(str, runs), "-m", "NoC@85,NoF@85",
                                    "-f", "latex", "-o", str(tmp_path / "t.tex")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.tex").read_text().startswith(r"\begin{tabular}")
    res = CliRunner().invoke(main, ["table", str(runs[0]), "-m", "IoU@3"])
    assert res.exit_code == 1 and "unknown metric 'IoU@3'" in res.output


def test_plot_tells_training_and_evaluation_runs_apart(runs, tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    lines = [{"step": s, "loss": 1.0 / s, "lr": 1e-3 * (1 - s / 10)} for s in range(1, 9)]
    lines.insert(4, {"step": 4, "val": {"mean": {"NoC@85": 9.0, "NoC@90": 12.0}}, "val_s": 2.0})
    (train / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"step\": 9")
    res = CliRunner().invoke(main, ["plot", str(train), "-o", str(tmp_path / "t.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    res = CliRunner().invoke(main, ["plot", str(runs[0]), "-o", str(tmp_path / "e.png")])
    assert res.exit_code == 0 and "| grabcut | GrabCut |" in res.output, res.output
    res = CliRunner().invoke(main, ["plot", str(runs[0]), str(train), "-o", str(tmp_path / "x")])
    assert res.exit_code == 1 and "not both" in res.output


def test_read_log_splits_steps_and_validations(tmp_path):
    from iis_pipe.training.plots import read_log, smooth

    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 2}\n{"step": 1, "val": {}}\n{"st')
    steps, vals = read_log(tmp_path)
    assert steps == [{"step": 1, "loss": 2}] and vals == [{"step": 1, "val": {}}]
    assert np.allclose(smooth([1, 2, 3, 4], 3), [1, 1.5, 2, 3])
    with pytest.raises(FileNotFoundError, match="no log.jsonl"):
        read_log(tmp_path / "nothing")


def test_runs_of_one_name_share_a_row(runs, tmp_path):
    davis = _run(tmp_path / "d", "grabcut", {"DAVIS": [[0.3, 0.9, 0.9, 0.9]]}, at_once=(1, 3))
    lines = table([runs[0], davis], ["NoC@90"]).splitlines()
    assert lines[0] == "| Run | GrabCut NoC@90 | Berkeley NoC@90 | DAVIS NoC@90 |"
    assert lines[2] == "| grabcut | 3.50 | 1.00 | 2.00 |" and lines[3] == ""
    twice = _run(tmp_path / "t", "grabcut", {"Berkeley": [[0.3, 0.9, 0.9, 0.9]]},
                 at_once=(1, 3))
    with pytest.raises(ValueError, match="two runs named 'grabcut' both give Berkeley"):
        table([runs[0], twice])
