"""Side-by-side benchmark: transformers' own T5 classification paths against t5cls.

One run builds one set of random weights with real T5 shapes (presets ``t5-small``, ``t5-base``),
saves them the way users have them (directories on disk), and times each row in a fresh
subprocess, so that every row's peak memory is its own:

1. transformers ``T5ForSequenceClassification``, batches of 32 in input order (what a user writes today);
2. transformers ``T5EncoderModel`` + mean pooling + a linear head, batches of 32 in input order;
3. t5cls ``Classifier`` fp32 (length-sorted batches under a token budget);
4. t5cls ``Classifier`` int8 (ONNX Runtime dynamic quantisation);
5. t5cls ``Classifier`` on ONNX Runtime, fp32.

Inputs are real texts (AG News by default), tokenised with the real T5 vocabulary when it is
there. Every row includes tokenisation. Besides sequences per second it reports padding as a
share of processed tokens, and the matmul FLOPs spent on real (non-padding) tokens per second
next to the fp32 matmul rate measured on this machine in the same run.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import multiprocessing
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .batching import min_padding_batches, padding_share
from .cpu_linear import linear_kernel_name, onednn_available
from .devices import cpu_family_model, cpu_features, cpu_model
from .errors import InputError, check_int
from .inputs import iter_texts, read_table

logger = logging.getLogger(__name__)

# Shapes only: weights are random. FFN type as in the original t5 checkpoints (ReLU).
SHAPE_PRESETS: dict[str, dict[str, Any]] = {
    "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu"),
    "t5-base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, feed_forward_proj="relu"),
    # For tests: a few seconds end to end.
    "tiny": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, feed_forward_proj="relu"),
}
ROWS: dict[int, str] = {
    1: "transformers T5ForSequenceClassification, batch 32, input order",
    2: "transformers T5EncoderModel + mean pooling, batch 32, input order",
    3: "t5cls Classifier fp32 (torch)",
    4: "t5cls Classifier int8 (ONNX Runtime)",
    5: "t5cls Classifier fp32 (ONNX Runtime)",
}
BASELINE_BATCH_SIZE = 32
HEAD_FILE = "head.safetensors"
# Texts per preset: row 1 is slow (about 5 texts/s for t5-small on 2 threads); a run stays in minutes.
DEFAULT_TEXTS = {"t5-small": 512, "t5-base": 192, "tiny": 64}
VOCAB_SIZE = 32128
# The label sets every scoring benchmark uses (bench_scoring, bench_peers, bench_gpu), so their rows
# compare the same work: AG News's 4 topics, and 20 labels of 1 to 4 t5 tokens, some sharing a first token.
AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
TWENTY_LABELS = AG_NEWS_LABELS + [
    "politics", "entertainment", "health care", "science", "technology", "e-commerce", "travel", "education",
    "real estate", "automobiles", "weather forecast", "crime and justice", "religion", "health and medicine",
    "food and drink", "video games",
]  # fmt: skip
SCORING_TEMPLATE = "topic: {text}"


RERANK_TEMPLATE = "Query: {query} Document: {document} Relevant:"  # monoT5's prompt
RERANK_QUERY_WORDS = 6


def rerank_inputs(n_queries: int, n_documents: int, data: str | Path) -> tuple[list[str], list[list[str]]]:
    """The reranking benchmarks' queries and document lists, from a file of texts (AG News).

    Documents: the first ``n_queries * n_documents`` texts, ``n_documents`` per query; queries: the
    first ``RERANK_QUERY_WORDS`` words of the texts after those.

    Raises:
        InputError: the file has too few texts.
    """
    needed = n_queries * (n_documents + 1)
    texts = list(itertools.islice(iter_texts(data), needed))
    if len(texts) < needed:
        raise InputError(f"{data} has {len(texts)} texts; {n_queries} queries x {n_documents} documents need {needed}.")
    documents = texts[: n_queries * n_documents]
    lists = [documents[i * n_documents : (i + 1) * n_documents] for i in range(n_queries)]
    queries = [" ".join(text.split()[:RERANK_QUERY_WORDS]) for text in texts[n_queries * n_documents :]]
    return queries, lists


def _shared_candidates(*parts: str) -> list[Path]:
    # ../shared next to the working directory, or next to a source checkout of this package.
    return [Path.cwd().parent.joinpath("shared", *parts), Path(__file__).resolve().parents[3].joinpath("shared", *parts)]


def default_data_file() -> Path | None:
    """``../shared/data/agnews/train.tsv`` when present, else None."""
    return next((p for p in _shared_candidates("data", "agnews", "train.tsv") if p.is_file()), None)


def default_tokenizer_dir() -> Path | None:
    """``../shared/tokenizers/t5`` (the real T5 vocabulary) when present, else None."""
    return next((p for p in _shared_candidates("tokenizers", "t5") if p.is_dir()), None)


# --------------------------------------------------------------------------------------------
# FLOPs and the machine's matmul rate
# --------------------------------------------------------------------------------------------


def model_flops(config: Any, lengths: Sequence[int], *, kind: str, num_labels: int) -> float:
    """Matmul FLOPs (2 per multiply-add) to classify sequences of ``lengths`` tokens, with no padding.

    Counts what ``torch.utils.flop_counter.FlopCounterMode`` counts: linear layers and the two
    attention products; element-wise work (norms, softmax, activations) is left out.

    Args:
        config: a T5 config (``d_model``, ``d_kv``, ``num_heads``, ``d_ff``, ``num_layers``, ...).
        lengths: real tokens per sequence.
        kind: ``"seq2seq"`` (T5ForSequenceClassification: full encoder and decoder),
            ``"encoder"`` (T5EncoderModel + mean pooling + linear head) or ``"t5cls"``
            (encoder + ``config.num_decoder_layers`` query layers + head).
        num_labels: outputs of the head.
    """
    d, inner, d_ff = config.d_model, config.num_heads * config.d_kv, config.d_ff
    ffn = 2 * d * d_ff * (3 if config.is_gated_act else 2)  # per token
    attn_proj = 2 * 4 * d * inner  # q, k, v, o per token
    lengths = np.asarray(lengths, dtype=np.float64)
    tokens, squares = lengths.sum(), (lengths**2).sum()
    encoder = config.num_layers * (tokens * (attn_proj + ffn) + 4 * squares * inner)
    n = len(lengths)
    if kind == "encoder":
        return float(encoder + n * 2 * d * num_labels)
    if kind == "seq2seq":
        # Decoder on the shifted input (same length): self-attention, cross-attention (q, o on the
        # decoder side, k, v on the encoder side), FFN. Head: dense + out_proj on one position.
        decoder_layer = tokens * (attn_proj + 2 * 2 * d * inner + 2 * 2 * d * inner + ffn) + 8 * squares * inner
        decoder_layers = getattr(config, "num_decoder_layers", None) or config.num_layers
        return float(encoder + decoder_layers * decoder_layer + n * (2 * d * d + 2 * d * num_labels))
    if kind == "t5cls":
        layers = config.num_decoder_layers
        if layers == 0:
            return float(encoder + n * 2 * d * num_labels)
        q = config.num_queries
        decoder_layer = n * (q * (attn_proj + 2 * 2 * d * inner + ffn) + 4 * q * q * inner) + tokens * (2 * 2 * d * inner + 4 * q * inner)
        head = 0 if config.problem_type == "multi_label_classification" else n * 2 * d * num_labels
        return float(encoder + layers * decoder_layer + head)
    raise InputError(f"kind={kind!r} is not one of 'seq2seq', 'encoder', 't5cls'.")


MATMUL_ROWS = (512, 1024, 2048, 4096)


def measure_matmul_gflops(m: int, k: int, n: int, *, repeat: int = 30) -> float:
    """Best fp32 ``(m, k) @ (k, n)`` rate on this machine, in GFLOP/s, with torch's current threads.

    The best of torch's two CPU kernels: its BLAS (``torch.mm``, MKL) and, where torch has it,
    oneDNN (what ``t5cls.cpu_linear`` runs on some CPUs), so that "% of matmul" compares a row
    with the fastest product torch offers here, not with the slower of the two.
    """
    a, weight = torch.randn(m, k), torch.randn(n, k)
    kernels = [lambda: torch.mm(a, weight.t())]
    if onednn_available():
        kernels.append(lambda: torch.ops.mkldnn._linear_pointwise(a, weight, None, "none", [], ""))
    best = float("inf")
    with torch.inference_mode():
        for kernel in kernels:
            kernel()  # warm-up
            for _ in range(repeat):
                start = time.perf_counter()
                kernel()
                best = min(best, time.perf_counter() - start)
    return 2 * m * k * n / best / 1e9


def peak_matmul_gflops(k: int, n: int) -> tuple[float, tuple[int, int, int]]:
    """The best fp32 matmul rate over the row counts a batch has (``MATMUL_ROWS``), and its shape."""
    rates = {(m, k, n): measure_matmul_gflops(m, k, n, repeat=10) for m in MATMUL_ROWS}
    shape = max(rates, key=rates.get)
    return rates[shape], shape


# --------------------------------------------------------------------------------------------
# Rows: each runs in its own process
# --------------------------------------------------------------------------------------------


def _memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB; NaN where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return float("nan")


def _reset_peak_memory() -> None:
    # Linux: writing 5 to clear_refs resets the peak RSS, so the peak measured is the row's own
    # (loading the tokenizer and importing torch peak higher than a small model ever does).
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _hf_batches(model: torch.nn.Module, tokenizer: Any, batch_size: int, pool: Callable[[Any, Any], torch.Tensor]) -> Callable[[list[str]], np.ndarray]:
    """What a transformers user writes: batches in input order, padded to the longest, no sorting."""

    def run(texts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                encoded = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
                out.append(pool(model, encoded).float().numpy())
        return np.concatenate(out)

    return run


def _build_row(row: int, work: Path, tokenizer: Any, *, batch_tokens: int) -> Callable[[list[str]], np.ndarray]:
    from safetensors.torch import load_file
    from transformers import T5EncoderModel, T5ForSequenceClassification

    from .inference import Classifier

    if row == 1:
        model = T5ForSequenceClassification.from_pretrained(work / "hf-seq2seq").eval()
        return _hf_batches(model, tokenizer, BASELINE_BATCH_SIZE, lambda m, enc: m(**enc).logits)
    if row == 2:
        encoder = T5EncoderModel.from_pretrained(work / "hf-encoder").eval()
        head = torch.nn.Linear(encoder.config.d_model, encoder.config.num_labels)
        head.load_state_dict(load_file(work / "hf-encoder" / HEAD_FILE))

        def mean_pool(model: Any, encoded: Any) -> torch.Tensor:
            hidden = model(**encoded).last_hidden_state  # (batch, seq, d_model)
            weights = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            return head((hidden * weights).sum(1) / weights.sum(1))  # (batch, num_labels)

        return _hf_batches(encoder, tokenizer, BASELINE_BATCH_SIZE, mean_pool)
    kwargs: dict[str, Any] = {"batch_tokens": batch_tokens, "show_progress_bar": False, "device": "cpu"}
    if row == 3:
        return Classifier(work / "t5cls", **kwargs).logits
    return Classifier(work / "onnx", backend="onnx", quantize="int8" if row == 4 else None, **kwargs).logits


def _row_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: load the row's model from disk, warm up, time ``repeat`` runs."""
    torch.set_num_threads(spec["threads"])
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    import t5cls  # noqa: F401  (registers the config with transformers' Auto classes)

    hf_logging.disable_progress_bar()
    work = Path(spec["work"])
    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    # The machine's matmul rate, measured next to every row (before and after it): other work
    # on a shared machine comes and goes, and the best of all these is the fairest peak.
    matmul = [peak_matmul_gflops(*spec["matmul_kn"])]
    base = _memory_mb("VmRSS")
    _reset_peak_memory()
    run = _build_row(spec["row"], work, tokenizer, batch_tokens=spec["batch_tokens"])
    texts = spec["texts"]
    run(texts[: BASELINE_BATCH_SIZE])  # warm-up: one-time allocations, kernel selection
    times = []
    for _ in range(spec["repeat"]):
        start = time.perf_counter()
        logits = run(texts)
        times.append(time.perf_counter() - start)
    peak_mb = _memory_mb("VmHWM") - base
    matmul.append(peak_matmul_gflops(*spec["matmul_kn"]))
    return {"seconds": min(times), "all_seconds": times, "peak_mb": peak_mb, "logits": logits, "matmul": max(matmul)}


