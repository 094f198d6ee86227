"""Training benchmarks (issue 6): real data from scratch, and training cost against transformers.

1. **Real data, from scratch.** SST-2 (train: a sample of ``../shared/data/sst2/train.tsv``; test:
   ``test.tsv``, the GLUE validation set papers report) and AG News (``../shared/data/agnews``,
   a stratified 80/20 split of the 10k sample). A tokenizer is trained on the training texts and a
   small T5ForClassification (random init, mean pooling) is trained with ``t5cls.train`` end to end; a TF-IDF +
   logistic-regression baseline is fit on the same training texts. Both are scored on the same
   test texts. This measures the pipeline, not T5: pretrained checkpoints do far better.
2. **Training step cost.** t5-small shapes (d_model 512, d_ff 2048, 6 + 6 layers, 8 heads), random
   weights, batch 16 x 128 tokens, AdamW, fp32: optimizer steps per second and peak memory of
   t5cls' T5ForClassification (encoder + 1 query decoder layer) against transformers'
   T5ForSequenceClassification (encoder + full decoder). Each model runs in its own process so
   peak resident memory is its own; memory = peak RSS minus the RSS before the model was built.

Usage:
    flock /tmp/t5cls-bench.lock python benchmarks/bench_training.py [--sst2-train 20000] [--steps 10]
    python benchmarks/bench_training.py --only cost     # part 2 only (about a minute)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
# The demo's from-scratch shape: about 1.5 minutes per dataset on one CPU core. Mean pooling
# (num_decoder_layers=0): from scratch on a few thousand texts it learns faster than a query layer
# (SST-2, 4,000 texts, 2 epochs, d_model 256 x 4 layers: 0.68 vs 0.61).
SCRATCH = dict(d_model=128, d_kv=32, d_ff=512, num_layers=2, num_heads=4, num_decoder_layers=0)
T5_SMALL = dict(
    vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu",
    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# 1. Real data from scratch, with a TF-IDF + logistic regression baseline
# --------------------------------------------------------------------------------------------


def load_sst2(n_train: int, seed: int):
    from t5cls.inputs import read_table

    train = read_table(SHARED / "data" / "sst2" / "train.tsv", columns=["sentence", "label"])
    test = read_table(SHARED / "data" / "sst2" / "test.tsv", columns=["sentence", "label"])
    train = train.sample(n=min(n_train, len(train)), random_state=seed).rename(columns={"sentence": "text"})
    test = test.rename(columns={"sentence": "text"})
    label = {0: "negative", 1: "positive"}
    return train.assign(label=train["label"].map(label)), test.assign(label=test["label"].map(label))


def load_agnews(seed: int):
    from sklearn.model_selection import train_test_split

    from t5cls.inputs import read_table

    frame = read_table(SHARED / "data" / "agnews" / "train.tsv", columns=["text", "label"])
    return train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=seed)


def tfidf_baseline(train, test) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2), LogisticRegression(C=4.0, max_iter=2000)
    )
    model.fit(train["text"], train["label"])
    return float((model.predict(test["text"]) == test["label"]).mean())


def scratch_run(name: str, train, test, *, epochs: float, vocab: int, max_length: int, seed: int, out: Path) -> dict:
    import t5cls
    from t5cls.demo import scratch_model, train_tokenizer
    from t5cls.labels import label_names

    labels = label_names([str(v) for v in train["label"]], problem_type="single_label_classification")
    tokenizer = train_tokenizer(train["text"].tolist(), vocab_size=vocab)
    model = scratch_model(tokenizer, labels, seed=seed, shape=SCRATCH)
    started = time.perf_counter()
    result = t5cls.train(
        model, train, eval=test, tokenizer=tokenizer, output_dir=out / name, epochs=epochs, batch_size=32,
        optimizer="adamw", learning_rate=1e-3, warmup_ratio=0.06, weight_decay=0.01, max_length=max_length,
        seed=seed, show_progress_bar=False,
    )
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    baseline = tfidf_baseline(train, test)
    return {
        "dataset": name, "train": len(train), "test": len(test), "epochs": epochs, "steps": result.global_step,
        "t5cls_accuracy": result.metrics["accuracy"], "t5cls_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tfidf_lr_accuracy": baseline, "tfidf_lr_seconds": time.perf_counter() - started,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# 2. Training step cost: T5ForClassification vs transformers' T5ForSequenceClassification
# --------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def cost_worker(kind: str, batch: int, length: int, steps: int, threads: int) -> dict:
    """One model, in this process: steps per second and peak memory over ``steps`` AdamW steps."""
    import torch
    from transformers import T5Config, T5ForSequenceClassification

    import t5cls

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as t5cls.train does on CPU; denormals otherwise stall random-init backward passes
    torch.manual_seed(0)
    ids = torch.randint(3, T5_SMALL["vocab_size"], (batch, length))
    ids[:, -1] = 1  # every row ends with </s>: transformers' model pools there
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (batch,))
    before = _rss_mb()
    config = T5Config(**T5_SMALL, num_labels=2)
    if kind == "t5cls":
        source = t5cls.T5ClassificationConfig(**T5_SMALL, num_labels=2, num_decoder_layers=1)
        model = t5cls.T5ForClassification(source)
    else:
        model = T5ForSequenceClassification(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up: allocator, optimizer state
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": kind, "parameters": sum(p.numel() for p in model.parameters()),
        "steps_per_second": steps / seconds, "peak_mb": peak_mb - before,
    }  # fmt: skip


def cost_compare(batch: int, length: int, steps: int, threads: int) -> list[dict]:
    rows = []
    for kind in ("transformers", "t5cls"):
        done = subprocess.run(
            [sys.executable, __file__, "--_worker", kind, "--batch", str(batch), "--length", str(length),
             "--steps", str(steps), "--threads", str(threads)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["data", "cost"], default=None, help="run one part")
    parser.add_argument("--sst2-train", type=int, default=20000, help="SST-2 training rows sampled")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._worker:
        print(json.dumps(cost_worker(args._worker, args.batch, args.length, args.steps, args.threads)))
        return

    import torch

    torch.set_num_threads(args.threads)
    from t5cls.bench import machine_line

    print(f"machine: {machine_line()} (at the start)")
    if args.only in (None, "data"):
        if not (SHARED / "data").is_dir():
            sys.exit("../shared/data is absent: part 1 needs SST-2 and AG News.")
        with tempfile.TemporaryDirectory() as tmp:
            sst2_train, sst2_test = load_sst2(args.sst2_train, args.seed)
            ag_train, ag_test = load_agnews(args.seed)
            rows = [
                scratch_run("SST-2", sst2_train, sst2_test, epochs=args.epochs, vocab=8000, max_length=64, seed=args.seed, out=Path(tmp)),
                scratch_run("AG News", ag_train, ag_test, epochs=args.epochs, vocab=8000, max_length=128, seed=args.seed, out=Path(tmp)),
            ]  # fmt: skip
        print("\n| data | train / test | T5ForClassification from scratch | TF-IDF + logistic regression |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['dataset']} | {r['train']:,} / {r['test']:,} | {r['t5cls_accuracy']:.3f} "
                  f"({r['parameters'] / 1e6:.1f}M params, {r['steps']} steps, {r['t5cls_seconds']:.0f} s) "
                  f"| {r['tfidf_lr_accuracy']:.3f} ({r['tfidf_lr_seconds']:.0f} s) |")  # fmt: skip
    if args.only in (None, "cost"):
        rows = cost_compare(args.batch, args.length, args.steps, args.threads)
        theirs, ours = rows
        print(f"\nTraining step, t5-small shapes, batch {args.batch} x {args.length} tokens, AdamW, fp32, {args.threads} threads:")
        print("| model | parameters | steps/s | peak memory (MB) |")
        print("|---|---|---|---|")
        for r in rows:
            name = "transformers T5ForSequenceClassification" if r["model"] == "transformers" else "t5cls T5ForClassification"
            print(f"| {name} | {r['parameters'] / 1e6:.1f}M | {r['steps_per_second']:.3f} | {r['peak_mb']:.0f} |")
        print(f"| ratio (t5cls / transformers) | {ours['parameters'] / theirs['parameters']:.2f}x | "
              f"{ours['steps_per_second'] / theirs['steps_per_second']:.2f}x | {ours['peak_mb'] / theirs['peak_mb']:.2f}x |")  # fmt: skip
    print(f"\nmachine at the end: {machine_line()}")


if __name__ == "__main__":
    main()
