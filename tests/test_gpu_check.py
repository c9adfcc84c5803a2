"""The GPU check script exits cleanly, saying why, where CUDA is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "CUDA is not available" in r.stdout and "nothing was checked" in r.stdout
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()
    h = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                       timeout=60)
    assert h.returncode == 0 and "--workers" in h.stdout and "DDP" in h.stdout
