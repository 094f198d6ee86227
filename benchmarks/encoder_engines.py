"""Which engine runs the T5 encoder fastest on this CPU: torch padded, torch packed (on MKL or oneDNN), or ONNX Runtime.

The encoder is nearly all of the Reranker's and of LabelScorer's work at few labels, and fp32
matrix products differ by engine and CPU: on AMD EPYCs ONNX Runtime's MatMul (MLAS) and oneDNN
outran torch's default (MKL), which is what ``t5cls.cpu_linear`` acts on. This script measures both
levels on one machine, in one run:

- ``gemm``: the fp32 rate of one (tokens x d_model) @ (d_model x d_ff) product, the encoder's
  largest, in torch's ``F.linear`` (MKL), in torch's oneDNN linear (``t5cls.cpu_linear``) and in a
  one-node ONNX Runtime graph;
- ``encoder``: the encoder over the Reranker benchmark's prompts (``bench_rerank.py``: queries x
  AG News documents, monoT5 template), in length-sorted token-budget batches as the Reranker makes
  them: transformers' padded forward, t5cls's packed forward (real tokens only, what LabelScorer
  and the Reranker run) with its linear layers on MKL and on oneDNN, and ONNX Runtime on the
  encoder exported in the run (padded; its graph has no packed form).

Each row runs in its own fresh process (engines' idle threads must not share the cores), one after
the other; the encoder rows are checked against transformers' forward (1e-4 at real tokens) before
any time is printed. Best of ``--repeats``.

    flock /tmp/t5cls-bench.lock python benchmarks/encoder_engines.py --repeats 3
    python benchmarks/encoder_engines.py --queries 2 --documents 3 --preset tiny     # smoke run
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from t5cls.bench import RERANK_TEMPLATE as TEMPLATE
from t5cls.bench import SHAPE_PRESETS, default_data_file, default_tokenizer_dir, machine_line, rerank_inputs
from t5cls.cpu_linear import OneDNNLinear, onednn_available

TOLERANCE = 1e-4
ROWS = {
    "padded": "torch, transformers' padded encoder forward",
    "packed": "torch, t5cls.packed (real tokens only), linear layers on MKL",
    "packed-onednn": "torch, t5cls.packed (real tokens only), linear layers on oneDNN (t5cls.cpu_linear)",
    "onnx": "ONNX Runtime, the encoder exported in this run (padded)",
}
GEMM_ENGINES = {"torch": "torch F.linear (MKL)", "onednn": "torch oneDNN linear", "onnxruntime": "ONNX Runtime"}
GEMM_ROWS = 4096


def _best(run: Any, repeats: int) -> tuple[float, list[float]]:
    run()  # warm-up: one-time allocations and kernel choices stay out of the timings
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), times


class _EncoderOnly(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_encoder(model: Any, path: Path) -> None:
    """``(input_ids, attention_mask) -> last_hidden_state`` as ONNX, dynamic batch and length (torch's dynamo exporter)."""
    from t5cls.export import _quiet_exporter

    model.set_attn_implementation("eager")  # the exporter cannot trace the SDPA path's views
    input_ids = torch.full((2, 8), 5, dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0  # one padded row, so the mask path is the one traced
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with _quiet_exporter():
        program = torch.onnx.export(
            _EncoderOnly(model.get_encoder()).eval(),
            (input_ids, attention_mask),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_shapes={"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))


def _ort_session(model: Any, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _gemm_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: the rate of one fp32 product in torch or in ONNX Runtime."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    m, k, n = GEMM_ROWS, spec["d_model"], spec["d_ff"]
    x, weight = torch.randn(m, k), torch.randn(n, k)
    if spec["engine"] in ("torch", "onednn"):
        kernel = OneDNNLinear if spec["engine"] == "onednn" else contextlib.nullcontext

        def run() -> Any:
            with torch.inference_mode(), kernel():
                return torch.nn.functional.linear(x, weight)
    else:
        from onnx import TensorProto, helper, numpy_helper

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n])],
            [numpy_helper.from_array(weight.T.contiguous().numpy(), "w")],
        )
        session = _ort_session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString(), spec["threads"])
        feed = {"x": x.numpy()}

        def run() -> Any:
            return session.run(None, feed)

    def many() -> None:
        for _ in range(10):
            run()

    seconds, _ = _best(many, spec["repeats"])
    return {"gflops": 10 * 2 * m * k * n / seconds / 1e9}


