"""How often LabelScorer int8 picks the label fp32 picks: on random t5-small weights and on a trained model.

Random weights give near-uniform label distributions on AG News, where a tiny nudge flips the top
label, so their agreement understates what a trained model shows. This script reports both:

1. t5-small shapes, random weights (what ``bench_peers.py`` times), AG News, 4 labels;
2. a small T5 (t5-small widths, 2 layers) trained for ``--steps`` steps in this run to answer
   AG News topics (text -> label text), scored on AG News rows it did not train on.

For each: top-label agreement of int8 with fp32, the largest change of a log-likelihood, and (for
the trained model) the accuracy of both.

    nice python benchmarks/int8_agreement.py                # minutes on 2 quiet cores (the training dominates)
    python benchmarks/int8_agreement.py --texts 16 --steps 5   # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from t5cls import LabelScorer
from t5cls.bench import SHAPE_PRESETS, machine_line
from t5cls.inputs import read_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LABELS = ["World", "Sports", "Business", "Sci/Tech"]
TEMPLATE = "topic: {text}"


def agreement(model, tokenizer, texts: list[str]) -> tuple[float, float, np.ndarray, np.ndarray]:
    kwargs = dict(labels=LABELS, template=TEMPLATE, show_progress_bar=False)
    fp32 = LabelScorer((model, tokenizer), **kwargs).log_likelihoods(texts)
    int8 = LabelScorer((model, tokenizer), quantize="int8", **kwargs).log_likelihoods(texts)
    return float((fp32.argmax(1) == int8.argmax(1)).mean()), float(np.abs(fp32 - int8).max()), fp32, int8


def train(tokenizer, frame: pd.DataFrame, *, steps: int, seed: int) -> T5ForConditionalGeneration:
    """A 2-layer T5 with t5-small widths, taught AG News topics as text for ``steps`` AdamW steps."""
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(T5Config(**{**SHAPE_PRESETS["t5-small"], "num_layers": 2, "dropout_rate": 0.0, "decoder_start_token_id": 0}))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    model.train()
    for step in range(steps):
        rows = frame.iloc[rng.choice(len(frame), 32, replace=False)]
        inputs = tokenizer([TEMPLATE.format(text=t) for t in rows["text"]], max_length=64, truncation=True, padding=True, return_tensors="pt")
        targets = tokenizer(list(rows["label"]), padding=True, return_tensors="pt").input_ids
        targets[targets == tokenizer.pad_token_id] = -100
        loss = model(**inputs, labels=targets).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step}: loss {loss.item():.3f}", file=sys.stderr, flush=True)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=400, help="held-out AG News texts scored")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the small model")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = SHARED / "data" / "agnews" / "train.tsv"
    if not path.is_file():
        sys.exit(f"AG News not found at {path}; this benchmark needs ../shared.")
    tokenizer = AutoTokenizer.from_pretrained(str(SHARED / "tokenizers" / "t5"))
    frame = read_table(path)
    held_out, training = frame.iloc[-args.texts :], frame.iloc[: -args.texts]
    texts = list(held_out["text"])

    started = time.perf_counter()
    torch.manual_seed(0)
    random_model = T5ForConditionalGeneration(T5Config(**SHAPE_PRESETS["t5-small"])).eval()
    rows = [("t5-small shapes, random weights", *agreement(random_model, tokenizer, texts), None)]
    trained = train(tokenizer, training, steps=args.steps, seed=0)
    agree, delta, fp32, int8 = agreement(trained, tokenizer, texts)
    gold = np.array([LABELS.index(label) for label in held_out["label"]])
    accuracy = (float((fp32.argmax(1) == gold).mean()), float((int8.argmax(1) == gold).mean()))
    rows.append((f"2-layer t5-small widths, trained {args.steps} steps", agree, delta, fp32, int8, accuracy))

    print(f"LabelScorer int8 vs fp32, AG News ({args.texts} held-out texts), labels {LABELS}, template {TEMPLATE!r}")
    print(f"machine: {machine_line()}; {time.perf_counter() - started:.0f} s")
    print()
    print("| model | top-label agreement | max abs log-likelihood change | accuracy fp32 / int8 |")
    print("|---|---:|---:|---|")
    for name, agree, delta, *_, accuracy in rows:
        acc = "" if accuracy is None else f"{accuracy[0]:.1%} / {accuracy[1]:.1%}"
        print(f"| {name} | {agree:.1%} | {delta:.3f} | {acc} |")


if __name__ == "__main__":
    main()
