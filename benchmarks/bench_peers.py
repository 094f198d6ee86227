"""LabelScorer against CTranslate2, the engine people pick for fast T5 on CPU: fp32 and int8, 4 and 20 labels.

One run, same weights and same (text, label) pairs for every row:

- random weights with t5-small shapes (or t5-base), saved as a transformers checkpoint;
- the CTranslate2 model converted in this run from that checkpoint with ctranslate2's own
  transformers converter (``ctranslate2.converters.TransformersConverter``, what
  ``ct2-transformers-converter`` runs); its int8 rows load the same conversion with
  ``compute_type="int8"``;
- AG News texts, template ``topic: {text}``; CTranslate2 scores every (prompt, label) pair with
  ``Translator.score_batch`` (log P(label tokens + </s> | prompt)), LabelScorer runs the encoder
  once per text and all labels as one prefix tree.

Each row runs in its own process (an engine's idle threads must not share the cores with the
next), and every timing includes tokenisation, from texts to the ``(texts, labels)`` array.
CTranslate2 gets its best settings: in short trial processes it tries ``max_batch_size`` /
``batch_type`` combinations, with and without the glibc malloc tuning t5cls uses
(:mod:`t5cls.allocator`), and on CPUs with AVX-512 with its own kernels on AVX-512 as well as on
the ISA it picks itself (``CT2_FORCE_CPU_ISA``: it picks AVX2 on AMD CPUs that have AVX-512, and
AVX-512 measured faster on one), at ``intra_threads`` = the threads of the run
(``inter_threads=1``), and the fastest is timed; the table says which.

Before any time is printed the script checks that the rows compute the same thing: LabelScorer
fp32 equals the brute-force transformers computation (one pair at a time, 1e-4) on the first
texts, CTranslate2 fp32 equals LabelScorer fp32 (1e-3: another engine's fp32 kernels), and the
int8 rows are reported with their top-label agreement with LabelScorer fp32 (CTranslate2's int8
log-likelihoods move by up to about 0.2 on random weights, so 100% is not expected).

    flock /tmp/t5cls-bench.lock python benchmarks/bench_peers.py               # 200 texts, C=4 and C=20
    python benchmarks/bench_peers.py --size tiny --texts 8 --repeats 1         # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
# The same labels and template as t5cls.bench's AG_NEWS_LABELS / TWENTY_LABELS / SCORING_TEMPLATE, spelled out
# here because importing t5cls.bench loads torch and t5cls into the CTranslate2 rows' processes.
TWENTY_LABELS = AG_NEWS_LABELS + [
    "politics", "entertainment", "health care", "science", "technology", "e-commerce", "travel", "education",
    "real estate", "automobiles", "weather forecast", "crime and justice", "religion", "health and medicine",
    "food and drink", "video games",
]  # fmt: skip
LABEL_SETS = {4: AG_NEWS_LABELS, 20: TWENTY_LABELS}
TEMPLATE = "topic: {text}"
BRUTE_FORCE_TOLERANCE = 1e-4
CT2_TOLERANCE = 1e-3
BRUTE_FORCE_TEXTS = 4
# CTranslate2 settings tried (max_batch_size, batch_type); 0 = one batch of everything.
CT2_TRIALS = [(0, "examples"), (32, "examples"), (128, "examples"), (1024, "tokens"), (4096, "tokens")]
TRIAL_TEXTS = 24


# --- rows: each runs in its own process -------------------------------------------------------


def _prompts(texts: list[str]) -> list[str]:
    return [TEMPLATE.format(text=t) for t in texts]


def _t5cls_row(spec: dict) -> dict:
    from t5cls import LabelScorer

    scorer = LabelScorer(
        spec["model_dir"], labels=spec["labels"], template=TEMPLATE, quantize=spec["quantize"], show_progress_bar=False
    )
    texts = spec["texts"]
    scorer.log_likelihoods(texts[:8])  # warm-up: allocator, kernels
    times, result = [], None
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        result = scorer.log_likelihoods(texts)
        times.append(time.perf_counter() - start)
    return {"times": times, "result": result.tolist(), "settings": "batch_tokens=%d" % scorer.batch_tokens}


def _ct2_scorer(spec: dict, tokenizer, translator, labels: list[str]):
    targets = [tokenizer.convert_ids_to_tokens(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in labels]

    def score(texts: list[str], max_batch_size: int, batch_type: str) -> np.ndarray:
        # The source ends with </s> as the tokenizer writes it; CTranslate2 adds the decoder start
        # token to the target and scores its closing </s>, as LabelScorer does.
        sources = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(_prompts(texts))["input_ids"]]
        pairs_source = [source for source in sources for _ in labels]
        pairs_target = [target for _ in sources for target in targets]
        results = translator.score_batch(pairs_source, pairs_target, max_batch_size=max_batch_size, batch_type=batch_type)
        sums = np.array([sum(r.log_probs) for r in results], dtype=np.float64)
        return sums.reshape(len(texts), len(labels))

    return score


def _ct2_row(spec: dict) -> dict:
    import os

    if spec["isa"]:
        os.environ["CT2_FORCE_CPU_ISA"] = spec["isa"]  # read when ctranslate2 loads
    import ctranslate2
    from transformers import AutoTokenizer

    if spec["malloc"]:
        from t5cls.allocator import tune_malloc

        tune_malloc()
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    translator = ctranslate2.Translator(
        spec["ct2_dir"], device="cpu", compute_type=spec["compute_type"], intra_threads=spec["threads"], inter_threads=1
    )
    score = _ct2_scorer(spec, tokenizer, translator, spec["labels"])
    texts = spec["texts"]
    if spec.get("trial"):
        trial = texts[:TRIAL_TEXTS]
        score(trial[:4], 0, "examples")  # warm-up
        timings = {}
        for max_batch_size, batch_type in CT2_TRIALS:
            start = time.perf_counter()
            score(trial, max_batch_size, batch_type)
            timings[f"{max_batch_size}/{batch_type}"] = time.perf_counter() - start
        return {"trials": timings}
    max_batch_size, batch_type = spec["max_batch_size"], spec["batch_type"]
    score(texts[:8], max_batch_size, batch_type)  # warm-up
    times, result = [], None
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        result = score(texts, max_batch_size, batch_type)
        times.append(time.perf_counter() - start)
    malloc = "glibc malloc tuned" if spec["malloc"] else "default malloc"
    isa = f"CT2_FORCE_CPU_ISA={spec['isa']}" if spec["isa"] else "its own ISA choice"
    settings = f"intra_threads={spec['threads']}, max_batch_size={max_batch_size}, batch_type={batch_type}, {malloc}, {isa}"
    return {"times": times, "result": result.tolist(), "settings": settings}


def _worker(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    out = _t5cls_row(spec) if spec["engine"] == "t5cls" else _ct2_row(spec)
    Path(spec["out"]).write_text(json.dumps(out))


def _run(spec: dict, work: Path) -> dict:
    name = f"row-{len(list(work.glob('row-*.json')))}"
    spec_file, out = work / f"{name}.json", work / f"{name}.out.json"
    spec_file.write_text(json.dumps({**spec, "out": str(out)}))
    subprocess.run([sys.executable, __file__, "--worker", str(spec_file)], check=True)
    return json.loads(out.read_text())


# --- the run ---------------------------------------------------------------------------------


def brute_force(model_dir: str, prompts: list[str], labels: list[str]) -> np.ndarray:
    """log P(label | prompt), one pair at a time through T5ForConditionalGeneration(input_ids, labels=...)."""
    import torch
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
    out = np.zeros((len(prompts), len(labels)))
    with torch.inference_mode():
        for i, prompt in enumerate(prompts):
            input_ids = tokenizer(prompt, return_tensors="pt").input_ids
            for j, label in enumerate(labels):
                label_ids = tokenizer(label, return_tensors="pt").input_ids  # label tokens + </s>
                logits = model(input_ids=input_ids, labels=label_ids).logits
                out[i, j] = logits.log_softmax(-1)[0].gather(1, label_ids[0][:, None]).sum().item()
    return out


def build_checkpoint(work: Path, size: str, tokenizer_dir: Path) -> tuple[str, str, float]:
    """Random weights saved as a transformers checkpoint, and its CTranslate2 conversion (seconds it took)."""
    import ctranslate2
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from t5cls.bench import SHAPE_PRESETS, VOCAB_SIZE

    torch.manual_seed(0)
    config = T5Config(**SHAPE_PRESETS[f"t5-{size}" if size != "tiny" else "tiny"], vocab_size=VOCAB_SIZE, decoder_start_token_id=0)
    model_dir, ct2_dir = work / "model", work / "ct2"
    T5ForConditionalGeneration(config).eval().save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(model_dir)
    start = time.perf_counter()
    ctranslate2.converters.TransformersConverter(str(model_dir)).convert(str(ct2_dir), quantization=None)
    return str(model_dir), str(ct2_dir), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "small", "base"], default="small", help="shapes (random weights)")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--labels", default="4,20", help="label counts to run: 4, 20 or both")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row (median and best reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker)

    from t5cls.bench import machine_line
    from t5cls.devices import cpu_flags
    from t5cls.inputs import iter_texts

    data, tokenizer_dir = SHARED / "data" / "agnews" / "train.tsv", SHARED / "tokenizers" / "t5"
    if not data.is_file() or not tokenizer_dir.is_dir():
        sys.exit(f"AG News ({data}) and the T5 tokenizer ({tokenizer_dir}) are needed; this benchmark needs ../shared.")
    import itertools

    texts = list(itertools.islice(iter_texts(data), args.texts))
    counts = [int(c) for c in args.labels.split(",")]
    if any(c not in LABEL_SETS for c in counts):
        sys.exit(f"--labels takes 4 and/or 20, got {args.labels!r}.")

    # None: the ISA CTranslate2 picks itself; AVX512 also where the CPU has it.
    isas = [None, "AVX512"] if "avx512f" in cpu_flags() else [None]
    with tempfile.TemporaryDirectory(prefix="t5cls-peers-") as tmp:
        work = Path(tmp)
        model_dir, ct2_dir, convert_s = build_checkpoint(work, args.size, tokenizer_dir)
        base = dict(model_dir=model_dir, ct2_dir=ct2_dir, texts=texts, threads=args.threads, repeats=args.repeats)
        rows: list[dict] = []
        for count in counts:
            labels = LABEL_SETS[count]
            for quantize in (None, "int8"):
                name = f"LabelScorer {'int8' if quantize else 'fp32'}"
                rows.append({"C": count, "name": name, "precision": quantize or "fp32",
                             **_run({**base, "engine": "t5cls", "labels": labels, "quantize": quantize}, work)})  # fmt: skip
            for compute_type in ("float32", "int8"):
                spec = {**base, "engine": "ct2", "labels": labels, "compute_type": compute_type}
                trials = {
                    (malloc, isa): _run({**spec, "malloc": malloc, "isa": isa, "trial": True}, work)["trials"]
                    for malloc in (True, False)
                    for isa in isas
                }
                (malloc, isa), setting = min(((key, s) for key in trials for s in trials[key]), key=lambda ks: trials[ks[0]][ks[1]])
                max_batch_size, batch_type = setting.split("/")
                precision = "int8" if compute_type == "int8" else "fp32"
                chosen = {"malloc": malloc, "isa": isa, "max_batch_size": int(max_batch_size), "batch_type": batch_type}
                result = _run({**spec, **chosen}, work)
                rows.append({"C": count, "name": f"CTranslate2 {precision}", "precision": precision, **result})

        # --- equality first: no time is printed unless the rows compute the same thing ---
        checks = []
        for count in counts:
            by_name = {row["name"]: np.asarray(row["result"]) for row in rows if row["C"] == count}
            ours = by_name["LabelScorer fp32"]
            k = min(BRUTE_FORCE_TEXTS, len(texts))
            reference = brute_force(model_dir, _prompts(texts[:k]), LABEL_SETS[count])
            error = float(np.abs(ours[:k] - reference).max())
            if error > BRUTE_FORCE_TOLERANCE:
                sys.exit(f"C={count}: LabelScorer fp32 differs from brute force by {error:.2e} > {BRUTE_FORCE_TOLERANCE}; no times.")
            ct2_error = float(np.abs(by_name["CTranslate2 fp32"] - ours).max())
            if ct2_error > CT2_TOLERANCE:
                sys.exit(f"C={count}: CTranslate2 fp32 differs from LabelScorer fp32 by {ct2_error:.2e} > {CT2_TOLERANCE}; no times.")
            checks.append(f"C={count}: LabelScorer fp32 vs brute force (first {k} texts) max diff {error:.1e}; "
                          f"CTranslate2 fp32 vs LabelScorer fp32 max diff {ct2_error:.1e}")  # fmt: skip
            for row in rows:
                if row["C"] == count:
                    got = np.asarray(row["result"])
                    row["agreement"] = float((got.argmax(1) == ours.argmax(1)).mean())
                    row["max_diff"] = float(np.abs(got - ours).max())

    lines = [
        f"t5-{args.size} shapes, random weights; {len(texts)} AG News texts, template {TEMPLATE!r}; "
        f"each row in its own process, {args.repeats} timed passes (median, best), tokenisation included",
        f"machine: {machine_line(args.threads)}",
        f"CTranslate2 {__import__('ctranslate2').__version__}, converted in this run in {convert_s:.1f} s "
        "(TransformersConverter, no quantization; int8 rows: compute_type='int8')",
        *checks,
        "",
        "| labels | engine | median s | best s | x CTranslate2 (same precision) | top-label agreement with LabelScorer fp32 | max abs diff | settings |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        peer = next(r for r in rows if r["C"] == row["C"] and r["name"] == f"CTranslate2 {row['precision']}")
        median = statistics.median(row["times"])
        ratio = statistics.median(peer["times"]) / median
        lines.append(
            f"| C={row['C']} | {row['name']} | {median:.2f} | {min(row['times']):.2f} | {ratio:.2f}x | "
            f"{row['agreement']:.1%} | {row['max_diff']:.3f} | {row['settings']} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
