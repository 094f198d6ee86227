"""Calibration and long inputs on AG News (issue 16), with the demo's from-scratch shape.

1. Temperature scaling: a small T5 classifier (``t5cls.demo.SCRATCH_SHAPE``, tokenizer learned
   from the training texts) is trained on AG News; ``t5cls.train`` fits its temperature on a
   calibration split; ECE (15 equal-width bins), NLL and Brier score before (T = 1) and after
   scaling are measured on a held-out test split that neither training nor fitting saw.
2. Long inputs: test documents made of 3-6 concatenated test articles of one topic, classified
   at ``max_length=64`` with ``long_inputs="truncate"`` (only the first 64 tokens) and
   ``"chunk"`` (overlapping windows, ``aggregate="mean"`` and ``"max"``).

Usage (the README's numbers):
    flock /tmp/t5cls-bench.lock python benchmarks/bench_calibration.py
Smoke run:
    python benchmarks/bench_calibration.py --train 200 --calibration 100 --test 100 --long 20 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import t5cls
from t5cls.bench import machine_line
from t5cls.demo import SCRATCH_TRAINING, scratch_model, train_tokenizer
from t5cls.inputs import read_table
from t5cls.labels import label_names

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "agnews" / "train.tsv"
MAX_LENGTH = 64


def splits(frame: pd.DataFrame, *, n_train: int, n_calibration: int, n_test: int, seed: int) -> tuple[pd.DataFrame, ...]:
    """Disjoint train / calibration / test rows, shuffled with ``seed``."""
    needed = n_train + n_calibration + n_test
    if needed > len(frame):
        sys.exit(f"{needed} rows asked for, {DATA} has {len(frame)}")
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return (
        shuffled.iloc[:n_train].reset_index(drop=True),
        shuffled.iloc[n_train : n_train + n_calibration].reset_index(drop=True),
        shuffled.iloc[n_train + n_calibration : needed].reset_index(drop=True),
    )


def long_documents(test: pd.DataFrame, *, n: int, seed: int) -> pd.DataFrame:
    """``n`` documents, each 3-6 test articles of one topic joined by a space, labelled with that topic."""
    rng = np.random.default_rng(seed)
    by_label = {label: group["text"].tolist() for label, group in test.groupby("label")}
    labels = sorted(by_label)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        k = min(int(rng.integers(3, 7)), len(by_label[label]))
        picked = rng.choice(len(by_label[label]), size=k, replace=False)
        rows.append({"text": " ".join(by_label[label][j] for j in picked), "label": label, "articles": k})
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=6000, help="training rows (default 6000)")
    parser.add_argument("--calibration", type=int, default=1000, help="rows the temperature is fitted on (default 1000)")
    parser.add_argument("--test", type=int, default=2000, help="held-out rows the measures are taken on (default 2000)")
    parser.add_argument("--long", type=int, default=400, help="concatenated long documents (default 400)")
    parser.add_argument("--epochs", type=float, default=5.0, help="training epochs (default 5)")
    parser.add_argument("--stride", type=int, default=16, help="window overlap in tokens for chunking (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"{DATA} is absent: this benchmark needs ../shared/data/agnews")
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "sequence longer than the maximum": the benchmark's point
    hf_logging.disable_progress_bar()

    frame = read_table(DATA, columns=["text", "label"])
    train, calibration, test = splits(frame, n_train=args.train, n_calibration=args.calibration, n_test=args.test, seed=args.seed)
    labels = label_names(train["label"].tolist(), problem_type="single_label_classification")
    print(machine_line(), flush=True)
    print(f"AG News: {len(train)} train, {len(calibration)} calibration, {len(test)} test rows; labels {labels}", flush=True)

    with tempfile.TemporaryDirectory(prefix="t5cls-bench-calibration-") as tmp:
        out = Path(tmp) / "clf"
        tokenizer = train_tokenizer(train["text"].tolist())
        model = scratch_model(tokenizer, labels, seed=args.seed)
        settings = {**SCRATCH_TRAINING, "epochs": args.epochs}
        started = time.perf_counter()
        t5cls.train(model, train, eval=calibration, output_dir=out, tokenizer=tokenizer, max_length=MAX_LENGTH, seed=args.seed,
                    show_progress_bar=False, **settings)
        seconds = time.perf_counter() - started
        fitted = json.loads((out / "config.json").read_text())["temperature"]
        held_out = t5cls.evaluate(out, test, max_length=MAX_LENGTH)
        calib = held_out["calibration"]

        docs = long_documents(test, n=args.long, seed=args.seed)
        clf = t5cls.Classifier(out, max_length=MAX_LENGTH)
        truth = docs["label"].tolist()
        texts = docs["text"].tolist()
        lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
        accuracy = {}
        windows_mean = None
        for name, options in (("truncate", {}), ("chunk, mean", {"aggregate": "mean"}), ("chunk, max", {"aggregate": "max"})):
            if options:
                proba, windows = clf.predict_proba_windows(texts, long_inputs="chunk", stride=args.stride, **options)
                windows_mean = float(np.mean(windows))
            else:
                proba = clf.predict_proba(texts)
            accuracy[name] = float(np.mean([clf.labels[j] == y for j, y in zip(proba.argmax(axis=1), truth)]))

    results = {
        "machine": machine_line(),
        "shape": "t5cls.demo.SCRATCH_SHAPE (from scratch, learned BPE tokenizer)",
        "rows": {"train": len(train), "calibration": len(calibration), "test": len(test), "long": len(docs)},
        "epochs": args.epochs,
        "train_seconds": round(seconds, 1),
        "temperature": fitted,
        "test_accuracy": held_out["accuracy"],
        "test_before": calib["before"],
        "test_after": calib["after"],
        "long": {"max_length": MAX_LENGTH, "stride": args.stride, "mean_tokens": float(np.mean(lengths)),
                 "mean_windows": windows_mean, "accuracy": accuracy},
    }
    print(f"\ntrained in {seconds:.0f} s; fitted temperature {fitted:.3f}; test accuracy {held_out['accuracy']:.3f}\n")
    print(f"| held-out test ({len(test)} rows) | ECE (15 bins) | NLL | Brier |")
    print("|---|---|---|---|")
    for name in ("before", "after"):
        m = calib[name]
        what = "before scaling (T = 1)" if name == "before" else f"after scaling (T = {fitted:.2f})"
        print(f"| {what} | {m['ece']:.4f} | {m['nll']:.4f} | {m['brier']:.4f} |")
    print(f"\nlong documents: {len(docs)}, 3-6 articles each, {np.mean(lengths):.0f} tokens on average; "
          f"max_length={MAX_LENGTH}, stride={args.stride}, {windows_mean:.1f} windows on average\n")
    print("| long inputs | accuracy |")
    print("|---|---|")
    for name, value in accuracy.items():
        print(f"| {name} | {value:.3f} |")
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