def _run_in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_row_worker, spec).result()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class RowResult:
    """One row of the table."""

    row: int
    name: str
    params: int
    seconds: float
    seq_per_s: float
    ratio: float
    peak_mb: float
    padding: float
    gflops: float
    matmul_share: float
    agreement: float | None = None
    max_proba_diff: float | None = None


@dataclass
class BenchReport:
    """Everything a run measured, and how it was set up."""

    preset: str
    shapes: dict[str, Any]
    num_texts: int
    data: str
    tokenizer: str
    threads: int
    batch_tokens: int
    repeat: int
    mean_tokens: float
    max_tokens: int
    matmul_gflops: float
    matmul_shape: tuple[int, int, int]
    export_seconds: float | None
    machine: str
    rows: list[RowResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_texts(data: str | Path | None, *, n: int, text_column: str = "text") -> tuple[list[str], str]:
    """The first ``n`` texts of ``data`` (default: AG News from ../shared), and where they came from.

    Raises:
        FileNotFoundError: no ``data`` given and ../shared/data/agnews/train.tsv is absent.
        ValueError: ``n`` < 1, or the text column is missing (naming the columns there are).
    """
    if n < 1:
        raise InputError(f"n={n}: benchmark at least one text.")
    path = Path(data) if data is not None else default_data_file()
    if path is None:
        raise FileNotFoundError("No texts to benchmark: ../shared/data/agnews/train.tsv is absent; pass --data FILE.")
    frame = read_table(path, columns=[text_column])
    texts = [str(t) for t in frame[text_column].tolist()[:n]]
    return texts, str(path)


def _fallback_tokenizer(texts: Sequence[str]) -> Any:
    """A word-level tokenizer over the benchmark's own texts, for when the T5 vocabulary is absent."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=VOCAB_SIZE, special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)


def _save_models(work: Path, preset: dict[str, Any], *, num_labels: int, seed: int, tokenizer: Any, onnx: bool) -> tuple[dict[int, int], float | None]:
    """Write the same random weights in each row's format; returns parameters per row and the ONNX export time."""
    from safetensors.torch import save_file
    from transformers import T5Config, T5EncoderModel, T5ForSequenceClassification

    from .convert import count_parameters, from_t5, save_classifier
    from .export import export_onnx

    config = T5Config(
        vocab_size=VOCAB_SIZE,
        num_labels=num_labels,
        dropout_rate=0.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **preset,
    )
    torch.manual_seed(seed)
    seq2seq = T5ForSequenceClassification(config).eval()
    seq2seq.save_pretrained(work / "hf-seq2seq")
    encoder = T5EncoderModel(config).eval()
    state = {k: v for k, v in seq2seq.transformer.state_dict().items() if k.startswith(("shared.", "encoder."))}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if k != "encoder.embed_tokens.weight"]:
        raise RuntimeError(f"Encoder weights did not line up: missing {missing}, unexpected {unexpected}.")
    encoder.save_pretrained(work / "hf-encoder")
    head = torch.nn.Linear(config.d_model, num_labels)
    save_file(head.state_dict(), work / "hf-encoder" / HEAD_FILE)
    classifier = from_t5(seq2seq.transformer, labels=[f"label_{i}" for i in range(num_labels)])
    save_classifier(classifier, work / "t5cls", tokenizer=tokenizer)
    tokenizer.save_pretrained(work / "tokenizer")
    params = {1: count_parameters(seq2seq), 2: count_parameters(encoder) + count_parameters(head)}
    params.update({row: count_parameters(classifier) for row in (3, 4, 5)})
    if not onnx:
        return params, None
    start = time.perf_counter()
    export_onnx(work / "t5cls", work / "onnx", int8=True)
    return params, time.perf_counter() - start


