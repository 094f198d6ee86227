"""Process-wide CPU settings: the glibc allocator thresholds and the OpenMP wait policy.

Each check runs in a fresh subprocess: both settings belong to a process, and the test process
must not change under the other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from t5cls.runtime import openmp_is_passive

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")

# Frees and re-allocates a 64 MiB buffer: above glibc's default mmap threshold, so untuned each
# allocation maps fresh pages and faults every one of them in (16,384 faults of 4 KiB).
FAULT_PROBE = """
import json, resource, sys, torch
from t5cls.runtime import tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tune" else False
again = tune_malloc() if sys.argv[1] == "tune" else False
for _ in range(2):
    torch.empty(16 << 20).fill_(1.0)  # first touches: fault either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.empty(16 << 20).fill_(1.0)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"tuned": tuned, "again": again, "faults": faults}))
"""


def _probe(mode: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", FAULT_PROBE, mode], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@linux_only
def test_tuned_malloc_reuses_freed_buffers_instead_of_faulting_in_new_pages():
    untuned = _probe("plain")
    tuned = _probe("tune")
    assert tuned["tuned"] and tuned["again"], "tune_malloc() reports success, and again on a second call"
    assert untuned["faults"] > 5 * 10_000, untuned
    assert tuned["faults"] < 1_000, tuned


@linux_only
def test_malloc_tuning_can_be_turned_off():
    result = _probe("tune", T5CLS_MALLOC_TUNING="0")
    assert result["tuned"] is False
    assert result["faults"] > 5 * 10_000


RELAUNCH_PROBE = """
import json, os, sys
from t5cls.runtime import relaunch_with_passive_openmp
print(json.dumps({"pid": os.getpid(), "policy": os.environ.get("OMP_WAIT_POLICY"), "argv": sys.argv[1:]}), flush=True)
relaunch_with_passive_openmp(module="relaunch_probe")
"""


@pytest.mark.skipif(os.name != "posix", reason="exec-based relaunch is POSIX-only")
def test_relaunch_execs_the_same_command_with_a_passive_wait_policy(tmp_path):
    (tmp_path / "relaunch_probe.py").write_text(textwrap.dedent(RELAUNCH_PROBE))
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    process = subprocess.run(
        [sys.executable, "-m", "relaunch_probe", "serve", "--port", "1"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert process.returncode == 0, process.stderr
    first, second = (json.loads(line) for line in process.stdout.strip().splitlines())
    assert first["policy"] is None and second["policy"] == "PASSIVE"
    assert first["pid"] == second["pid"], "exec keeps the process id (signals still reach it)"
    assert first["argv"] == second["argv"] == ["serve", "--port", "1"]


@pytest.mark.skipif(os.name != "posix", reason="exec-based relaunch is POSIX-only")
def test_relaunch_leaves_a_policy_the_user_chose(tmp_path):
    (tmp_path / "relaunch_probe.py").write_text(textwrap.dedent(RELAUNCH_PROBE))
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE", "PYTHONPATH": str(tmp_path)}
    process = subprocess.run([sys.executable, "-m", "relaunch_probe"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert [json.loads(line)["policy"] for line in process.stdout.strip().splitlines()] == ["ACTIVE"]


def test_openmp_is_passive_reads_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert openmp_is_passive()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert not openmp_is_passive()
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert not openmp_is_passive()
