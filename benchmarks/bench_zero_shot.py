"""Zero-shot NLI classification: transformers' pipeline vs ZeroShotClassifier, fp32 and int8.

Rows, on AG News texts with 4 and 10 candidate labels, t5-small shapes, random weights saved once
and loaded by every row:

1. ``pipeline("zero-shot-classification", batch_size=8)`` with transformers' T5ForSequenceClassification
   (full encoder + full decoder): what a user can run today;
2. the same pipeline with t5cls' T5ForClassification (encoder + one decoder layer);
3. ``t5cls.ZeroShotClassifier`` with the same T5ForClassification (all pairs length-sorted and
   batched by a token budget);
4. ``t5cls.ZeroShotClassifier(..., quantize="int8")``: the same model through ONNX Runtime int8
   (exported and quantised when the classifier is built, before the clock starts).

Each row runs in its own fresh process, one after the other (the engines' idle threads never share
the cores), tokenisation included, best of ``--repeats``. Rows 2 and 3 must give the same scores
(1e-5) and row 4 is reported by its top-label agreement with row 3; the run checks row 2 against 3
before it prints any time.

    flock /tmp/t5cls-bench.lock python benchmarks/bench_zero_shot.py --texts 32 --repeats 2
    python benchmarks/bench_zero_shot.py --texts 4 --repeats 1 --preset tiny      # smoke run
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t5cls.bench import SHAPE_PRESETS, default_data_file, default_tokenizer_dir, machine_line
from t5cls.inference import DEFAULT_BATCH_TOKENS
from t5cls.inputs import read_table
from t5cls.zero_shot import DEFAULT_HYPOTHESIS_TEMPLATE

NLI_LABELS = ["entailment", "neutral", "contradiction"]
CANDIDATES = [
    "world", "sports", "business", "science and technology", "politics",
    "health", "entertainment", "education", "travel", "weather",
]  # fmt: skip
LABEL_COUNTS = (4, 10)
PIPELINE_BATCH = 8
TOLERANCE = 1e-5
ROWS = {
    "pipeline-transformers": "1. pipeline(batch_size=8) + transformers T5ForSequenceClassification",
    "pipeline-t5cls": "2. pipeline(batch_size=8) + t5cls T5ForClassification",
    "zero-shot": "3. ZeroShotClassifier + t5cls T5ForClassification",
    "zero-shot-int8": '4. ZeroShotClassifier(quantize="int8") + t5cls T5ForClassification',
}


def save_models(work: Path, preset: str, tokenizer: Any) -> None:
    """One set of random weights: transformers' classifier and ours share the encoder and decoder."""
    from transformers import T5Config, T5ForConditionalGeneration, T5ForSequenceClassification

    import t5cls

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **SHAPE_PRESETS[preset],
        id2label=dict(enumerate(NLI_LABELS)), label2id={label: i for i, label in enumerate(NLI_LABELS)},
    )  # fmt: skip
    seq2seq = T5ForConditionalGeneration(config).eval()
    theirs = T5ForSequenceClassification(config).eval()
    theirs.transformer.load_state_dict(seq2seq.state_dict(), strict=False)  # only the heads differ (random either way)
    ours = t5cls.T5ForClassification.from_t5(seq2seq, labels=NLI_LABELS).eval()
    for name, model in (("theirs", theirs), ("ours", ours)):
        model.save_pretrained(work / name)
        tokenizer.save_pretrained(work / name)


def score_table(results: list[dict]) -> np.ndarray:
    """(texts, labels) scores in a fixed label order."""
    return np.array([[dict(zip(r["labels"], r["scores"]))[label] for label in sorted(r["labels"])] for r in results])


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: load the row's model from disk, warm up, time each label count."""
    torch.set_num_threads(spec["threads"])
    from transformers import AutoTokenizer, T5ForSequenceClassification, pipeline
    from transformers.utils import logging as hf_logging

    import t5cls

    hf_logging.disable_progress_bar()
    work, row, texts = Path(spec["work"]), spec["row"], spec["texts"]
    if row.startswith("pipeline"):
        directory = work / ("theirs" if row == "pipeline-transformers" else "ours")
        loader = T5ForSequenceClassification if row == "pipeline-transformers" else t5cls.T5ForClassification
        pipe = pipeline(
            "zero-shot-classification", model=loader.from_pretrained(directory).eval(),
            tokenizer=AutoTokenizer.from_pretrained(directory), batch_size=PIPELINE_BATCH, device="cpu",
        )  # fmt: skip

        def run(xs: list[str], labels: list[str]) -> list[dict]:
            return pipe(xs, candidate_labels=labels, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE)
    else:
        quantize = "int8" if row == "zero-shot-int8" else None
        zero_shot = t5cls.ZeroShotClassifier(str(work / "ours"), device="cpu", quantize=quantize, batch_tokens=spec["batch_tokens"])

        def run(xs: list[str], labels: list[str]) -> list[dict]:
            return zero_shot(xs, labels, hypothesis_template=DEFAULT_HYPOTHESIS_TEMPLATE)

    run(texts[:2], CANDIDATES[:2])  # first-call allocations and lazy imports stay out of the timings
    out: dict[str, Any] = {}
    for n_labels in LABEL_COUNTS:
        times = []
        for _ in range(spec["repeats"]):
            start = time.perf_counter()
            results = run(texts, CANDIDATES[:n_labels])
            times.append(time.perf_counter() - start)
        out[n_labels] = {"seconds": min(times), "all_seconds": times, "scores": score_table(results)}
    return out


