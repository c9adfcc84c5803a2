"""Evaluation faults: errors cross worker processes as FAILED rows, predictor options are
checked, and a run in which every object failed exits non-zero."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from iis_pipe.cli.main import main
from iis_pipe.pipelines.executors import ordered_map


@pytest.fixture
def toy(small_toy):
    return small_toy


def _evaluate(src, out, *args):
    return CliRunner().invoke(main, ["evaluate", str(src), "-o", str(out), "-q",
                                     "--max-clicks", "2", *args])


@pytest.mark.timeout(300)
def test_a_truncated_shard_is_one_failed_row_with_worker_processes(toy, tmp_path):
    d = Path(shutil.copytree(toy, tmp_path / "d"))
    shard = d / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[:3000])  # inside its first record
    rows = {}
    for w in ("1", "2"):
        r = _evaluate(d, tmp_path / f"w{w}", "-w", w)
        assert r.exit_code == 0, r.output
        assert "FAILED" in r.output and "shard-000001.tar" in r.output
        rows[w] = [(x["key"], x["error"], x["ious"]) for x in
                   pq.read_table(tmp_path / f"w{w}" / "samples.parquet").to_pylist()]
    assert rows["1"] == rows["2"]
    assert [e for _, e, _ in rows["2"] if e] and [i for _, e, i in rows["2"] if not e]


def test_a_task_that_raises_becomes_its_own_result():
    def fn(x):
        if x == 2:
            raise RuntimeError("worker broke")
        return x

    with ThreadPoolExecutor(2) as ex:
        got = list(ordered_map(fn, range(4), ex, on_error=lambda x, e: f"{x} failed: {e}"))
        assert got == [0, 1, "2 failed: worker broke", 3]
        with pytest.raises(RuntimeError):
            list(ordered_map(fn, range(4), ex))


@pytest.mark.parametrize("option,message", [
    ("size=-5", "option size=-5: must be an integer >= 8"),
    ("radius=-3", "option radius=-3: must be an integer >= 1"),
    ("prior=abc", "option prior='abc': must be a number >= 0 and <= 1"),
    ("prior=1.5", "option prior=1.5: must be a number >= 0 and <= 1"),
    ("iterations=1.5", "option iterations=1.5: must be an integer"),
])
def test_predictor_options_are_checked_in_one_line(toy, tmp_path, option, message):
    r = _evaluate(toy, tmp_path / "ev", "-w", "1", "-P", option)
    assert r.exit_code == 1 and message in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "ev").exists()


def test_model_predictor_options_are_declared_too():
    from iis_pipe.errors import OptionError
    from iis_pipe.predictors.classical import GrabCut
    from iis_pipe.predictors.model import ModelPredictor
    import dataclasses
    import inspect

    assert set(GrabCut.OPTIONS) == {f.name for f in dataclasses.fields(GrabCut)}
    params = set(inspect.signature(ModelPredictor.__init__).parameters) - {"self", "model"}
    assert set(ModelPredictor.OPTIONS) == params
    with pytest.raises(OptionError, match="mode='square': must be one of disk, dist, gauss"):
        ModelPredictor.OPTIONS["mode"].check("predictor 'x.pt'", "mode", "square")


def test_every_object_failed_exits_non_zero(toy, tmp_path):
    d = Path(shutil.copytree(toy, tmp_path / "d"))
    for shard in d.glob("shard-*.tar"):
        shard.write_bytes(b"not a tar at all" * 64)
    r = _evaluate(d, tmp_path / "ev", "-w", "1")
    assert r.exit_code == 1 and "every object failed" in r.output, r.output
    assert "FAILED" in r.output


def test_prior_zero_is_clicks_alone():
    """-P prior=0 (the README's "clicks alone" rows) is a valid setting, not an error."""
    from iis_pipe.predictors import make_predictor

    assert make_predictor("grabcut", prior=0).prior == 0.0
