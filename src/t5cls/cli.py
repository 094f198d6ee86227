"""The ``t5cls`` command. Thin: parses arguments, calls the library, prints results.

Each subcommand is a pair of functions, ``_add_NAME(subparsers)`` and ``_run_NAME(args)``,
listed in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .training_config import TrainingConfig

from .errors import USER_ERRORS, InputError


def _add_long_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--long-inputs", default="truncate", choices=["truncate", "chunk"],
                   help="inputs longer than --max-length: cut them (default), or read the text in overlapping windows")
    p.add_argument("--stride", type=int, help="with --long-inputs chunk: tokens of overlap between windows (default: a quarter of the window)")
    p.add_argument("--aggregate", default="mean", choices=["mean", "max"],
                   help="with --long-inputs chunk: average the windows' probabilities (default) or take each label's largest")


def _long_inputs(args: argparse.Namespace) -> dict:
    return {"long_inputs": args.long_inputs, "stride": args.stride, "aggregate": args.aggregate}


def _split_labels(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",")]


# --- Ray (--ray on predict, score, zero-shot, rerank) ------------------------------------------------


def _add_ray_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(
        "Ray Data (--ray)",
        "Run on a Ray cluster (pip install 't5cls[ray]'): INPUT may then be a file, a folder or a glob, read with the "
        "same rules; --output is a folder of shards. Without --ray none of this applies and Ray is not imported.",
    )
    group.add_argument("--ray", action="store_true", help="run on Ray Data: a pool of actors, each loading the model once")
    group.add_argument("--address", help="the cluster: auto, HOST:PORT or ray://HOST:PORT (default: start a local one)")
    group.add_argument("--concurrency", type=int, default=1, help="actors in the pool (default 1)")
    group.add_argument("--num-cpus", type=float, default=1, help="CPUs per actor = its torch threads (default 1)")
    group.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor (default 0; a fraction shares one)")
    group.add_argument("--output-format", choices=["parquet", "jsonl"], default="parquet", help="shard format (default parquet)")


def _run_on_ray(
    args: argparse.Namespace, task: str, *, columns: Sequence[str | None] = (), text_columns: Sequence[str | None] = (), **options
) -> int:
    """Read INPUT, run ``task`` on a Ray cluster and write shards to --output; the Ray half of a command."""
    from .errors import InputError

    if not args.output:
        raise InputError("--ray writes shards to a folder: give --output OUT_DIR.")
    try:
        from . import ray as t5cls_ray
    except ImportError as exc:
        raise InputError(f"--ray: {exc}") from None

    t5cls_ray.check_shard_dir(args.output)
    files = t5cls_ray.input_files(args.input)
    started = t5cls_ray.connect(args.address, logging_level=logging.INFO if args.verbose else logging.WARNING)
    try:
        if task == "rerank":  # read as `t5cls rerank` reads: a query and its documents per row
            names = {name: options[name] for name in ("query_column", "documents_column")}
            dataset = t5cls_ray.read_query_documents(files, document_column=options.pop("document_column"), **names)
        else:
            dataset = t5cls_ray.read_inputs(files, columns=columns, text_columns=text_columns)
        result = t5cls_ray.predict(
            dataset, args.model, task=task, concurrency=args.concurrency, num_cpus=args.num_cpus, num_gpus=args.num_gpus, **options
        )
        t5cls_ray.write_outputs(result, args.output, output_format=args.output_format)
    finally:
        if started:
            t5cls_ray.ray.shutdown()
    print(f"wrote {task} results for {len(files)} input file(s) to {args.output} ({args.output_format} shards)", file=sys.stderr)
    return 0


# --- convert -------------------------------------------------------------------------------


def _add_base(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--base",
        help="when MODEL is a PEFT adapter: its base model directory (default: the adapter's base_model_name_or_path); "
        "the adapter is merged into it",
    )


def _add_convert(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="Turn a T5-family checkpoint into a T5ForClassification directory.",
        description="Keep the encoder and the first K decoder layers of SRC, add learned queries and a "
        "classifier head, and save the result (safetensors + tokenizer) to OUT.",
    )
    p.add_argument("src", help="checkpoint directory or hub id (t5, t5-v1_1, flan-t5, mT5, byT5, UL2)")
    p.add_argument("out", help="output directory (must not exist or be empty, unless --overwrite)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--labels", help="comma-separated label names, e.g. 'negative,positive'")
    group.add_argument("--num-labels", type=int, help="number of labels when they have no names")
    p.add_argument(
        "--problem-type",
        default="single_label_classification",
        choices=["single_label_classification", "multi_label_classification", "regression"],
    )
    p.add_argument("--decoder-layers", type=int, default=1, help="decoder layers to keep (0 = mean pooling)")
    p.add_argument("--query-init", default="decoder_start", choices=["decoder_start", "labels"])
    p.add_argument("--dtype", default=None, help="e.g. float32 or bfloat16 (defaults to the checkpoint's)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import check_output_dir, from_t5, load_source_tokenizer, save_classifier

    check_output_dir(args.out, overwrite=args.overwrite)  # before the conversion, not after it
    tokenizer = load_source_tokenizer(args.src)
    model = from_t5(
        args.src,
        labels=_split_labels(args.labels),
        num_labels=args.num_labels,
        problem_type=args.problem_type,
        num_decoder_layers=args.decoder_layers,
        query_init=args.query_init,
        tokenizer=tokenizer,
        dtype=args.dtype,
    )
    save_classifier(model, args.out, tokenizer=tokenizer, overwrite=args.overwrite)
    stats = model.conversion_stats
    print(f"kept {stats['kept']:,} pretrained parameters, dropped {stats['dropped']:,}, added {stats['new']:,} new")
    print(f"labels: {[model.config.id2label[i] for i in range(model.config.num_labels)]} ({model.config.problem_type})")
    print(f"saved to {args.out}")
    return 0


# --- zero-shot -----------------------------------------------------------------------------


def _add_zero_shot(subparsers: argparse._SubParsersAction) -> None:
    from .inference import DEFAULT_BATCH_TOKENS
    from .zero_shot import PRESETS

    p = subparsers.add_parser(
        "zero-shot",
        help="Zero-shot classification with an NLI model (premise = text, hypothesis = template(label)).",
        description="Score every text of INPUT against the candidate labels with an NLI classifier (a t5cls "
        "classifier, the published T5ForClassification format, or any transformers NLI model) and write one "
        "JSON line per text (or a CSV/TSV table when --output ends in .csv/.tsv).",
    )
    p.add_argument("model", help="NLI model directory or hub id (its labels must include an entailment label), or a PEFT adapter over one")
    _add_base(p)
    p.add_argument("input", help="a .txt (one text a line), .csv, .tsv, .jsonl or .parquet file")
    p.add_argument("--labels", help="comma-separated candidate labels, e.g. 'sports,politics,science'")
    p.add_argument("--template", help="hypothesis template with {} for the label (default 'This example is {}.')")
    p.add_argument("--preset", choices=sorted(PRESETS), help="template (and labels) for a common use")
    p.add_argument("--multi-label", action="store_true", help="score each label on its own")
    p.add_argument("--threshold", type=float, help="label is null when the best score is under it, e.g. 0.8")
    p.add_argument("--text-column", default="text", help="column holding the texts (default 'text')")
    p.add_argument("--passage-column", default="passage", help="passage column for --preset boolean-qa")
    p.add_argument("--question-column", default="question", help="question column for --preset boolean-qa")
    p.add_argument("--output", help="write results here (.jsonl, or .csv/.tsv) instead of printing JSON lines")
    p.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS, help="most padded tokens per batch")
    p.add_argument("--max-length", type=int, help="most tokens per (premise, hypothesis) pair (default: the tokenizer's)")
    _add_long_inputs(p)
    p.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--labels-column", help="with --ray: a column holding each row's labels (a list, or 'a, b, c')")
    _add_ray_options(p)


def _run_zero_shot(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import pandas as pd

    from .errors import check_number
    from .inputs import iter_texts
    from .zero_shot import PRESETS, ZeroShotClassifier, check_hypothesis_template, parse_candidate_labels

    # Argument mistakes fail before the model loads.
    check_number("--threshold", args.threshold, minimum=0.0, maximum=1.0, none_ok=True)
    if args.template is not None:
        check_hypothesis_template(args.template)
    if args.labels is not None:
        parse_candidate_labels(args.labels)
    preset = PRESETS.get(args.preset) if args.preset else None
    if args.ray:
        pairs = preset is not None and preset.premise_template is not None
        return _run_on_ray(
            args,
            "zero-shot",
            text_columns=[args.passage_column, args.question_column] if pairs else [args.text_column],
            columns=[args.labels_column],
            text_column=args.text_column,
            candidate_labels=args.labels,
            labels_column=args.labels_column,
            passage_column=args.passage_column,
            question_column=args.question_column,
            hypothesis_template=args.template,
            multi_label=args.multi_label,
            threshold=args.threshold,
            preset=args.preset,
            batch_tokens=args.batch_tokens,
            max_length=args.max_length,
            device=args.device,
            **_long_inputs(args),
        )
    if args.labels_column:
        from .errors import InputError

        raise InputError("--labels-column works with --ray; without it give the labels with --labels.")
    if preset is not None and preset.premise_template is not None:
        texts = list(iter_texts(args.input, text_column=args.passage_column, pair_column=args.question_column))
    else:
        texts = list(iter_texts(args.input, text_column=args.text_column))
    from .windows import check_aggregate, check_long_inputs

    check_long_inputs(args.long_inputs)
    check_aggregate(args.aggregate)
    classifier = ZeroShotClassifier(args.model, device=args.device, batch_tokens=args.batch_tokens, max_length=args.max_length, base=args.base)
    results = classifier(
        texts,
        args.labels,
        hypothesis_template=args.template,
        multi_label=args.multi_label,
        threshold=args.threshold,
        preset=args.preset,
        **_long_inputs(args),
    )
    flat = bool(args.output) and Path(args.output).suffix.lower() in (".csv", ".tsv")
    rows = [{"sequence": r["sequence"]} | record for r, record in zip(results, classifier.records(results, flat=flat))]
    if flat:
        sep = "\t" if args.output.lower().endswith(".tsv") else ","
        pd.DataFrame(rows).to_csv(args.output, sep=sep, index=False)
    else:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        if not args.output:
            sys.stdout.write(lines)
            return 0
        Path(args.output).write_text(lines, encoding="utf-8")
    print(f"wrote {len(results)} results to {args.output}")
    return 0


# --- serve ---------------------------------------------------------------------------------


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="Serve a model over HTTP (FastAPI + uvicorn) with micro-batching.",
        description="Serve MODEL: POST /v1/classify (a T5 classifier), /v1/zero-shot (an NLI classifier), "
        "/v1/score (a seq2seq T5); the formats other clients send: POST / (Hugging Face Inference API), "
        "/predict and /rerank (text-embeddings-inference), /v1/rerank and /v2/rerank (Cohere; a seq2seq T5 "
        "reranks monoT5-style); GET / (a page to try the model), /health, /v1/model, /metrics (Prometheus); "
        "docs at /docs, the contract at /openapi.json. Concurrent requests are merged into token-budget "
        "batches. Stop with Ctrl-C or SIGTERM: in-flight requests complete first.",
    )
    p.add_argument("model", help="a classifier directory (t5cls convert), a seq2seq T5 directory, or a PEFT adapter over either")
    _add_base(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)")
    p.add_argument("--port", type=int, default=8000, help="default: 8000")
    # Defaults live in t5cls.server (None = its default), so building the parser imports no server code.
    p.add_argument("--max-batch-tokens", type=int, help="padded tokens per model call (default: as t5cls.Classifier)")
    p.add_argument("--max-wait-ms", type=float, help="how long a request waits for others to join its batch (default 5)")
    p.add_argument("--max-batch-size", type=int, help="most inputs merged into one call; 1 turns batching off (default: no cap)")
    p.add_argument("--max-inputs", type=int, help="most inputs per request (default 64)")
    p.add_argument("--max-chars", type=int, help="most characters per input (default 10000)")
    p.add_argument("--max-documents", type=int, help="most documents per rerank request (default 1000)")
    p.add_argument("--max-body-bytes", type=int, help="largest request body (default 1048576)")
    p.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", help="e.g. float32 or bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--threads", type=int, help="torch threads for the model (default: torch's, i.e. the CPU cores)")
    p.add_argument("--limit-concurrency", type=int, help="answer 503 above this many connections/requests in flight (default 1024)")
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument(
        "--int8", action="store_true", default=None,
        help="int8 on CPU for every route: classify/zero-shot through ONNX Runtime (a torch directory is exported at start-up), "
        "score through torch int8 linear layers",
    )  # fmt: skip


def _run_serve(args: argparse.Namespace) -> int:
    from .server import serve

    names = (
        "device", "dtype", "max_batch_tokens", "max_wait_ms", "max_batch_size", "max_inputs", "max_chars",
        "max_body_bytes", "limit_concurrency", "threads", "max_documents", "int8", "base",
    )  # fmt: skip
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        serve(args.model, host=args.host, port=args.port, access_log=not args.no_access_log, **options)
    except RuntimeError as exc:  # did not start (load failure, port in use); uvicorn logged the cause
        print(f"t5cls serve: error: {exc}", file=sys.stderr)
        return 1
    return 0


# --- predict -------------------------------------------------------------------------------


def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="Classify texts from a file or stdin with a T5 classifier.",
        description="Classify every input of INPUT (.txt: one text a line; .csv, .tsv, .jsonl: a text column; "
        "'-': stdin, one text a line) and write one row per input, in input order, to --output (.jsonl or .csv; "
        "default: JSON lines on stdout). Streams: memory stays flat however long the input.",
    )
    p.add_argument(
        "model", help="a classifier directory (t5cls convert / train), an ONNX export (t5cls export), or a PEFT adapter over a classifier"
    )
    _add_base(p)
    p.add_argument("input", help="a .txt, .csv, .tsv or .jsonl file, or '-' for stdin")
    p.add_argument("--output", "-o", help="a .jsonl or .csv file (default: JSON lines on stdout)")
    p.add_argument("--text-column", default="text", help="text column of .csv/.tsv/.jsonl input (default: text)")
    p.add_argument("--pair-column", help="second-text column for sentence pairs (e.g. a hypothesis)")
    p.add_argument("--backend", choices=["torch", "onnx"], help="default: torch (onnx with --int8)")
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantisation through ONNX Runtime (CPU)")
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label models: probability to predict a label, for every label (default: the model's saved thresholds, else 0.5)")
    p.add_argument("--min-score", type=float, default=None,
                   help="single-label models: write an empty label when the top probability is under this, e.g. 0.8")
    p.add_argument("--batch-tokens", type=int, help="padded tokens per batch")
    p.add_argument("--max-length", type=int, help="most tokens per model input (default: the tokenizer's)")
    _add_long_inputs(p)
    p.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    _add_ray_options(p)


def _run_predict(args: argparse.Namespace) -> int:
    if args.ray:
        options = {name: getattr(args, name) for name in ("batch_tokens", "max_length", "backend", "device") if getattr(args, name) is not None}
        return _run_on_ray(
            args,
            "classify",
            text_columns=[args.text_column, args.pair_column],
            text_column=args.text_column,
            pair_column=args.pair_column,
            threshold=args.threshold,
            quantize="int8" if args.int8 else None,
            min_score=args.min_score,
            **_long_inputs(args),
            **options,
        )
    import numpy as np

    from .inference import Classifier
    from .inputs import iter_texts, record_writer
    from .temperature import check_threshold

    check_threshold(args.threshold)  # before the model loads
    texts = iter_texts(args.input, text_column=args.text_column, pair_column=args.pair_column)
    options = {"batch_tokens": args.batch_tokens} if args.batch_tokens is not None else {}
    clf = Classifier(
        args.model,
        backend=args.backend,
        quantize="int8" if args.int8 else None,
        device=args.device,
        max_length=args.max_length,
        min_score=args.min_score,
        **_long_inputs(args),
        base=args.base,
        **options,
    )
    clf.labels_from_proba(np.zeros((0, len(clf.labels))), threshold=args.threshold)  # a bad threshold fails before reading
    count = 0
    with record_writer(args.output) as write:
        for proba, windows in clf.stream(texts, return_windows=True):
            write(clf.records(proba, threshold=args.threshold, windows=windows))
            count += len(proba)
    if args.output and args.output != "-":
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0


# --- export --------------------------------------------------------------------------------


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="Export a T5 classifier to ONNX (optionally int8) for ONNX Runtime.",
        description="Write OUT/model.onnx (fp32, dynamic batch and sequence axes), with --int8 also "
        "OUT/model_int8.onnx (dynamic int8 quantisation), plus config.json and the tokenizer. "
        "Use it with Classifier(OUT, backend='onnx') or `t5cls predict OUT ... --backend onnx [--int8]`.",
    )
    p.add_argument("model", help="a classifier directory, or a PEFT adapter over one (merged before export)")
    _add_base(p)
    p.add_argument("out", help="output directory (must not exist or be empty, unless --overwrite)")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default: onnx)")
    p.add_argument("--int8", action="store_true", help="also write an int8 dynamically quantised model")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    out = export_onnx(args.model, args.out, int8=args.int8, opset=args.opset, overwrite=args.overwrite, base=args.base)
    files = sorted(p.name for p in out.iterdir() if p.suffix == ".onnx")
    print(f"exported {', '.join(files)} to {out}")
    return 0


# --- bench ---------------------------------------------------------------------------------


def _add_bench(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="Benchmark transformers' T5 classification paths against t5cls (fp32, int8, ONNX).",
        description="Same random weights with real T5 shapes, real texts (AG News from ../shared by default), "
        "each row timed in its own process: sequences/s, ratio to row 1, peak memory, padding share, "
        "achieved GFLOP/s next to the machine's measured fp32 matmul rate.",
    )
    p.add_argument("--preset", default="t5-small", choices=["t5-small", "t5-base", "tiny"], help="model shapes")
    p.add_argument("--data", help="a .csv/.tsv/.jsonl/.txt file of texts (default: ../shared/data/agnews/train.tsv)")
    p.add_argument("--text-column", default="text", help="text column of --data (default: text)")
    p.add_argument("--n", type=int, help="number of texts (default: 512 for t5-small, 192 for t5-base)")
    p.add_argument("--rows", default="1,2,3,4,5", help="rows to run, e.g. 1,3,4 (default: all)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's setting, i.e. the cores)")
    p.add_argument("--batch-tokens", type=int, help="t5cls token budget per batch")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per row; the best counts (default: 2)")
    p.add_argument("--tokenizer", help="tokenizer directory (default: ../shared/tokenizers/t5)")
    p.add_argument("--json", help="also write the full report to this JSON file")


def _run_bench(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .bench import format_report, run_benchmark

    try:
        rows = [int(part) for part in args.rows.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--rows {args.rows!r} must be row numbers separated by commas, e.g. 1,3,4.") from None
    report = run_benchmark(
        preset=args.preset,
        data=args.data,
        n=args.n,
        rows=rows,
        threads=args.threads,
        batch_tokens=args.batch_tokens,
        repeat=args.repeat,
        tokenizer=args.tokenizer,
        text_column=args.text_column,
    )
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return 0


# --- score ---------------------------------------------------------------------------------


def _add_score(subparsers: argparse._SubParsersAction) -> None:
    from .inference import DEFAULT_BATCH_TOKENS

    p = subparsers.add_parser(
        "score",
        help="Exact label probabilities from a seq2seq T5 (t5, flan-t5, mT5, UL2): no training, no new weights.",
        description="For every row of INPUT, fill the template from the row's columns and score each label as "
        "text: exact log P(label | prompt) summed over the label's tokens and </s>, the encoder run once per row. "
        "Writes per row the template fields, the best label, each label's probability (p_LABEL) and the entropy "
        "(nats), as JSON lines on stdout or to --output (.jsonl or .csv).",
    )
    p.add_argument("model", help="a seq2seq T5 checkpoint directory or hub id (T5ForConditionalGeneration), or a PEFT adapter over one")
    _add_base(p)
    p.add_argument("input", help="a .txt (one text a line, field 'text'), .csv, .tsv, .jsonl or .parquet file")
    p.add_argument("--labels", required=True, help="comma-separated labels, e.g. 'positive,negative'")
    p.add_argument("--template", default="{text}", help="prompt with named fields = INPUT columns, e.g. 'sst2 sentence: {text}'")
    p.add_argument("--normalize", default="sum", choices=["sum", "mean", "chars"], help="length normalisation (default: sum)")
    p.add_argument("--calibrate", choices=["contextual", "domain_pmi"], help="calibration (default: none)")
    p.add_argument("--mode", default="full", choices=["full", "first_token"], help="first_token: the classic one-step recipe")
    p.add_argument("--output", "-o", help="a .jsonl or .csv file (default: JSON lines on stdout)")
    p.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS, help="padded tokens per batch")
    p.add_argument("--max-length", type=int, help="truncate prompts to this many tokens (default: the tokenizer's)")
    p.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", help="e.g. float32 or bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    _add_ray_options(p)


def _run_score(args: argparse.Namespace) -> int:
    if args.ray:
        from .scoring import template_fields

        return _run_on_ray(
            args,
            "score",
            text_columns=template_fields(args.template),
            labels=_split_labels(args.labels),
            template=args.template,
            normalize=args.normalize,
            calibrate=args.calibrate,
            mode=args.mode,
            device=args.device,
            dtype=args.dtype,
            batch_tokens=args.batch_tokens,
            max_length=args.max_length,
        )
    from .inputs import read_table, record_writer
    from .scoring import LabelScorer, template_fields

    # Input mistakes fail before the model loads.
    fields = template_fields(args.template)
    frame = read_table(args.input, text_columns=fields, hint=f"Name the fields of the template {args.template!r} after the columns.")
    rows = frame[fields].to_dict(orient="records")
    scorer = LabelScorer(
        args.model,
        labels=_split_labels(args.labels),
        template=args.template,
        normalize=args.normalize,
        calibrate=args.calibrate,
        mode=args.mode,
        device=args.device,
        dtype=args.dtype,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
        base=args.base,
    )
    proba = scorer.predict_proba(rows)
    with record_writer(args.output) as write:
        write(row | record for row, record in zip(rows, scorer.records(proba)))
    if args.output and args.output != "-":
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


# --- rerank --------------------------------------------------------------------------------


def _add_rerank(subparsers: argparse._SubParsersAction) -> None:
    from .inference import DEFAULT_BATCH_TOKENS
    from .rerank import DEFAULT_RERANK_TEMPLATE

    p = subparsers.add_parser(
        "rerank",
        help="Rank documents by relevance to a query (monoT5-style seq2seq T5, or a pair classifier).",
        description="Read queries and their documents from INPUT (.jsonl: {\"query\": ..., \"documents\": [...]} per line; "
        ".csv/.tsv: query and document columns, consecutive rows of one query grouped) and write one JSON line per "
        "query, in input order, as it goes: {\"query\", \"results\": [{\"index\", \"score\"}, ...]} best first, "
        "score = P(relevant). Long documents are scored by their best window (MaxP).",
    )
    p.add_argument("model", help="a seq2seq T5 (e.g. monoT5) or a (query, document) pair classifier: directory or hub id")
    p.add_argument("input", help="a .jsonl, .csv or .tsv file")
    p.add_argument("--top-n", type=int, help="keep the N best documents per query (default: all)")
    p.add_argument("--return-documents", action="store_true", help="add each document's text to its result")
    p.add_argument("--output", "-o", help="a .jsonl file (default: JSON lines on stdout)")
    p.add_argument("--template", default=DEFAULT_RERANK_TEMPLATE, help=f"seq2seq prompt with {{query}} and {{document}} (default {DEFAULT_RERANK_TEMPLATE!r})")
    p.add_argument("--true-word", default="true", help="seq2seq: the one-token answer meaning relevant (default: true)")
    p.add_argument("--false-word", default="false", help="seq2seq: the one-token answer meaning not relevant (default: false)")
    p.add_argument("--relevant-label", help="two-label classifiers: the label meaning relevant (default: found by name)")
    p.add_argument("--long-inputs", default="chunk", choices=["chunk", "truncate"], help="chunk: best window (default); truncate: first window")
    p.add_argument("--stride", type=int, help="tokens shared by consecutive windows (default: a quarter of the window)")
    p.add_argument("--max-length", type=int, help="tokens per (query, document) input (default: the tokenizer's)")
    p.add_argument("--query-column", default="query", help="query column / field (default: query)")
    p.add_argument("--documents-column", default="documents", help=".jsonl list-of-documents field (default: documents)")
    p.add_argument("--document-column", default="document", help=".csv/.tsv document column (default: document)")
    p.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS, help="tokens per batch")
    p.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", help="e.g. float32 or bfloat16 (default: bf16 on CUDA, fp32 on CPU)")
    _add_ray_options(p)


def _run_rerank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import InputError
    from .inference import DEFAULT_CHUNK_SIZE
    from .inputs import iter_query_documents, record_writer
    from .rerank import Reranker, check_rerank_template, check_top_n

    # Argument and input mistakes fail before the model loads.
    check_top_n(args.top_n)
    check_rerank_template(args.template)
    if args.ray:
        names = ("template", "true_word", "false_word", "relevant_label", "max_length", "stride", "long_inputs", "batch_tokens", "device", "dtype")
        return _run_on_ray(
            args,
            "rerank",
            query_column=args.query_column,
            documents_column=args.documents_column,
            document_column=args.document_column,
            top_n=args.top_n,
            return_documents=args.return_documents,
            **{name: getattr(args, name) for name in names if getattr(args, name) is not None},
        )
    if args.output and args.output != "-" and Path(args.output).suffix.lower() != ".jsonl":
        raise InputError(f"--output {args.output!r}: rerank writes nested results as JSON lines; use a .jsonl file.")
    groups = iter_query_documents(
        args.input, query_column=args.query_column, documents_column=args.documents_column, document_column=args.document_column
    )
    groups = _peeked(groups)  # the first group is read (and checked) now
    reranker = Reranker(
        args.model,
        template=args.template,
        true_word=args.true_word,
        false_word=args.false_word,
        relevant_label=args.relevant_label,
        max_length=args.max_length,
        stride=args.stride,
        long_inputs=args.long_inputs,
        batch_tokens=args.batch_tokens,
        device=args.device,
        dtype=args.dtype,
    )
    count = 0
    with record_writer(args.output) as write:
        while True:
            # Enough pairs per call to sort well, few enough to write results as they come.
            chunk: list[tuple[str, list[str]]] = []
            pairs = 0
            for query, documents in groups:
                chunk.append((query, documents))
                pairs += len(documents)
                if pairs >= DEFAULT_CHUNK_SIZE:
                    break
            if not chunk:
                break
            ranked = reranker.rank([q for q, _ in chunk], [d for _, d in chunk], top_n=args.top_n, return_documents=args.return_documents)
            write({"query": query, "results": results} for (query, _), results in zip(chunk, ranked))
            count += len(chunk)
            if args.output is None or args.output == "-":
                sys.stdout.flush()
    if args.output and args.output != "-":
        print(f"wrote {count} rankings to {args.output}", file=sys.stderr)
    return 0


def _peeked(items):
    """The same iterator, with its first item read now (so that its errors come first)."""
    import itertools

    items = iter(items)
    first = list(itertools.islice(items, 1))
    return itertools.chain(first, items)


# --- train / evaluate / demo ---------------------------------------------------------------


def _add_data_columns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    p.add_argument("--text-pair-column", default=None, help="second text column, for sentence pairs (e.g. hypothesis)")
    p.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    p.add_argument("--label-separator", default=None, help="splits string labels into several (multi-label), e.g. '|'")


def _format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def _quiet_hub_progress() -> None:
    # transformers draws a bar for every checkpoint write and load; the run's own bar is enough.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    from .training_config import TrainingConfig

    p = subparsers.add_parser(
        "train",
        help="Fine-tune a T5 checkpoint (or a saved classifier) on labelled data; write model, metrics and plots.",
        description="Train a T5ForClassification (or, with --mode text2text, the seq2seq model on label strings) "
        "with transformers.Trainer. Works under torchrun / accelerate launch unchanged. OUTPUT_DIR gets the model "
        "(safetensors + tokenizer), metrics.json, loss_curve.png and confusion_matrix.png + reliability_diagram.png / "
        "regression_scatter.png; with --eval, the temperature (multi-label: thresholds) fitted on it. "
        "The settings are the fields of t5cls.TrainingConfig.",
    )
    p.add_argument("--model", required=True, help="T5-family checkpoint directory or hub id, or a saved t5cls classifier")
    p.add_argument("--train", required=True, help="training data: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--eval", default=None, help="evaluation data (same formats); evaluated each epoch and at the end")
    _add_dataclass_options(p.add_argument_group("settings (t5cls.TrainingConfig)"), TrainingConfig)


def _add_dataclass_options(group: argparse._ActionsContainer, settings: type) -> None:
    """One option per field of the dataclass ``settings``: ``--field-name``, help from ``metadata["help"]``.

    Not transformers' HfArgumentParser: it builds a whole parser rather than options on a
    subcommand's, and it has no form for fields such as ``lora`` (a flag or a JSON dict), for
    comma-separated lists or for ``--x/--no-x`` on an optional bool. Options left out are not
    set at all (``argparse.SUPPRESS``), so the defaults live in the dataclass only.
    """
    import dataclasses
    import typing

    hints = typing.get_type_hints(settings)
    for f in dataclasses.fields(settings):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        # The default is shown unless the help text tells it better (what None stands for).
        quiet = required or f.default is None or "default" in f.metadata["help"]
        help_text = (f.metadata["help"] + ("" if quiet else f" (default: {f.default})")).replace("%", "%%")
        flags = [f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ())]
        kind = _option_kind(f.metadata.get("cli_type", hints[f.name]), f.name)
        group.add_argument(*flags, dest=f.name, default=argparse.SUPPRESS, required=required, help=help_text, **kind)


def _option_kind(hint: object, name: str) -> dict:
    import os
    import types
    import typing

    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = tuple(a for a in args if a is not type(None))
        if set(args) == {bool, dict}:
            return dict(nargs="?", const=True, type=_json_flag, metavar="JSON")
        if str in args or any(typing.get_origin(a) is os.PathLike for a in args):
            return dict(type=str)
        if len(args) != 1:
            raise TypeError(f"setting {name!r}: no command-line form for {hint!r}")  # a bug in the dataclass
        hint = args[0]
        args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if hint is bool:
        return dict(action=argparse.BooleanOptionalAction)
    if origin is typing.Literal:
        return dict(choices=args)
    if origin is list:
        return dict(type=_split_labels, metavar="A,B,...")
    if origin is dict or hint is dict:
        return dict(type=_json_object, metavar="JSON")
    if hint in (int, float, str):
        return dict(type=hint)
    raise TypeError(f"setting {name!r}: no command-line form for {hint!r}")


def _json_object(value: str) -> dict:
    import json

    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not JSON ({exc}); pass an object such as '{{\"r\": 8}}'") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"{value!r} is not a JSON object; pass one such as '{{\"r\": 8}}'")
    return parsed


def _json_flag(value: str) -> bool | dict:
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _json_object(value)


def _train_config(args: argparse.Namespace) -> TrainingConfig:
    """The TrainingConfig of ``t5cls train``'s options (those not given keep the dataclass defaults)."""
    from .training_config import TrainingConfig

    return TrainingConfig(**{name: getattr(args, name) for name in TrainingConfig.field_names() if hasattr(args, name)})


