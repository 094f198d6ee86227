"""`t5cls predict` streams: peak memory is flat in the number of input lines (issue 3).

Builds a tiny random T5 classifier (real T5 vocabulary when ../shared has it), writes .txt files
of 10k, 100k and 1M short lines (AG News titles-length texts cycled), and runs
``t5cls predict MODEL FILE --output OUT.jsonl`` on each in a subprocess, reporting its peak RSS
(the child's VmHWM) and wall time. A reader that loaded the file, or a writer that kept
the results, would grow by hundreds of MB between the 10k and 1M runs.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/predict_memory.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

import t5cls
from t5cls.bench import default_tokenizer_dir, load_texts
from t5cls.convert import save_classifier


def _run_and_watch(command: list[str]) -> float:
    """Run ``command``; return its peak RSS in MB (its VmHWM, read until it exits)."""
    process = subprocess.Popen(command)
    peak = 0.0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="lines per run (default: 10000,100000,1000000)")
    args = parser.parse_args()
    tokenizer_dir = default_tokenizer_dir()
    if tokenizer_dir is None:
        sys.exit("needs the T5 tokenizer in ../shared/tokenizers/t5")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts, _ = load_texts(None, n=1000)
    short = [" ".join(t.split()[:12]) for t in texts]
    with tempfile.TemporaryDirectory(prefix="t5cls-predict-memory-") as tmp:
        work = Path(tmp)
        torch.manual_seed(0)
        config = T5Config(vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0)
        model = t5cls.T5ForClassification.from_t5(T5ForConditionalGeneration(config), labels=["a", "b", "c"])
        save_classifier(model, work / "model", tokenizer=tokenizer)
        print("| input lines | peak RSS of `t5cls predict` (MB) | wall s | output lines |")
        print("|---:|---:|---:|---:|")
        for size in [int(s) for s in args.sizes.split(",")]:
            source = work / f"in-{size}.txt"
            with source.open("w", encoding="utf-8") as handle:
                for line in itertools.islice(itertools.cycle(short), size):
                    handle.write(line + "\n")
            out = work / f"out-{size}.jsonl"
            start = time.perf_counter()
            peak = _run_and_watch(["t5cls", "predict", str(work / "model"), str(source), "--output", str(out)])
            wall = time.perf_counter() - start
            lines = sum(1 for _ in out.open(encoding="utf-8"))
            print(f"| {size:,} | {peak:.0f} | {wall:.0f} | {lines:,} |", flush=True)
            source.unlink()
            out.unlink()


if __name__ == "__main__":
    main()
