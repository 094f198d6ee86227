"""benchmarks/gpu.sh without CUDA: it says so, dry-runs its benchmarks on CPU at the smallest shapes, exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, needs_shared

pytestmark = [needs_shared, pytest.mark.slow]


def test_gpu_script_dry_run_without_cuda(tmp_path):
    out = tmp_path / "gpu.md"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "no CUDA device here" in run.stderr
    tables = out.read_text()
    assert "dry run on CPU" in tables
    for row in ("| classifier |", "| scorer C=4 |", "| scorer C=20 |", "| zero-shot, 4 labels |", "| rerank |", "micro-batched"):
        assert row in tables, row
    assert tables.count("machine: ") >= 2 and "load average" in tables