def _encoder_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: load the weights from disk, check one batch, time the encoder over every batch."""
    torch.set_num_threads(spec["threads"])
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    from t5cls.allocator import tune_malloc
    from t5cls.batching import PACKED_PADDING_COST, min_padding_batches
    from t5cls.packed import packed_encoder_forward

    tune_malloc()  # as every t5cls job on CPU does
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    model = T5ForConditionalGeneration.from_pretrained(spec["model"]).eval()
    encoder = model.get_encoder()
    encoded = tokenizer(spec["prompts"])["input_ids"]
    groups = min_padding_batches(
        [len(ids) for ids in encoded], batch_tokens=spec["batch_tokens"], padding_cost=PACKED_PADDING_COST if spec["row"].startswith("packed") else 1.0
    )
    batches = [tokenizer.pad({"input_ids": [encoded[i] for i in group]}, return_tensors="pt") for group in groups]
    if spec["row"] == "onnx":
        session = _ort_session(str(Path(spec["model"]) / "encoder.onnx"), spec["threads"])
        feeds = [{"input_ids": b["input_ids"].numpy(), "attention_mask": b["attention_mask"].numpy()} for b in batches]

        def forward(i: int) -> torch.Tensor:
            return torch.from_numpy(session.run(None, feeds[i])[0])
    else:
        kernel = OneDNNLinear if spec["row"] == "packed-onednn" else contextlib.nullcontext

        def forward(i: int) -> torch.Tensor:
            with torch.inference_mode(), kernel():
                if spec["row"].startswith("packed"):
                    return packed_encoder_forward(encoder, batches[i]["input_ids"], batches[i]["attention_mask"])
                return encoder(**batches[i]).last_hidden_state

    with torch.inference_mode():  # the check: the longest batch against transformers' own forward
        longest = max(range(len(batches)), key=lambda i: batches[i]["input_ids"].shape[1])
        reference = encoder(**batches[longest]).last_hidden_state
    real = batches[longest]["attention_mask"].bool()
    diff = float((forward(longest)[real] - reference[real]).abs().max())
    seconds, times = _best(lambda: [forward(i) for i in range(len(batches))], spec["repeats"])
    positions = sum(b["input_ids"].numel() for b in batches) if not spec["row"].startswith("packed") else sum(map(len, encoded))
    return {"seconds": seconds, "all_seconds": times, "diff": diff, "batches": len(batches), "positions": positions}


def _in_subprocess(worker: Any, spec: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(worker, spec).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--documents", type=int, default=20, help="documents per query")
    parser.add_argument("--preset", choices=sorted(SHAPE_PRESETS), default="t5-small", help="model shapes (tiny: smoke runs)")
    parser.add_argument("--repeats", type=int, default=3, help="time each row this many times, keep the best")
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: torch's choice)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="token budget per batch (default: the Reranker's)")
    args = parser.parse_args(argv)
    threads = args.threads or torch.get_num_threads()
    data, tokenizer_dir = default_data_file(), default_tokenizer_dir()
    if data is None or tokenizer_dir is None:
        sys.exit("This benchmark needs ../shared (AG News texts and the T5 vocabulary).")

    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from t5cls.batching import DEFAULT_BATCH_TOKENS

    shapes = SHAPE_PRESETS[args.preset]
    # Rows on oneDNN only where this torch build has it.
    engines = [engine for engine in GEMM_ENGINES if engine != "onednn" or onednn_available()]
    rows = {row: text for row, text in ROWS.items() if row != "packed-onednn" or onednn_available()}
    queries, lists = rerank_inputs(args.queries, args.documents, data)  # bench_rerank.py's prompts
    prompts = [TEMPLATE.format(query=q, document=d) for q, docs in zip(queries, lists) for d in docs]
    gemm = {
        engine: _in_subprocess(_gemm_worker, {"engine": engine, "threads": threads, "repeats": args.repeats, **shapes})["gflops"]
        for engine in engines
    }
    with tempfile.TemporaryDirectory(prefix="t5cls-bench-encoder-") as work:
        torch.manual_seed(0)
        config = T5Config(vocab_size=32128, tie_word_embeddings=True, decoder_start_token_id=0, **shapes)
        model = T5ForConditionalGeneration(config).eval()
        model.save_pretrained(work)
        AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(work)
        export_encoder(model, Path(work) / "encoder.onnx")
        base = {"model": work, "prompts": prompts, "threads": threads, "repeats": args.repeats, "batch_tokens": args.batch_tokens or DEFAULT_BATCH_TOKENS}
        results = {row: _in_subprocess(_encoder_worker, {**base, "row": row}) for row in rows}

    wrong = {row: r["diff"] for row, r in results.items() if not r["diff"] <= TOLERANCE}
    if wrong:
        sys.exit(f"encoder outputs differ from transformers' forward by more than {TOLERANCE}: {wrong}")
    lines = [
        f"{args.preset} shapes ({', '.join(f'{k} {v}' for k, v in shapes.items())}), random weights, fp32; {len(prompts)} prompts "
        f"({len(queries)} queries x {args.documents} AG News documents, template {TEMPLATE!r}); batch_tokens={base['batch_tokens']}; "
        f"best of {args.repeats}, each row in its own process",
        f"machine: {machine_line(threads)}",
        f"gemm ({GEMM_ROWS} x {shapes['d_model']}) @ ({shapes['d_model']} x {shapes['d_ff']}), fp32: "
        + ", ".join(f"{GEMM_ENGINES[e]} {gemm[e]:.0f} GFLOP/s ({gemm[e] / gemm['torch']:.2f}x)" for e in engines),
        "",
        "| encoder engine | batches | positions run | seconds | vs padded torch | max abs diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    padded = results["padded"]["seconds"]
    for row, description in rows.items():
        r = results[row]
        lines.append(f"| {description} | {r['batches']} | {r['positions']:,} | {r['seconds']:.2f} | {padded / r['seconds']:.2f}x | {r['diff']:.1e} |")
    lines.append("")
    lines.append("every timed run: " + "; ".join(f"{row} " + ", ".join(f"{t:.2f}" for t in results[row]["all_seconds"]) + " s" for row in rows))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
