"""LabelScorer vs the per-pair way of scoring labels with a seq2seq T5.

The per-pair way is lm-evaluation-harness's: one (context, continuation) request per (text, label),
batched by length, each run through the whole model (``model(input_ids, attention_mask,
labels=...)``), then log-softmax and gather -- the encoder runs once per label. LabelScorer runs the
encoder once per text and decodes all labels of a text as one tree. Both get the same random
weights (t5-small or t5-base shapes), the same AG News texts and the same token budget per batch;
the script asserts that both give the same log-likelihoods before it reports any time.

    flock /tmp/t5cls-bench.lock python benchmarks/bench_scoring.py --repeats 2   # t5-small, 200 texts
    python benchmarks/bench_scoring.py --size base --texts 100 --out table.md
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

from t5cls import LabelScorer
from t5cls.batching import batches
from t5cls.bench import AG_NEWS_LABELS, SHAPE_PRESETS, TWENTY_LABELS, machine_line
from t5cls.bench import SCORING_TEMPLATE as TEMPLATE
from t5cls.inputs import iter_texts

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# Original t5 shapes (relu, tied embeddings); random weights: speed does not depend on the values.
SHAPES = {size: SHAPE_PRESETS[f"t5-{size}"] for size in ("small", "base")}
TOLERANCE = 1e-4  # fp32 rounding at these magnitudes is ~1e-5; a wrong computation is off by far more


def per_pair_log_likelihoods(model, tokenizer, prompts: list[str], labels: list[str], *, batch_tokens: int) -> np.ndarray:
    """``(n, C)`` log-likelihoods the lm-evaluation-harness way: one full forward pass per (prompt, label)."""
    contexts = tokenizer(prompts)["input_ids"]
    continuations = tokenizer(labels)["input_ids"]  # label tokens + </s>
    requests = [(i, j) for i in range(len(prompts)) for j in range(len(labels))]
    lengths = [len(contexts[i]) + len(continuations[j]) for i, j in requests]
    out = np.zeros((len(prompts), len(labels)))
    with torch.inference_mode():
        for group in batches(lengths, batch_tokens=batch_tokens):
            rows = [requests[k] for k in group]
            inputs = tokenizer.pad({"input_ids": [contexts[i] for i, _ in rows]}, return_tensors="pt")
            longest = max(len(continuations[j]) for _, j in rows)
            targets = torch.full((len(rows), longest), -100)
            for r, (_, j) in enumerate(rows):
                targets[r, : len(continuations[j])] = torch.tensor(continuations[j])
            logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=targets).logits
            log_probs = torch.log_softmax(logits.float(), dim=-1)  # (rows, longest, vocab)
            gathered = log_probs.gather(2, targets.clamp(min=0)[:, :, None])[:, :, 0]  # (rows, longest)
            sums = (gathered * (targets >= 0)).sum(dim=1)
            for r, (i, j) in enumerate(rows):
                out[i, j] = sums[r].item()
    return out


def read_texts(n: int) -> list[str]:
    path = SHARED / "data" / "agnews" / "train.tsv"
    if not path.is_file():
        sys.exit(f"AG News texts not found at {path}; this benchmark needs ../shared.")
    return list(itertools.islice(iter_texts(path), n))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SHAPES), default="small")
    parser.add_argument("--texts", type=int, default=200, help="AG News texts to score")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per batch, both ways")
    parser.add_argument("--repeats", type=int, default=1, help="time each way this many times, keep the best")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tokenizer = AutoTokenizer.from_pretrained(str(SHARED / "tokenizers" / "t5"))
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128, tie_word_embeddings=True, decoder_start_token_id=0, **SHAPES[args.size]
    )
    model = T5ForConditionalGeneration(config).eval()
    texts = read_texts(args.texts)
    prompts = [TEMPLATE.format(text=text) for text in texts]

    lines = [
        f"t5-{args.size} shapes, random weights, fp32; {len(texts)} AG News texts, template {TEMPLATE!r}, "
        f"batch_tokens={args.batch_tokens}, best of {args.repeats}; {machine_line()} (at the start)",
        "",
        "| labels | label tokens | decoder positions per text (per pair / tree) | per pair (s) | LabelScorer (s) "
        "| speedup | max abs diff |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for labels in (AG_NEWS_LABELS, TWENTY_LABELS):
        scorer = LabelScorer((model, tokenizer), labels=labels, template=TEMPLATE, batch_tokens=args.batch_tokens, show_progress_bar=False)
        # Warm up both paths (allocator, kernels) on a few texts.
        scorer.log_likelihoods(texts[:8])
        per_pair_log_likelihoods(model, tokenizer, prompts[:8], labels, batch_tokens=args.batch_tokens)
        fast_s = slow_s = float("inf")
        for _ in range(args.repeats):  # best of N: other jobs on the machine only ever add time
            fast, seconds = timed(lambda: scorer.log_likelihoods(texts))
            fast_s = min(fast_s, seconds)
            slow, seconds = timed(lambda: per_pair_log_likelihoods(model, tokenizer, prompts, labels, batch_tokens=args.batch_tokens))
            slow_s = min(slow_s, seconds)
        diff = float(np.abs(fast - slow).max())
        if not diff <= TOLERANCE:
            sys.exit(f"log-likelihoods differ by {diff:.2e} (> {TOLERANCE}) for C={len(labels)}: the scorer is wrong.")
        sizes = [len(ids) for ids in tokenizer(labels, add_special_tokens=False)["input_ids"]]
        per_pair_positions = len(labels) * (max(sizes) + 1)  # every label padded to the longest, + </s>
        lines.append(
            f"| C={len(labels)} | {min(sizes)}-{max(sizes)} + </s> | {per_pair_positions} / {scorer.trie.num_nodes} | "
            f"{slow_s:.2f} | {fast_s:.2f} | {slow_s / fast_s:.1f}x | {diff:.1e} |"
        )
        print(lines[-1], flush=True)
    lines.append(f"\nAt the end: {machine_line()}")
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