def run_benchmark(
    *,
    preset: str = "t5-small",
    data: str | Path | None = None,
    n: int | None = None,
    rows: Sequence[int] = (1, 2, 3, 4, 5),
    threads: int | None = None,
    batch_tokens: int | None = None,
    repeat: int = 2,
    tokenizer: str | Path | None = None,
    text_column: str = "text",
    num_labels: int = 4,
    seed: int = 0,
) -> BenchReport:
    """Time the rows on the same weights and texts; see the module docstring.

    Args:
        preset: ``t5-small``, ``t5-base`` (or ``tiny`` for tests).
        data: a .csv/.tsv/.jsonl/.txt file of texts (default: AG News from ../shared).
        n: how many texts (the first ``n``); default 512 for t5-small, 192 for t5-base (a run in minutes).
        rows: which rows to run (1 is always run: the others are compared to it).
        threads: torch / ONNX Runtime threads (default: torch's current setting).
        batch_tokens: the t5cls token budget (default: ``Classifier``'s).
        repeat: timed runs per row; the best is reported (other work on the machine only slows runs down).
        tokenizer: a tokenizer directory (default: the real T5 vocabulary from ../shared, else a
            word-level tokenizer built on the texts).
        text_column: text column of ``data``.
        num_labels: outputs of the random heads (AG News has 4 classes).
        seed: seed of the random weights.

    Returns:
        A :class:`BenchReport`; :func:`format_report` renders it.

    Raises:
        InputError: unknown preset or row, bad sizes; FileNotFoundError: no data.
    """
    from transformers import AutoTokenizer

    from .inference import DEFAULT_BATCH_TOKENS, PACKED_PADDING_COST

    if preset not in SHAPE_PRESETS:
        raise InputError(f"preset={preset!r} is not known; use one of {', '.join(SHAPE_PRESETS)}.")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise InputError(f"rows {unknown} do not exist; pick from {sorted(ROWS)}.")
    check_int("repeat", repeat)
    check_int("n", n, none_ok=True, hint="the number of texts to benchmark")
    check_int("threads", threads, none_ok=True)
    check_int("batch_tokens", batch_tokens, none_ok=True, hint="padded tokens per batch")
    rows = sorted(set(rows) | {1})
    threads = threads or torch.get_num_threads()
    batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS
    n = n or DEFAULT_TEXTS.get(preset, 512)
    texts, source = load_texts(data, n=n, text_column=text_column)
    tokenizer_dir = Path(tokenizer) if tokenizer is not None else default_tokenizer_dir()
    if tokenizer_dir is not None:
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        tokenizer_name = str(tokenizer_dir)
    else:
        tok = _fallback_tokenizer(texts)
        tokenizer_name = "word-level tokenizer built on the texts (the T5 vocabulary was not found)"
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=512)["input_ids"]]

    with tempfile.TemporaryDirectory(prefix="t5cls-bench-") as tmp:
        work = Path(tmp)
        params, export_seconds = _save_models(work, SHAPE_PRESETS[preset], num_labels=num_labels, seed=seed, tokenizer=tok, onnx=bool({4, 5} & set(rows)))
        from transformers import AutoConfig

        classifier_config = AutoConfig.from_pretrained(work / "t5cls")
        seq2seq_config = AutoConfig.from_pretrained(work / "hf-seq2seq")
        spec = {
            "work": str(work),
            "texts": texts,
            "threads": threads,
            "batch_tokens": batch_tokens,
            "repeat": repeat,
            "matmul_kn": (seq2seq_config.d_model, seq2seq_config.d_ff),
        }
        results = {}
        for row in rows:
            logger.info("Row %d: %s", row, ROWS[row])
            results[row] = _run_in_subprocess({**spec, "row": row})

    matmul, matmul_shape = max(result["matmul"] for result in results.values())
    input_order = [list(range(i, min(i + BASELINE_BATCH_SIZE, len(texts)))) for i in range(0, len(texts), BASELINE_BATCH_SIZE)]
    # What each row's Classifier batches: ONNX pads every layer; torch packs the encoder (t5cls.packed).
    sorted_groups = min_padding_batches(lengths, batch_tokens=batch_tokens)
    packed_groups = min_padding_batches(lengths, batch_tokens=batch_tokens, padding_cost=PACKED_PADDING_COST)
    groups = {1: input_order, 2: input_order, 3: packed_groups}
    report = BenchReport(
        preset=preset,
        shapes=dict(SHAPE_PRESETS[preset]),
        num_texts=len(texts),
        data=source,
        tokenizer=tokenizer_name,
        threads=threads,
        batch_tokens=batch_tokens,
        repeat=repeat,
        mean_tokens=float(np.mean(lengths)),
        max_tokens=int(max(lengths)),
        matmul_gflops=matmul,
        matmul_shape=matmul_shape,
        export_seconds=export_seconds,
        machine=_machine(threads),
    )
    kinds = {1: ("seq2seq", seq2seq_config), 2: ("encoder", seq2seq_config)}
    reference = results.get(3, {}).get("logits")
    for row in rows:
        result = results[row]
        kind, config = kinds.get(row, ("t5cls", classifier_config))
        flops = model_flops(config, lengths, kind=kind, num_labels=num_labels)
        gflops = flops / result["seconds"] / 1e9
        agreement = diff = None
        if row in (4, 5) and reference is not None:
            agreement, diff = _agreement(reference, result["logits"])
        report.rows.append(
            RowResult(
                row=row,
                name=ROWS[row],
                params=params[row],
                seconds=result["seconds"],
                seq_per_s=len(texts) / result["seconds"],
                ratio=results[1]["seconds"] / result["seconds"],
                peak_mb=result["peak_mb"],
                padding=padding_share(lengths, groups.get(row, sorted_groups)),
                gflops=gflops,
                matmul_share=gflops / matmul,
                agreement=agreement,
                max_proba_diff=diff,
            )
        )
    return report