def _run_train(args: argparse.Namespace) -> int:
    from .training import train

    _quiet_hub_progress()
    result = train(args.model, args.train, eval=args.eval, config=_train_config(args))
    if not _is_main_process():
        return 0
    resumed = f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step else ""
    print(f"trained {result.global_step} steps{resumed}, final training loss {result.train_loss:.4f}")
    print(f"labels: {result.labels} ({result.problem_type})")
    if result.metrics is not None:
        print(f"eval: {_format_metrics(result.metrics)}")
        _print_calibration(result.metrics)
    print(f"saved to {result.output_dir} (model, metrics.json, plots)")
    return 0


def _print_calibration(metrics: dict) -> None:
    calibration = metrics.get("calibration")
    if calibration:
        before, after = calibration["before"], calibration["after"]
        print(
            f"calibration: temperature {calibration['temperature']:.4g}; ECE {before['ece']:.4f} -> {after['ece']:.4f}, "
            f"NLL {before['nll']:.4f} -> {after['nll']:.4f}, Brier {before['brier']:.4f} -> {after['brier']:.4f} (before -> after scaling)"
        )
    if metrics.get("thresholds"):
        print("thresholds: " + ", ".join(f"{label} {t:.3f}" for label, t in metrics["thresholds"].items()))


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="Metrics and plots of a trained classifier on labelled data.",
        description="Predict DATA with MODEL (through t5cls.Classifier, or LabelScorer for a text2text model) "
        "and report accuracy / macro-F1 / MCC, multi-label F1, or Pearson / Spearman / MSE. With --output, "
        "write metrics.json and the plots there.",
    )
    p.add_argument("model", help="a model directory written by `t5cls train` or `t5cls convert`, or a PEFT adapter over one")
    _add_base(p)
    p.add_argument("data", help="labelled data: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--output", default=None, help="directory for metrics.json and plots")
    _add_data_columns(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label decision threshold for every label (default: the model's saved thresholds, else 0.5)")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--batch-tokens", type=int, default=None, help="most padded tokens per batch")
    p.add_argument("--device", default=None, help="e.g. cpu or cuda (default: cuda when available)")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    _quiet_hub_progress()
    metrics = evaluate(
        args.model,
        args.data,
        output_dir=args.output,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        label_separator=args.label_separator,
        threshold=args.threshold,
        device=args.device,
        max_length=args.max_length,
        batch_tokens=args.batch_tokens,
        base=args.base,
    )
    print(f"{metrics['n']} examples: {_format_metrics(metrics)}")
    _print_calibration(metrics)
    if "confusion_matrix" in metrics:
        labels = metrics["labels"]
        width = max(len(str(lab)) for lab in labels)
        print("confusion matrix (rows: true, columns: predicted):")
        for lab, row in zip(labels, metrics["confusion_matrix"]):
            print(f"  {str(lab):>{width}}  " + " ".join(f"{n:5d}" for n in row))
    if args.output:
        print(f"report written to {args.output}")
    return 0


def _add_calibrate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="Fit a classifier's temperature (single-label) or per-label thresholds (multi-label) on labelled data.",
        description="Temperature scaling: find the T that minimises the NLL of softmax(logits / T) on DATA (held-out "
        "data, not the training set) and save it in the model's config, so that every way of running the model gives "
        "calibrated probabilities; predictions do not change. Multi-label models get each label's F1-best threshold.",
    )
    p.add_argument("model", help="a classifier directory (torch weights)")
    p.add_argument("data", help="labelled data: .csv, .tsv, .jsonl or .parquet")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", help="write a calibrated copy of MODEL here")
    where.add_argument("--in-place", action="store_true", help="update MODEL/config.json")
    _add_data_columns(p)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--batch-tokens", type=int, default=None, help="most padded tokens per batch")
    p.add_argument("--device", default=None, help="e.g. cpu or cuda (default: cuda when available)")


def _run_calibrate(args: argparse.Namespace) -> int:
    from .evaluation import calibrate

    _quiet_hub_progress()
    fitted = calibrate(
        args.model,
        args.data,
        output_dir=args.output,
        in_place=args.in_place,
        text_column=args.text_column,
        text_pair_column=args.text_pair_column,
        label_column=args.label_column,
        label_separator=args.label_separator,
        device=args.device,
        max_length=args.max_length,
        batch_tokens=args.batch_tokens,
    )
    if "temperature" in fitted:
        before, after = fitted["before"], fitted["after"]
        print(f"temperature {fitted['temperature']:.4g} on {fitted['n']} examples")
        for name in ("nll", "ece", "brier"):
            print(f"  {name:5} {before[name]:.4f} -> {after[name]:.4f}")
    else:
        print(f"thresholds on {fitted['n']} examples: " + ", ".join(f"{label} {t:.3f}" for label, t in fitted["thresholds"].items()))
    print(f"saved to {fitted['model_dir']}")
    return 0


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="Offline demo: train an intent classifier on data shipped with t5cls, evaluate it, use it.",
        description="Trains a small T5 classifier from scratch (tokenizer included) on 480 assistant requests "
        "in 8 intents shipped with t5cls, reports accuracy on 120 held-out ones, and classifies a few new "
        "sentences. No network. With --model, fine-tunes that T5 checkpoint instead.",
    )
    p.add_argument("--model", default=None, help="a T5-family checkpoint to fine-tune instead of training from scratch")
    p.add_argument("--output", default="t5cls-demo", help="output directory (default: ./t5cls-demo)")
    p.add_argument("--epochs", type=float, default=None, help="default: 30 from scratch, 5 with --model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT even if a demo did not write it")