def _in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_worker, spec).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=32, help="AG News texts to classify (default 32)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per row and label count; the best is kept")
    parser.add_argument("--preset", choices=sorted(SHAPE_PRESETS), default="t5-small", help="model shapes (tiny: smoke runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS, help="ZeroShotClassifier token budget")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows to run (default all: {','.join(ROWS)})")
    args = parser.parse_args(argv)
    rows = [row.strip() for row in args.rows.split(",")]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown or "zero-shot" not in rows:
        sys.exit(f"--rows {args.rows!r}: takes rows among {', '.join(ROWS)}, zero-shot (the reference) included.")
    threads = args.threads or torch.get_num_threads()
    data, tokenizer_dir = default_data_file(), default_tokenizer_dir()
    if data is None or tokenizer_dir is None:
        sys.exit("This benchmark needs ../shared (AG News texts and the T5 vocabulary).")

    from transformers import AutoTokenizer

    texts = read_table(data, columns=["text"])["text"].astype(str).tolist()[: args.texts]
    with tempfile.TemporaryDirectory(prefix="t5cls-bench-zero-shot-") as work:
        save_models(Path(work), args.preset, AutoTokenizer.from_pretrained(str(tokenizer_dir)))
        base = {"work": work, "texts": texts, "threads": threads, "repeats": args.repeats, "batch_tokens": args.batch_tokens}
        results = {}
        for row in rows:
            results[row] = _in_subprocess({**base, "row": row})
            print(f"{row}: " + ", ".join(f"{n} labels {results[row][n]['all_seconds']}" for n in LABEL_COUNTS), file=sys.stderr, flush=True)

    reference = results["zero-shot"]
    notes = []
    for n_labels in LABEL_COUNTS:
        if "pipeline-t5cls" in results:
            gap = float(np.abs(results["pipeline-t5cls"][n_labels]["scores"] - reference[n_labels]["scores"]).max())
            if not gap <= TOLERANCE:
                sys.exit(f"{n_labels} labels: ZeroShotClassifier differs from the pipeline on the same model by {gap:.2e} (> {TOLERANCE}).")
            notes.append(f"{n_labels} labels: rows 2 and 3 differ by at most {gap:.1e}")
        if "zero-shot-int8" in results:
            int8 = results["zero-shot-int8"][n_labels]["scores"]
            agree = float((int8.argmax(1) == reference[n_labels]["scores"].argmax(1)).mean())
            delta = float(np.abs(int8 - reference[n_labels]["scores"]).max())
            notes.append(f"{n_labels} labels: row 4 picks row 3's top label for {agree:.1%} of texts (largest score change {delta:.3f})")

    first = rows[0]
    lines = [
        f"{len(texts)} AG News texts, {args.preset} shapes (random weights), template {DEFAULT_HYPOTHESIS_TEMPLATE!r}; "
        f"best of {args.repeats}, each row in its own process; speedups against row {first!r}",
        f"machine: {machine_line(threads)}",
        "",
        "| | 4 labels: s | pairs/s | speedup | 10 labels: s | pairs/s | speedup |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = []
        for n_labels in LABEL_COUNTS:
            seconds = results[row][n_labels]["seconds"]
            cells += [f"{seconds:.2f}", f"{len(texts) * n_labels / seconds:.0f}", f"{results[first][n_labels]['seconds'] / seconds:.2f}x"]
        lines.append(f"| {ROWS[row]} | " + " | ".join(cells) + " |")
    lines += ["", *notes]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