def _agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(reference), softmax(other)
    return float((p.argmax(1) == q.argmax(1)).mean()), float(np.abs(p - q).max())


def machine_line(threads: int | None = None) -> str:
    """The facts to print next to a benchmark table: CPU and its features, cores, threads, torch and its fp32 linear kernel, UTC time, load average.

    The load average (1, 5, 15 minutes) says whether other work shared the machine during the run:
    on a quiet machine it stays under the threads the benchmark used.

    Example:
        >>> machine_line(2)  # doctest: +SKIP
        'AMD EPYC family 25 model 1 (AVX2; torch AVX2), 2 CPU cores, 2 threads, torch 2.13.0+cpu (fp32 linear: oneDNN), CPU, ...'
    """
    import os

    # The family and model tell hosts apart that share a name ("AMD EPYC") but not their speed.
    cpu = " ".join(filter(None, [cpu_model() or platform.processor() or platform.machine(), cpu_family_model()]))
    threads = torch.get_num_threads() if threads is None else threads
    accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    try:
        load = "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # not on every platform
        load = "load average unknown"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    torch_line = f"torch {torch.__version__} (fp32 linear: {linear_kernel_name()})"
    return f"{cpu} ({cpu_features()}), {os.cpu_count()} CPU cores, {threads} threads, {torch_line}, {accelerator}, {when}, {load}"