def _run_demo(args: argparse.Namespace) -> int:
    import textwrap

    from transformers.utils import logging as hf_logging

    from .demo import run_demo

    _quiet_hub_progress()
    hf_logging.set_verbosity_error()  # a fixed, known run: only its own story on the terminal
    what = f"fine-tuning {args.model}" if args.model else "training a small T5 classifier from scratch, tokenizer included"
    print(f"t5cls demo: an intent classifier for assistant requests, {what} (offline).", flush=True)
    result = run_demo(args.model, output_dir=args.output, epochs=args.epochs, seed=args.seed, overwrite=args.overwrite)
    print(f"data: {result.n_train + result.n_test} requests in {len(result.labels)} intents ({', '.join(result.labels)})")
    print(f"      {result.n_train} to train on, {result.n_test} held out")
    print(f"model: T5ForClassification, {result.parameters:,} parameters; trained in {result.seconds:.0f} s")
    print(f"held-out accuracy: {result.accuracy:.3f} (macro-F1 {result.macro_f1:.3f}) on {result.n_test} sentences it never saw")
    print("new sentences:")
    for text, ranked in result.examples:
        top = ", ".join(f"{label} {p:.2f}" for label, p in ranked[:2])
        print(f"  {text!r:48} -> {top}")
    print(f"report: {result.output_dir}/metrics.json, loss_curve.png, confusion_matrix.png, reliability_diagram.png")
    print(f"use it: t5cls.Classifier({str(result.output_dir)!r}).predict('turn off the lights')")
    if result.from_scratch:
        note = (
            f"note: this model learned all it knows from {result.n_train} sentences, from scratch, in seconds: "
            "it demonstrates the pipeline (data -> train -> evaluate -> predict), not what T5 reaches (a "
            "bag-of-words baseline does better on this data). A pretrained checkpoint knows the language "
            "already and does much better on the same data: t5cls demo --model google/flan-t5-base"
        )
        print(textwrap.fill(note, width=100, subsequent_indent="      "))
    return 0


