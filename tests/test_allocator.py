"""glibc allocator tuning: checked in fresh subprocesses, since it is a setting of the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")

# Frees and re-allocates a 64 MiB buffer: above glibc's default mmap threshold, so untuned each
# allocation maps fresh pages and faults every one of them in (16,384 faults of 4 KiB).
# Tuned, glibc's heap settled after two allocations in most of 30 probe runs and after three in
# about one run in five; after that every buffer was reused. Warm-up covers the settling and the
# measured loop still allows one buffer's worth of faults, so the test checks reuse in the steady
# state, not glibc's exact heap layout.
BUFFER_FAULTS = 16_384
MEASURED_ALLOCATIONS = 8
FAULT_PROBE = """
import json, resource, sys, torch
from t5cls.allocator import tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tune" else False
again = tune_malloc() if sys.argv[1] == "tune" else False
for _ in range(4):
    torch.empty(16 << 20).fill_(1.0)  # first touches fault either way, and the heap settles
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(int(sys.argv[2])):
    torch.empty(16 << 20).fill_(1.0)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"tuned": tuned, "again": again, "faults": faults}))
"""


def _probe(mode: str, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", FAULT_PROBE, mode, str(MEASURED_ALLOCATIONS)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@linux_only
def test_tuned_malloc_reuses_freed_buffers_instead_of_faulting_in_new_pages():
    untuned = _probe("plain")
    tuned = _probe("tune")
    assert tuned["tuned"] and tuned["again"], "tune_malloc() reports success, and again on a second call"
    assert untuned["faults"] > MEASURED_ALLOCATIONS * BUFFER_FAULTS * 0.9, untuned
    assert tuned["faults"] < BUFFER_FAULTS + 1_000, tuned


@linux_only
def test_malloc_tuning_can_be_turned_off():
    result = _probe("tune", T5CLS_MALLOC_TUNING="0")
    assert result["tuned"] is False
    assert result["faults"] > MEASURED_ALLOCATIONS * BUFFER_FAULTS * 0.9
