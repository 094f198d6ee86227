"""Reranker against the way people run monoT5 with transformers today.

The plain way (pygaggle's MonoT5, and most notebooks): the (query, document) prompts
``Query: q Document: d Relevant:`` in input order, batches of 32 padded to their longest,
``T5ForConditionalGeneration(input_ids, attention_mask, decoder_input_ids=<pad>)`` for one decoder
step, softmax over the ``▁true`` / ``▁false`` logits. The Reranker computes the same P(true), with
all pairs of the call sorted by length and packed to a token budget, the encoder on real tokens
only (t5cls.packed) and one decoder position per pair (LabelScorer, ``mode="first_token"``).

Same random weights (t5-small shapes, original t5: ReLU, tied embeddings) saved once and loaded by
both; queries x documents AG News texts as documents and the first words of other AG News texts as
queries; each way in its own fresh process, one after the other in the same run, tokenisation
included, best of ``--repeats``. The script checks that both give the same scores (1e-5) before
it prints any time.

    flock /tmp/t5cls-bench.lock python benchmarks/bench_rerank.py --repeats 2     # 100 queries x 20 documents
    python benchmarks/bench_rerank.py --queries 3 --documents 4 --preset tiny     # smoke run
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

from t5cls.bench import RERANK_TEMPLATE, SHAPE_PRESETS, default_data_file, default_tokenizer_dir, machine_line, model_flops, rerank_inputs

TEMPLATE = RERANK_TEMPLATE
BATCH_SIZE = 32  # the plain way's batch
TOLERANCE = 1e-5
WAYS = {
    "plain": "transformers T5ForConditionalGeneration, one decoder step, batches of 32 in input order",
    "reranker": "t5cls Reranker (length-sorted token-budget batches, packed encoder, one decoder position)",
}


def plain_scores(model: Any, tokenizer: Any, pairs: list[tuple[str, str]]) -> np.ndarray:
    """P(true) per pair, the way a transformers user writes it."""
    true_id, false_id = (tokenizer(word, add_special_tokens=False).input_ids[0] for word in ("true", "false"))
    out = []
    with torch.inference_mode():
        for start in range(0, len(pairs), BATCH_SIZE):
            prompts = [TEMPLATE.format(query=q, document=d) for q, d in pairs[start : start + BATCH_SIZE]]
            inputs = tokenizer(prompts, padding=True, truncation=True, max_length=512, return_tensors="pt")
            start_ids = torch.full((len(prompts), 1), model.config.decoder_start_token_id)
            logits = model(**inputs, decoder_input_ids=start_ids).logits[:, 0, [true_id, false_id]]  # (batch, 2)
            out.append(torch.softmax(logits.double(), dim=1)[:, 0].numpy())
    return np.concatenate(out)


def work_ratio(config: Any, lengths: list[int]) -> dict[str, float]:
    """Matmul FLOPs of the two ways on prompts of ``lengths`` tokens (``t5cls.bench.model_flops`` counts encoders).

    The plain way runs the encoder over every batch of ``BATCH_SIZE`` padded to its longest prompt, and its
    decoder's cross-attention projects keys and values for each of those positions in every layer; the
    Reranker runs the encoder on real tokens and reads the states as they are. Both decode one position
    per pair, vocabulary projection included, which is left out (about 1% of either count at t5-small
    shapes). Their ratio is the speedup that the work alone allows an engine running at the same FLOP
    rate: it bounds what packing can give on a CPU that is matmul-bound.
    """
    real = [min(n, 512) for n in lengths]  # both ways truncate at 512
    padded = [max(real[i : i + BATCH_SIZE]) for i in range(0, len(real), BATCH_SIZE) for _ in real[i : i + BATCH_SIZE]]
    inner = config.num_heads * config.d_kv
    cross_kv = config.num_decoder_layers * 2 * 2 * config.d_model * inner  # per encoder position
    plain = model_flops(config, padded, kind="encoder", num_labels=0) + cross_kv * sum(padded)
    return {"plain": plain, "reranker": model_flops(config, real, kind="encoder", num_labels=0), "plain_positions": sum(padded), "real_tokens": sum(real)}


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: load the weights from disk, warm up, time ``repeats`` runs."""
    torch.set_num_threads(spec["threads"])
    from transformers import AutoTokenizer, T5ForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from t5cls import Reranker

    hf_logging.disable_progress_bar()
    queries, lists = spec["queries"], spec["lists"]
    pairs = [(q, d) for q, docs in zip(queries, lists) for d in docs]
    if spec["way"] == "plain":
        tokenizer = AutoTokenizer.from_pretrained(spec["model"])
        model = T5ForConditionalGeneration.from_pretrained(spec["model"]).eval()

        def run() -> np.ndarray:
            return plain_scores(model, tokenizer, pairs)
    else:
        reranker = Reranker(spec["model"], device="cpu", show_progress_bar=False, batch_tokens=spec["batch_tokens"])

        def run() -> np.ndarray:
            # The API a user calls: every query's ranking; scores put back in pair order for the check.
            rankings = reranker.rank(queries, lists)
            scores = [np.zeros(len(docs)) for docs in lists]
            for ranked, row in zip(rankings, scores):
                for result in ranked:
                    row[result["index"]] = result["score"]
            return np.concatenate(scores)

    if spec["warmup"]:  # one-time allocations and kernel choices stay out of the timings
        if spec["way"] == "plain":
            plain_scores(model, tokenizer, pairs[: spec["warmup"]])
        else:
            reranker.score(pairs[: spec["warmup"]])
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        scores = run()
        times.append(time.perf_counter() - start)
    return {"seconds": min(times), "all_seconds": times, "scores": scores}


