"""Where `Classifier`'s fp32 speed comes from: each optimisation turned off in turn (README, Speed).

A t5-small-shaped classifier with random weights classifies the first 512 AG News texts (real
T5 vocabulary), with 2 threads, in a fresh process per setting (the allocator setting belongs to
the process):

1. the first release's path: padded encoder (``use_packed_encoder = False``), glibc defaults
   (``T5CLS_MALLOC_TUNING=0``);
2. + the allocator setting (``t5cls.allocator``);
3. + the packed encoder (``t5cls.packed``), batches still cut as if padding cost a full token;
4. + batches cut with padding at ``PACKED_PADDING_COST`` (the default ``Classifier``).

Then a torch.profiler pass of setting 4: the share of its time in matmuls and in attention.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/classifier_ablation.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SETTINGS = {
    1: ("first release: padded encoder, glibc defaults", {"T5CLS_MALLOC_TUNING": "0"}, False, None),
    2: ("+ allocator setting", {}, False, None),
    3: ("+ packed encoder (padding priced as a real token)", {}, True, 1.0),
    4: ("+ padding priced at PACKED_PADDING_COST (default Classifier)", {}, True, None),
}


def build(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    import t5cls
    from t5cls.bench import SHAPE_PRESETS
    from t5cls.convert import save_classifier

    torch.manual_seed(0)
    source = T5ForConditionalGeneration(T5Config(vocab_size=32128, **SHAPE_PRESETS["t5-small"])).eval()
    model = t5cls.T5ForClassification.from_t5(source, labels=["a", "b", "c", "d"])
    save_classifier(model, out, tokenizer=AutoTokenizer.from_pretrained(str(SHARED / "tokenizers" / "t5")))


def run_setting(model_dir: str, packed: bool, padding_cost: float | None) -> dict:
    """In this (fresh) process: best of 3 passes over 512 AG News texts, and minor page faults."""
    import resource

    import torch

    torch.set_num_threads(2)
    import t5cls.inference
    from t5cls.bench import load_texts

    if padding_cost is not None:
        t5cls.inference.PACKED_PADDING_COST = padding_cost
    texts, _ = load_texts(None, n=512)
    clf = t5cls.Classifier(model_dir, device="cpu", show_progress_bar=False)
    clf.model.use_packed_encoder = packed
    clf.logits(texts)  # warm-up
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        start = time.perf_counter()
        clf.logits(texts)
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 3
    return {"seq_per_s": len(texts) / min(times), "faults_per_pass": faults}


def profile_shares(model_dir: str) -> dict:
    """Share of the default Classifier's CPU time (one pass, torch.profiler) in matmuls and attention."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(2)
    import t5cls
    from t5cls.bench import load_texts

    texts, _ = load_texts(None, n=512)
    clf = t5cls.Classifier(model_dir, device="cpu", show_progress_bar=False)
    clf.logits(texts)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        clf.logits(texts)
    self_us = {event.key: event.self_cpu_time_total for event in prof.key_averages()}
    total = sum(self_us.values())
    matmul = sum(t for key, t in self_us.items() if key in ("aten::mm", "aten::addmm", "aten::bmm"))
    attention = sum(t for key, t in self_us.items() if "scaled_dot_product" in key)
    return {"matmul": matmul / total, "attention": attention / total}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":  # one setting, in its own process
        setting = SETTINGS[int(sys.argv[3])]
        print(json.dumps(run_setting(sys.argv[2], setting[2], setting[3])))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--profile":
        print(json.dumps(profile_shares(sys.argv[2])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(Path(tmp) / "t5-small-classifier")
        build(Path(model_dir))

        def child(*args: str, env: dict | None = None) -> dict:
            result = subprocess.run(
                [sys.executable, __file__, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=True
            )
            return json.loads(result.stdout.strip().splitlines()[-1])

        print("| setting | texts/s | minor page faults per pass |")
        print("|---|---:|---:|")
        for number, (name, env, _, _) in SETTINGS.items():
            r = child("--child", model_dir, str(number), env=env)
            print(f"| {number}. {name} | {r['seq_per_s']:.1f} | {r['faults_per_pass']:,.0f} |", flush=True)
        shares = child("--profile", model_dir)
    print(
        f"\nProfile of setting 4 (torch.profiler, one pass, self CPU time): matmuls {shares['matmul']:.0%}, "
        f"attention {shares['attention']:.0%}, the rest norms, packing and residual adds."
    )
    from t5cls.bench import machine_line  # only now: the settings' own processes have run

    print(f"t5-small shapes, random weights; {machine_line(2)} (at the end)")


if __name__ == "__main__":
    main()