def _machine(threads: int) -> str:
    return machine_line(threads)


def format_report(report: BenchReport) -> str:
    """The report as a markdown table plus the facts needed to read it."""
    shapes = ", ".join(f"{k} {v}" for k, v in report.shapes.items())
    lines = [
        f"preset {report.preset} ({shapes}), random weights; {report.num_texts} texts from {report.data} "
        f"(mean {report.mean_tokens:.1f} tokens, max {report.max_tokens}); tokenizer: {report.tokenizer}",
        f"machine: {report.machine}; t5cls batch_tokens={report.batch_tokens}; best of {report.repeat} runs per row",
        "",
        "| row | params | seq/s | x row 1 | peak MB | padding | GFLOP/s (real tokens) | % of matmul | agreement with row 3 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report.rows:
        agree = "" if r.agreement is None else f"{r.agreement:.1%} (max prob diff {r.max_proba_diff:.4f})"
        lines.append(
            f"| {r.row}. {r.name} | {r.params / 1e6:.1f}M | {r.seq_per_s:.1f} | {r.ratio:.2f}x | {r.peak_mb:.0f} | "
            f"{r.padding:.1%} | {r.gflops:.1f} | {r.matmul_share:.0%} | {agree} |"
        )
    m, k, n = report.matmul_shape
    lines += [
        "",
        f"fp32 matmul on this machine, same threads: {report.matmul_gflops:.1f} GFLOP/s "
        f"(best: ({m} x {k}) @ ({k} x {n}); the model's FFN shape, {', '.join(map(str, MATMUL_ROWS))} rows, "
        "best of 10 runs each, measured before and after every row).",
        "GFLOP/s counts matmul FLOPs on real tokens only (padding is not useful work); int8 rows count the same "
        "operations. Peak MB: the row's process peak RSS above its baseline after imports (model + runtime + activations).",
        "Padding: padding tokens as a share of the tokens each batch holds. Row 3's encoder runs its linear layers "
        "on real tokens only (t5cls.packed), so its padding is seen by attention alone.",
    ]
    if report.export_seconds is not None:
        lines.append(f"ONNX export + int8 quantisation took {report.export_seconds:.1f} s (once, not in the timings).")
    return "\n".join(lines)


__all__ = [
    "SHAPE_PRESETS",
    "AG_NEWS_LABELS",
    "TWENTY_LABELS",
    "SCORING_TEMPLATE",
    "ROWS",
    "BenchReport",
    "RowResult",
    "run_benchmark",
    "format_report",
    "model_flops",
    "measure_matmul_gflops",
    "peak_matmul_gflops",
    "load_texts",
    "default_data_file",
    "default_tokenizer_dir",
    "machine_line",
    "rerank_inputs",
    "RERANK_TEMPLATE",
]
