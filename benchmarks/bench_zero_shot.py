"""Zero-shot NLI classification: transformers' pipeline vs ZeroShotClassifier (issue 5).

Rows, on AG News texts with 4 and 10 candidate labels, t5-small shapes, random weights:

1. ``pipeline("zero-shot-classification", batch_size=8)`` with transformers' T5ForSequenceClassification
   (full encoder + full decoder): what a user can run today;
2. the same pipeline with t5cls' T5ForClassification (encoder + one decoder layer);
3. ``t5cls.ZeroShotClassifier`` with the same T5ForClassification (all pairs length-sorted and
   batched by a token budget). Rows 2 and 3 must give the same scores; the run checks it.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/bench_zero_shot.py [--texts 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration, T5ForSequenceClassification, pipeline

import t5cls
from t5cls.inference import DEFAULT_BATCH_TOKENS
from t5cls.inputs import read_table
from t5cls.zero_shot import DEFAULT_HYPOTHESIS_TEMPLATE

SHARED = Path(__file__).resolve().parents[2] / "shared"
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}
CANDIDATES = [
    "world", "sports", "business", "science and technology", "politics",
    "health", "entertainment", "education", "travel", "weather",
]  # fmt: skip
# t5-small: d_model 512, d_ff 2048, 6 + 6 layers, 8 heads, relu, tied embeddings.
T5_SMALL = dict(
    vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu",
    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
)  # fmt: skip


def build_models() -> tuple[T5ForSequenceClassification, t5cls.T5ForClassification]:
    torch.manual_seed(0)
    config = T5Config(**T5_SMALL, id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()})
    seq2seq = T5ForConditionalGeneration(config).eval()
    theirs = T5ForSequenceClassification(config).eval()
    # Same encoder and decoder weights as ours; only the head differs (random either way).
    theirs.transformer.load_state_dict(seq2seq.state_dict(), strict=False)
    ours = t5cls.T5ForClassification.from_t5(seq2seq, labels=list(NLI_LABELS.values())).eval()
    return theirs, ours


def score_table(results: list[dict]) -> np.ndarray:
    """(texts, labels) scores in a fixed label order."""
    return np.array([[dict(zip(r["labels"], r["scores"]))[label] for label in sorted(r["labels"])] for r in results])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=40, help="AG News texts to classify (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, rows interleaved; the best is kept")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS, help="ZeroShotClassifier token budget")
    args = parser.parse_args()

    texts = read_table(SHARED / "data" / "agnews" / "train.tsv", columns=["text"])["text"].astype(str).tolist()[: args.texts]
    tokenizer = AutoTokenizer.from_pretrained(str(SHARED / "tokenizers" / "t5"))
    theirs, ours = build_models()
    pipe_theirs, pipe_ours = (
        pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, batch_size=8, device="cpu")
        for model in (theirs, ours)
    )
    zero_shot = t5cls.ZeroShotClassifier(ours, tokenizer, device="cpu", batch_tokens=args.batch_tokens)
    rows: dict[str, Callable[[list[str], list[str]], list[dict]]] = {
        "1. pipeline(batch_size=8) + transformers T5ForSequenceClassification": lambda xs, labels: pipe_theirs(
            xs, candidate_labels=labels, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE
        ),
        "2. pipeline(batch_size=8) + t5cls T5ForClassification": lambda xs, labels: pipe_ours(
            xs, candidate_labels=labels, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE
        ),
        "3. ZeroShotClassifier + t5cls T5ForClassification": lambda xs, labels: zero_shot(
            xs, labels, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE
        ),
    }
    names = list(rows)
    for run in rows.values():  # warm-up: first-call allocations and lazy imports are not measured
        run(texts[:2], CANDIDATES[:2])

    # The machine is shared: rows are interleaved and each keeps its best round (as timeit does).
    seconds: dict[tuple[str, int], float] = {}
    worst_gap = 0.0
    for round_ in range(args.repeats):
        for n_labels in (4, 10):
            labels = CANDIDATES[:n_labels]
            outputs = {}
            for name, run in rows.items():
                start = time.perf_counter()
                outputs[name] = run(texts, labels)
                elapsed = time.perf_counter() - start
                seconds[name, n_labels] = min(elapsed, seconds.get((name, n_labels), float("inf")))
                print(f"round {round_ + 1}, {n_labels:>2} labels: {elapsed:7.2f} s  {name}", file=sys.stderr, flush=True)
            if [r["labels"][0] for r in outputs[names[1]]] != [r["labels"][0] for r in outputs[names[2]]]:
                print("rows 2 and 3 disagree on a top label", file=sys.stderr)
                return 1
            worst_gap = max(worst_gap, float(np.abs(score_table(outputs[names[1]]) - score_table(outputs[names[2]])).max()))

    print(
        f"\n{len(texts)} AG News texts, t5-small shapes (random weights), fp32, template {DEFAULT_HYPOTHESIS_TEMPLATE!r}; "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, {platform.machine()}, {date.today()}; "
        f"best of {args.repeats} interleaved rounds.\n"
    )
    print("| | 4 labels: s | pairs/s | vs row 1 | 10 labels: s | pairs/s | vs row 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        cells = []
        for n_labels in (4, 10):
            s = seconds[name, n_labels]
            cells += [f"{s:.1f}", f"{len(texts) * n_labels / s:.0f}", f"{seconds[names[0], n_labels] / s:.1f}x"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nRows 2 and 3: same top label for every text; largest score difference {worst_gap:.1e}.")
    for n_labels in (4, 10):
        vs_row1 = seconds[names[0], n_labels] / seconds[names[2], n_labels]
        vs_row2 = seconds[names[1], n_labels] / seconds[names[2], n_labels]
        print(f"{n_labels} labels: row 3 is {vs_row1:.1f}x row 1 (target >= 3x) and {vs_row2:.1f}x row 2 (target >= 1x).")
    if worst_gap > 1e-5:
        print("rows 2 and 3 scores differ by more than 1e-5", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
