"""How often int8 picks the label fp32 picks: LabelScorer (torch int8) and ZeroShotClassifier (ONNX Runtime int8).

Random weights are what the speed benchmarks time, but they give near-uniform label distributions
on AG News, where a nudge flips the top label, so their agreement understates what a trained model
shows. For each int8 path this script reports both, on held-out AG News rows:

1. LabelScorer, t5-small shapes, random weights (what ``bench_peers.py`` times), 4 topic labels;
2. LabelScorer, a small seq2seq T5 trained in this run to write the topic
   (``t5cls.train(mode="text2text")``, the demo's from-scratch shape and learned tokenizer);
3. ZeroShotClassifier, t5-small shapes, random weights (what ``bench_zero_shot.py`` times);
4. ZeroShotClassifier, a small T5 classifier trained in this run as an NLI model on AG News pairs
   (text, "This example is {topic}.") -> entailment for the row's topic, contradiction for another,
   then asked zero-shot which of the 4 topics each held-out text is about.

For each: top-label agreement of int8 with fp32, the largest change of a score (log-likelihood
for LabelScorer, probability for zero-shot), and for the trained models the accuracy of both.

    flock /tmp/t5cls-bench.lock python benchmarks/int8_agreement.py        # minutes on 2 quiet cores
    python benchmarks/int8_agreement.py --texts 16 --train 64 --epochs 1    # smoke run
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import t5cls
from t5cls.bench import SHAPE_PRESETS, default_data_file, default_tokenizer_dir, machine_line
from t5cls.demo import SCRATCH_TRAINING, scratch_model, scratch_t5, train_tokenizer
from t5cls.inputs import read_table
from t5cls.zero_shot import DEFAULT_HYPOTHESIS_TEMPLATE

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
TEMPLATE = "topic: {text}"
NLI_LABELS = ["entailment", "neutral", "contradiction"]
MAX_LENGTH = 64


def scorer_agreement(model, tokenizer, texts: list[str], gold: np.ndarray | None) -> dict:
    kwargs = dict(labels=LABELS, template=TEMPLATE, max_length=MAX_LENGTH, show_progress_bar=False)
    fp32 = t5cls.LabelScorer((model, tokenizer), **kwargs).log_likelihoods(texts)
    int8 = t5cls.LabelScorer((model, tokenizer), quantize="int8", **kwargs).log_likelihoods(texts)
    return _row(fp32, int8, gold)


def zero_shot_agreement(model_dir: Path, texts: list[str], gold: np.ndarray | None) -> dict:
    candidates = [label.lower() for label in LABELS]

    def scores(quantize: str | None) -> np.ndarray:
        zero_shot = t5cls.ZeroShotClassifier(str(model_dir), device="cpu", quantize=quantize, max_length=MAX_LENGTH)
        results = zero_shot(texts, candidates, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE)
        return np.array([[dict(zip(r["labels"], r["scores"]))[c] for c in candidates] for r in results])

    return _row(scores(None), scores("int8"), gold)


def _row(fp32: np.ndarray, int8: np.ndarray, gold: np.ndarray | None) -> dict:
    row = {"agreement": float((fp32.argmax(1) == int8.argmax(1)).mean()), "change": float(np.abs(fp32 - int8).max())}
    if gold is not None:
        row["accuracy"] = (float((fp32.argmax(1) == gold).mean()), float((int8.argmax(1) == gold).mean()))
    return row


def nli_pairs(frame: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Two NLI rows per text: its own topic entailed, a random other topic contradicted."""
    rng = np.random.default_rng(seed)
    rows = []
    for text, label in zip(frame["text"], frame["label"]):
        other = rng.choice([c for c in LABELS if c != label])
        for topic, relation in ((label, "entailment"), (other, "contradiction")):
            rows.append({"text": text, "hypothesis": DEFAULT_HYPOTHESIS_TEMPLATE.format(topic.lower()), "label": relation})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=400, help="held-out AG News texts scored (default 400)")
    parser.add_argument("--train", type=int, default=4000, help="AG News rows the small models train on (default 4000)")
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs of the small models (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data, tokenizer_dir = default_data_file(), default_tokenizer_dir()
    if data is None or tokenizer_dir is None:
        sys.exit("This benchmark needs ../shared (AG News texts and the T5 vocabulary).")
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("t5cls").setLevel(logging.ERROR)  # "inputs longer than max_length were truncated": by design here
    frame = read_table(data, columns=["text", "label"]).sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    if args.texts + args.train > len(frame):
        sys.exit(f"{args.texts} held-out + {args.train} training rows asked for; {data} has {len(frame)}.")
    held_out, training = frame.iloc[: args.texts], frame.iloc[args.texts : args.texts + args.train]
    texts = held_out["text"].tolist()
    gold = np.array([LABELS.index(label) for label in held_out["label"]])
    t5_vocab = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    training_settings = {**SCRATCH_TRAINING, "epochs": args.epochs, "seed": args.seed, "max_length": MAX_LENGTH, "show_progress_bar": False}

    started = time.perf_counter()
    rows = {}
    t5_small = T5Config(vocab_size=32128, decoder_start_token_id=0, **SHAPE_PRESETS["t5-small"])
    torch.manual_seed(args.seed)
    random_seq2seq = T5ForConditionalGeneration(t5_small).eval()
    rows["LabelScorer, t5-small shapes, random weights"] = scorer_agreement(random_seq2seq, t5_vocab, texts, None)
    with tempfile.TemporaryDirectory(prefix="t5cls-int8-agreement-") as work:
        work = Path(work)
        tokenizer = train_tokenizer(training["text"].tolist())
        # LabelScorer on a seq2seq trained to write the topic.
        seq2seq = scratch_t5(tokenizer, seed=args.seed, shape={"num_decoder_layers": 2})
        t5cls.train(seq2seq, training, tokenizer=tokenizer, output_dir=work / "seq2seq", mode="text2text", template=TEMPLATE, **training_settings)
        trained = T5ForConditionalGeneration.from_pretrained(work / "seq2seq").eval()
        rows[f"LabelScorer, small seq2seq trained here ({args.train} rows, {args.epochs:g} epochs)"] = scorer_agreement(trained, tokenizer, texts, gold)
        # ZeroShotClassifier on random NLI weights (t5-small shapes) and on an NLI model trained here.
        torch.manual_seed(args.seed)
        t5cls.T5ForClassification.from_t5(T5ForConditionalGeneration(t5_small), labels=NLI_LABELS).save_pretrained(work / "nli-random")
        t5_vocab.save_pretrained(work / "nli-random")
        rows["ZeroShotClassifier, t5-small shapes, random weights"] = zero_shot_agreement(work / "nli-random", texts, None)
        nli, pairs = scratch_model(tokenizer, NLI_LABELS, seed=args.seed), nli_pairs(training, seed=args.seed)
        t5cls.train(nli, pairs, tokenizer=tokenizer, output_dir=work / "nli", text_pair_column="hypothesis", labels=NLI_LABELS, **training_settings)
        name = f"ZeroShotClassifier, small NLI classifier trained here ({len(pairs)} pairs, {args.epochs:g} epochs)"
        rows[name] = zero_shot_agreement(work / "nli", texts, gold)

    print(f"int8 vs fp32 on {args.texts} held-out AG News texts, topics {LABELS}; LabelScorer template {TEMPLATE!r}, "
          f"zero-shot hypothesis {DEFAULT_HYPOTHESIS_TEMPLATE!r}; max_length {MAX_LENGTH}")  # fmt: skip
    print(f"machine: {machine_line(args.threads)}; {time.perf_counter() - started:.0f} s")
    print()
    print("| model | top-label agreement int8 / fp32 | largest score change | accuracy fp32 / int8 |")
    print("|---|---:|---:|---|")
    for name, row in rows.items():
        accuracy = f"{row['accuracy'][0]:.1%} / {row['accuracy'][1]:.1%}" if "accuracy" in row else ""
        print(f"| {name} | {row['agreement']:.1%} | {row['change']:.3f} | {accuracy} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