# --- registry ------------------------------------------------------------------------------

Command = tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]
COMMANDS: list[Command] = [
    ("demo", _add_demo, _run_demo),
    ("convert", _add_convert, _run_convert),
    ("train", _add_train, _run_train),
    ("evaluate", _add_evaluate, _run_evaluate),
    ("calibrate", _add_calibrate, _run_calibrate),
    ("predict", _add_predict, _run_predict),
    ("score", _add_score, _run_score),
    ("rerank", _add_rerank, _run_rerank),
    ("zero-shot", _add_zero_shot, _run_zero_shot),
    ("export", _add_export, _run_export),
    ("serve", _add_serve, _run_serve),
    ("bench", _add_bench, _run_bench),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t5cls", description="Text classification with T5-family models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _, add, _ in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``t5cls`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not sys.stderr.isatty():
        # transformers and the hub draw progress bars on stderr even when it is a file or a pipe,
        # which buries the one-line errors and the output people parse.
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        disable_progress_bars()
    run = {name: run for name, _, run in COMMANDS}[args.command]
    try:
        return run(args)
    except USER_ERRORS as exc:
        # The user's mistake: one clear line, no traceback, exit 2 (as argparse does for a bad option).
        print(f"t5cls {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception:
        # Anything else is a bug in t5cls or below it: show where it happened, exit 1.
        traceback.print_exc()
        print(
            f"t5cls {args.command}: internal error (the traceback above); this is a bug, please report it.",
            file=sys.stderr,
        )
        return 1


def _one_line(exc: BaseException) -> str:
    # FileNotFoundError raised by open() reads "[Errno 2] No such file or directory: 'x'".
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename!r}"
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
