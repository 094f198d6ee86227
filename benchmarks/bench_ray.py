"""Batch inference on Ray Data against in-process `t5cls predict` (issue 14).

Rows, the same random-weight classifier (t5-small shapes, 4 labels) and the same file of AG News
texts (repeated to --texts), each row a fresh `t5cls predict` process, timed end to end (start-up,
model loading, reading, writing):

1. in process, 1 torch thread (``OMP_NUM_THREADS=1``);
2. in process, 2 torch threads;
3. ``--ray``, one actor of 1 CPU (a local cluster started by the command);
4. ``--ray``, two actors of 1 CPU each.

Rows 3 and 4 must give row 1's probabilities (1e-4); the run checks it before printing times.
Ray's overhead is row 3's time over row 1's.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/bench_ray.py [--texts 20000] [--preset t5-small]
    python benchmarks/bench_ray.py --texts 64 --preset tiny        # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

import t5cls
from t5cls.bench import PRESETS, VOCAB_SIZE, default_data_file, default_tokenizer_dir, load_texts, machine_line
from t5cls.convert import save_classifier

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
ROWS = [
    ("in process, 1 thread", ["env:1"]),
    ("in process, 2 threads", ["env:2"]),
    ("--ray, 1 actor x 1 CPU", ["--ray", "--concurrency", "1", "--num-cpus", "1"]),
    ("--ray, 2 actors x 1 CPU", ["--ray", "--concurrency", "2", "--num-cpus", "1"]),
]


def build_model(work: Path, preset: str) -> Path:
    tokenizer_dir = default_tokenizer_dir()
    if tokenizer_dir is None:
        sys.exit("../shared/tokenizers/t5 is absent: this benchmark needs the real T5 vocabulary.")
    torch.manual_seed(0)
    seq2seq = T5ForConditionalGeneration(T5Config(vocab_size=VOCAB_SIZE, decoder_start_token_id=0, **PRESETS[preset])).eval()
    model = t5cls.T5ForClassification.from_t5(seq2seq, labels=LABELS)
    out = work / "model"
    save_classifier(model, out, tokenizer=AutoTokenizer.from_pretrained(str(tokenizer_dir)))
    return out


def run_row(model: Path, texts_file: Path, out: Path, extra: list[str]) -> float:
    env = dict(os.environ)
    threads = next((item.split(":")[1] for item in extra if item.startswith("env:")), None)
    if threads:
        env["OMP_NUM_THREADS"] = threads
    args = [a for a in extra if not a.startswith("env:")]
    command = [sys.executable, "-m", "t5cls.cli", "predict", str(model), str(texts_file), "--output", str(out), *args]
    if "--ray" in args:
        command += ["--output-format", "jsonl"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def read_output(out: Path) -> pd.DataFrame:
    files = sorted(out.glob("*.json*")) if out.is_dir() else [out]
    frame = pd.DataFrame([json.loads(line) for f in files for line in f.read_text().splitlines()])
    if "id" not in frame:  # `t5cls predict` without --ray writes result columns only, in input order
        frame.insert(0, "id", range(len(frame)))
    return frame.sort_values("id").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000, help="texts to classify (AG News, repeated)")
    parser.add_argument("--preset", default="t5-small", choices=sorted(PRESETS), help="model shapes (random weights)")
    parser.add_argument("--data", default=None, help="texts file (default: ../shared/data/agnews/train.tsv)")
    args = parser.parse_args()
    unique, source = load_texts(args.data or default_data_file(), n=min(args.texts, 5000))
    texts = [unique[i % len(unique)].replace("\n", " ") for i in range(args.texts)]
    with tempfile.TemporaryDirectory(prefix="t5cls-bench-ray-") as tmp:
        work = Path(tmp)
        model = build_model(work, args.preset)
        texts_file = work / "texts.jsonl"
        pd.DataFrame({"id": range(len(texts)), "text": texts}).to_json(texts_file, orient="records", lines=True)
        seconds, outputs = [], []
        for i, (name, extra) in enumerate(ROWS):
            out = work / (f"out{i}" if "--ray" in extra else f"out{i}.jsonl")
            seconds.append(run_row(model, texts_file, out, extra))
            outputs.append(read_output(out))
            print(f"  {name}: {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
        columns = [f"proba_{label}" for label in LABELS]
        reference = outputs[0][columns].to_numpy(dtype=np.float64)
        for (name, _), output in zip(ROWS, outputs):
            assert len(output) == len(texts) and output["id"].tolist() == list(range(len(texts))), f"{name}: rows differ"
            assert np.abs(output[columns].to_numpy(dtype=np.float64) - reference).max() < 1e-4, f"{name}: probabilities differ"
    print(f"{machine_line(None)}")
    print(f"{len(texts)} texts from {source} (repeated), {args.preset} shapes, random weights; each row a fresh process, end to end")
    print()
    print("| setting | seconds | texts/s | vs in process, 1 thread |")
    print("|---|---:|---:|---:|")
    for (name, _), s in zip(ROWS, seconds):
        print(f"| {name} | {s:.1f} | {len(texts) / s:.0f} | {seconds[0] / s:.2f}x |")
    print()
    print(f"Ray's overhead, 1 actor x 1 CPU against in process with 1 thread: {100 * (seconds[2] / seconds[0] - 1):+.0f}% ({seconds[2] - seconds[0]:+.1f} s)")


if __name__ == "__main__":
    main()
