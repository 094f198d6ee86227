"""t5cls against transformers on one device and dtype: classifier, label scoring, zero-shot, reranking.

What ``benchmarks/gpu.sh`` runs on CUDA, once in bf16 and once in fp32. Same random weights
(t5-small shapes by default) and AG News texts for both sides of each row; each row prints texts
(or pairs) per second for the transformers way and the t5cls way, and checks that both give the
same answers before it prints a time (top labels; fp32 log-likelihoods to 1e-3, bf16 loosely):

- classifier: transformers ``T5ForSequenceClassification`` (batches of 32, input order) vs
  ``t5cls.Classifier`` (length-sorted token-budget batches);
- scorer: per-pair scoring (lm-evaluation-harness: one full forward per (text, label)) vs
  ``LabelScorer`` (encoder once per text, labels as a prefix tree), 4 and 20 labels;
- zero-shot: ``pipeline("zero-shot-classification")`` over transformers' T5ForSequenceClassification
  vs ``ZeroShotClassifier``, 4 labels;
- rerank: per-pair monoT5 scoring (one forward per document) vs ``t5cls.Reranker``.

    python benchmarks/bench_gpu.py --device cuda --dtype bfloat16 --out gpu.md
    python benchmarks/bench_gpu.py --device cpu --dtype float32 --dry-run   # tiny shapes, seconds
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration, T5ForSequenceClassification, pipeline

import t5cls
from t5cls.bench import AG_NEWS_LABELS, SHAPE_PRESETS, TWENTY_LABELS, VOCAB_SIZE, machine_line
from t5cls.bench import SCORING_TEMPLATE as TEMPLATE
from t5cls.inputs import iter_texts
from t5cls.rerank import DEFAULT_RERANK_TEMPLATE

SHARED = Path(__file__).resolve().parents[2] / "shared"
NLI_LABELS = ["world news", "sports", "business", "science and technology"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int):
    fn()  # warm-up: kernels, allocator, cuDNN/cuBLAS heuristics
    best, result = float("inf"), None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def per_pair(model, tokenizer, prompts: list[str], labels: list[str], device: torch.device, batch_size: int = 64) -> np.ndarray:
    """``(n, C)`` log P(label | prompt), one full forward pass per (prompt, label) pair, batches in input order."""
    targets = tokenizer(labels)["input_ids"]  # label tokens + </s>
    pairs = [(i, j) for i in range(len(prompts)) for j in range(len(labels))]
    out = np.zeros((len(prompts), len(labels)))
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            rows = pairs[start : start + batch_size]
            inputs = tokenizer([prompts[i] for i, _ in rows], padding=True, return_tensors="pt").to(device)
            longest = max(len(targets[j]) for _, j in rows)
            label_ids = torch.full((len(rows), longest), -100, device=device)
            for r, (_, j) in enumerate(rows):
                label_ids[r, : len(targets[j])] = torch.tensor(targets[j], device=device)
            logits = model(**inputs, labels=label_ids).logits.float().log_softmax(-1)
            gathered = logits.gather(2, label_ids.clamp(min=0)[:, :, None])[:, :, 0] * (label_ids >= 0)
            for r, (i, j) in enumerate(rows):
                out[i, j] = gathered[r].sum().item()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--size", default="small", choices=["small", "base"])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row, best kept")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes and 8 texts: checks the script, not the speed")
    parser.add_argument("--out", type=Path, help="append the table to this file")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    preset = SHAPE_PRESETS["tiny"] if args.dry_run else SHAPE_PRESETS[f"t5-{args.size}"]
    n = 8 if args.dry_run else args.texts
    repeats = 1 if args.dry_run else args.repeats
    data, tokenizer_dir = SHARED / "data" / "agnews" / "train.tsv", SHARED / "tokenizers" / "t5"
    if not data.is_file() or not tokenizer_dir.is_dir():
        sys.exit(f"AG News ({data}) and the T5 tokenizer ({tokenizer_dir}) are needed; this benchmark needs ../shared.")
    texts = list(itertools.islice(iter_texts(data), n))
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = T5Config(**preset, vocab_size=VOCAB_SIZE, decoder_start_token_id=0)
    exact = dtype == torch.float32
    rows: list[str] = []

    def add(task: str, theirs: str, ours: str, units: int, their_s: float, our_s: float, check: str) -> None:
        rows.append(f"| {task} | {theirs} | {units / their_s:.1f} | {ours} | {units / our_s:.1f} | {their_s / our_s:.2f}x | {check} |")

    # --- classifier ---
    torch.manual_seed(0)
    hf = T5ForSequenceClassification(T5Config(**preset, vocab_size=VOCAB_SIZE, num_labels=4, decoder_start_token_id=0)).to(device, dtype).eval()
    ours_model = t5cls.T5ForClassification(t5cls.T5ClassificationConfig(**preset, vocab_size=VOCAB_SIZE, num_labels=4))
    ours_model = ours_model.to(device, dtype).eval()
    clf = t5cls.Classifier(ours_model, tokenizer, device=device, dtype=dtype, show_progress_bar=False)

    def hf_classify():
        out = []
        with torch.inference_mode():
            for start in range(0, n, 32):
                inputs = tokenizer(texts[start : start + 32], padding=True, truncation=True, return_tensors="pt").to(device)
                out.append(hf(**inputs).logits.float().cpu().numpy())
        return np.concatenate(out)

    their_s, _ = timed(hf_classify, device, repeats)
    our_s, _ = timed(lambda: clf.predict_proba(texts), device, repeats)
    add("classifier", "T5ForSequenceClassification, batch 32", "Classifier", n, their_s, our_s, "different heads: speed only")

    # --- label scoring ---
    torch.manual_seed(0)
    seq2seq = T5ForConditionalGeneration(config).to(device, dtype).eval()
    prompts = [TEMPLATE.format(text=t) for t in texts]
    for labels in (AG_NEWS_LABELS, TWENTY_LABELS):
        scorer = t5cls.LabelScorer((seq2seq, tokenizer), labels=labels, template=TEMPLATE, device=device, show_progress_bar=False)
        their_s, theirs = timed(lambda: per_pair(seq2seq, tokenizer, prompts, labels, device), device, repeats)
        our_s, ours = timed(lambda: scorer.log_likelihoods(texts), device, repeats)
        diff = float(np.abs(theirs - ours).max())
        agree = float((theirs.argmax(1) == ours.argmax(1)).mean())
        if exact and diff > 1e-3:
            sys.exit(f"scorer C={len(labels)}: LabelScorer differs from per-pair scoring by {diff:.2e}; no times.")
        add(f"scorer C={len(labels)}", "per-pair forward, batch 64", "LabelScorer", n, their_s, our_s,
            f"max diff {diff:.1e}, top label {agree:.0%}")  # fmt: skip

    # --- zero-shot ---
    zs_n = max(4, n // 4)
    names = {0: "entailment", 1: "neutral", 2: "contradiction"}
    nli_config = T5Config(**preset, vocab_size=VOCAB_SIZE, decoder_start_token_id=0, id2label=names, label2id={v: k for k, v in names.items()})
    torch.manual_seed(0)
    nli = T5ForSequenceClassification(nli_config).to(device, dtype).eval()
    pipe = pipeline("zero-shot-classification", model=nli, tokenizer=tokenizer, device=device)
    zs = t5cls.ZeroShotClassifier(nli, tokenizer, device=device, dtype=dtype)
    their_s, theirs = timed(lambda: pipe(texts[:zs_n], candidate_labels=NLI_LABELS, batch_size=32), device, repeats)
    our_s, ours = timed(lambda: zs(texts[:zs_n], NLI_LABELS), device, repeats)
    agree = float(np.mean([a["labels"][0] == b["labels"][0] for a, b in zip(theirs, ours)]))
    add("zero-shot, 4 labels", "pipeline(T5ForSequenceClassification)", "ZeroShotClassifier", zs_n, their_s, our_s, f"top label {agree:.0%}")

    # --- rerank ---
    query, documents = "what happened in the markets", texts
    reranker = t5cls.Reranker((seq2seq, tokenizer), device=device, show_progress_bar=False)
    mono = [DEFAULT_RERANK_TEMPLATE.format(query=query, document=d) for d in documents]
    their_s, _ = timed(lambda: per_pair(seq2seq, tokenizer, mono, ["true"], device), device, repeats)
    our_s, _ = timed(lambda: reranker.rank(query, documents), device, repeats)
    add("rerank", "per-pair monoT5 forward, batch 64", "Reranker", n, their_s, our_s, "speed only")

    header = [
        f"t5-{'tiny (dry run)' if args.dry_run else args.size} shapes, random weights, {n} AG News texts, {args.device} {args.dtype}; best of {repeats}",
        f"machine: {machine_line()}",
        "",
        "| task | transformers | per s | t5cls | per s | t5cls x | check |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    table = "\n".join(header + rows)
    print(table, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