def _in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_worker, spec).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--documents", type=int, default=20, help="documents per query")
    parser.add_argument("--preset", choices=sorted(SHAPE_PRESETS), default="t5-small", help="model shapes (tiny: smoke runs)")
    parser.add_argument("--repeats", type=int, default=1, help="time each way this many times, keep the best")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="the Reranker's token budget (default: its own)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    threads = args.threads or torch.get_num_threads()
    data, tokenizer_dir = default_data_file(), default_tokenizer_dir()
    if data is None or tokenizer_dir is None:
        sys.exit("This benchmark needs ../shared (AG News texts and the T5 vocabulary).")

    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from t5cls.inference import DEFAULT_BATCH_TOKENS

    queries, lists = rerank_inputs(args.queries, args.documents, data)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    with tempfile.TemporaryDirectory(prefix="t5cls-bench-rerank-") as work:
        torch.manual_seed(0)
        config = T5Config(vocab_size=32128, tie_word_embeddings=True, decoder_start_token_id=0, **SHAPE_PRESETS[args.preset])
        T5ForConditionalGeneration(config).eval().save_pretrained(work)
        tokenizer.save_pretrained(work)
        base = {
            "model": work,
            "queries": queries,
            "lists": lists,
            "threads": threads,
            "repeats": args.repeats,
            "warmup": min(BATCH_SIZE, len(queries) * args.documents),
            "batch_tokens": args.batch_tokens or DEFAULT_BATCH_TOKENS,
        }
        results = {way: _in_subprocess({**base, "way": way}) for way in WAYS}

    plain, fast = results["plain"], results["reranker"]
    diff = float(np.abs(plain["scores"] - fast["scores"]).max())
    if not diff <= TOLERANCE:
        sys.exit(f"Reranker scores differ from the plain computation by {diff:.2e} (> {TOLERANCE}): the Reranker is wrong.")
    pairs = len(queries) * args.documents
    lengths = [len(ids) for ids in tokenizer([TEMPLATE.format(query=q, document=d) for q, docs in zip(queries, lists) for d in docs]).input_ids]
    flops = work_ratio(config, lengths)
    lines = [
        f"{args.preset} shapes ({', '.join(f'{k} {v}' for k, v in SHAPE_PRESETS[args.preset].items())}), random weights, fp32; "
        f"{len(queries)} queries x {args.documents} AG News documents = {pairs} pairs (prompt mean {np.mean(lengths):.1f} tokens, "
        f"max {max(lengths)}), template {TEMPLATE!r}; Reranker batch_tokens={base['batch_tokens']}; best of {args.repeats}, "
        "each way in its own process",
        f"machine: {machine_line(threads)}",
        f"work: the plain way's encoder runs {flops['plain_positions']:,} positions (batches padded to their longest) and its decoder "
        f"projects cross-attention keys and values for each, the Reranker's encoder {flops['real_tokens']:,} real tokens: "
        f"{flops['plain'] / 1e9:,.1f} against {flops['reranker'] / 1e9:,.1f} GFLOP of matmuls, {flops['plain'] / flops['reranker']:.2f}x",
        "",
        "| way | seconds | pairs/s | speedup | max abs diff of P(true) |",
        "|---|---:|---:|---:|---:|",
    ]
    for way, description in WAYS.items():
        seconds = results[way]["seconds"]
        speedup = plain["seconds"] / seconds
        lines.append(f"| {description} | {seconds:.2f} | {pairs / seconds:.1f} | {speedup:.2f}x | {'' if way == 'plain' else f'{diff:.1e}'} |")
    lines.append("")
    lines.append("every timed run: " + "; ".join(f"{way} " + ", ".join(f"{t:.2f}" for t in results[way]["all_seconds"]) + " s" for way in WAYS))
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
