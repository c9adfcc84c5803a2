"""The click benchmark's pipeline runs end to end on a few DAVIS masks (figures not checked)."""

from __future__ import annotations

import pytest

from iis_pipe.profiling.clicks import ClickBenchParams, report, run


@pytest.mark.realdata
def test_bench_clicks_pipeline_small(davis_dir):
    res = run(davis_dir.parent, ClickBenchParams(masks=2, clicks=2, samples=4, batch=1, points=4))
    assert res["robot"]["identical"] == res["robot"]["n"] == 4
    assert res["sampler"]["identical"] == res["sampler"]["n"] == 4
    assert all(row["max_diff_cpu"] <= 1e-6 for row in res["encoders"])
    text = report(res)
    assert "standard click" in text and "training sampler" in text and "numba" in text
