"""Every script in benchmarks/ parses its command line before measuring anything: --help prints
usage and exits instead of starting the benchmark (one interpreter start each: the scripts
import torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=120)


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_help_prints_usage_and_exits(script):
    res = _run(script, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {script.name}"), res.stdout[:200]
