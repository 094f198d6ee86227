"""`t5cls serve` under load: micro-batched vs batching off (issue 7).

A t5-small-shaped classifier with random weights (3 labels) is served by ``t5cls serve`` in a
subprocess on 127.0.0.1, twice: with the default micro-batching, and with ``--max-batch-size 1``
(every request its own model call). Each time, ``--clients`` concurrent HTTP clients (aiohttp or
httpx, asyncio, in this process) send single texts until ``--requests`` are answered: SST-2 sentences
(median 28 tokens) and AG News articles (median 45 tokens). Reported: requests/s, p50 and p99
latency, the mean batch size the server saw (from ``/health``) and the CPU time the load generator
itself spent per request (it shares the server's cores). Every answer is checked against the
in-process ``Classifier``. Loopback traffic only.

Usage:
    pip install -e ".[serve,bench]"
    flock /tmp/t5cls-bench.lock python benchmarks/bench_server.py [--requests 320] [--clients 16] [--data sst2,agnews] [--load-generator httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import torch
from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

import t5cls
from t5cls.bench import SHAPE_PRESETS, machine_line
from t5cls.convert import save_classifier
from t5cls.inputs import iter_texts

SHARED = Path(__file__).resolve().parents[2] / "shared"
LABELS = ["world", "sports", "business"]
STARTUP_TIMEOUT_S = 180


DATA = {"sst2": ("sst2/test.tsv", "sentence"), "agnews": ("agnews/train.tsv", "text")}


def read_texts(n: int, data: str = "agnews") -> list[str]:
    file, column = DATA[data]
    path = SHARED / "data" / file
    if not path.is_file():
        sys.exit(f"{path} is missing: the benchmark reads real texts from ../shared.")
    return list(itertools.islice(iter_texts(path, text_column=column), n))


def build_classifier(out: Path, preset: str = "t5-small") -> Path:
    torch.manual_seed(0)
    seq2seq = T5ForConditionalGeneration(T5Config(vocab_size=32128, **SHAPE_PRESETS[preset])).eval()
    model = t5cls.T5ForClassification.from_t5(seq2seq, labels=LABELS)
    return save_classifier(model, out, tokenizer=AutoTokenizer.from_pretrained(str(SHARED / "tokenizers" / "t5")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, port: int, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "t5cls.cli", "serve", str(model_dir), "--port", str(port), "--no-access-log", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"t5cls serve exited: {process.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    sys.exit("t5cls serve did not start in time")


@asynccontextmanager
async def http_client(url: str, *, clients: int, generator: str) -> AsyncIterator[Callable[..., Awaitable[dict]]]:
    """``post(path, body) -> answer`` over ``clients`` keep-alive connections, with aiohttp or httpx.

    aiohttp by default: the load generator shares the server's cores, and aiohttp spends a fraction
    of httpx's CPU time per request (the table's "load generator CPU" column shows both).
    """
    if generator == "httpx":
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def post(path: str, body: dict) -> dict:
                response = await client.post(path, json=body)
                response.raise_for_status()
                return response.json()

            yield post
        return
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def post(path: str, body: dict) -> dict:
            async with session.post(path, json=body) as response:
                response.raise_for_status()
                return await response.json()

        yield post


async def load(
    url: str, texts: list[str], *, requests: int, clients: int, generator: str
) -> tuple[float, list[float], dict[int, list]]:
    """``clients`` concurrent loops sending single texts; returns (seconds, latencies, answers)."""
    jobs = iter(range(requests))
    latencies: list[float] = []
    answers: dict[int, list] = {}
    async with http_client(url, clients=clients, generator=generator) as post:

        async def one_client() -> None:
            for job in jobs:
                start = time.perf_counter()
                body = await post("/v1/classify", {"inputs": texts[job % len(texts)]})
                latencies.append(time.perf_counter() - start)
                answers[job] = body["results"][0]

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return time.perf_counter() - start, latencies, answers


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batching_gain(classifier: t5cls.Classifier, texts: list[str], *, batch: int) -> dict:
    """In-process, no HTTP: median ms per text alone and in batches of ``batch``, and their ratio.

    What merging requests can gain at most on this machine: the server's micro-batched vs
    batching-off ratio cannot exceed it by much (only HTTP cost per model call adds to it).
    """
    classifier.predict_proba(texts[:batch])  # warm-up

    def median_ms(calls: list[list[str]]) -> float:
        times = []
        for call in calls:
            start = time.perf_counter()
            classifier.predict_proba(call)
            times.append((time.perf_counter() - start) / len(call))
        return float(np.median(times)) * 1000

    alone = median_ms([[text] for text in texts[:64]])
    batched = median_ms([texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)])
    return {"alone_ms": alone, "batched_ms": batched, "gain": alone / batched}


def run_mode(model_dir: Path, texts: list[str], expected: np.ndarray, extra: list[str], args: argparse.Namespace) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(model_dir, port, extra)
    try:
        send = functools.partial(load, url, texts, clients=args.clients, generator=args.load_generator)
        asyncio.run(send(requests=2 * args.clients))  # warm-up
        before = httpx.get(f"{url}/health").json()["batching"]["classify"]
        cpu_before = cpu_seconds()
        seconds, latencies, answers = asyncio.run(send(requests=args.requests))
        client_cpu = cpu_seconds() - cpu_before
        after = httpx.get(f"{url}/health").json()["batching"]["classify"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    worst = max(
        float(np.abs(np.array([{e["label"]: e["score"] for e in answer}[label] for label in LABELS]) - expected[job % len(texts)]).max())
        for job, answer in answers.items()
    )
    # bf16 (CUDA): a text's probabilities move with the batch it shares, by up to about 1e-2.
    tolerance = 1e-4 if args.dtype in (None, "float32") else 3e-2
    if worst > tolerance:
        sys.exit(f"server answers differ from the in-process Classifier by {worst:.2e}")
    batches = after["batches"] - before["batches"]
    return {
        "rps": args.requests / seconds,
        "p50": float(np.percentile(latencies, 50)) * 1000,
        "p99": float(np.percentile(latencies, 99)) * 1000,
        "mean_batch": (after["inputs"] - before["inputs"]) / max(batches, 1),
        "worst_diff": worst,
        "client_cpu_ms": client_cpu / args.requests * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320, help="timed requests per server and data set")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--texts", type=int, default=200, help="distinct texts cycled through")
    parser.add_argument("--data", default="sst2,agnews", help=f"comma-separated, from {sorted(DATA)}")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the micro-batched server's --max-wait-ms")
    parser.add_argument(
        "--load-generator", choices=["aiohttp", "httpx"], default="aiohttp", help="the HTTP client the load is sent with"
    )
    parser.add_argument("--threads", type=int, help="both servers' --threads (default: t5cls serve's)")
    parser.add_argument("--size", choices=["small", "tiny"], default="small", help="t5-small shapes, or tiny for a dry run")
    parser.add_argument("--device", help="both servers' --device (default: t5cls serve's: cuda when available)")
    parser.add_argument("--dtype", help="both servers' --dtype (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--out", type=Path, help="also append the tables to this file")
    args = parser.parse_args()

    common = ["--threads", str(args.threads)] if args.threads else []
    common += [flag for name in ("device", "dtype") if getattr(args, name) for flag in (f"--{name}", getattr(args, name))]
    modes = [
        ("micro-batched", ["--max-wait-ms", str(args.max_wait_ms), *common]),
        ("batching off (batch of 1)", ["--max-batch-size", "1", *common]),
    ]
    results: dict[tuple[str, str], dict] = {}
    gains: dict[str, dict] = {}
    if args.threads:
        torch.set_num_threads(args.threads)  # the in-process measurement runs as the servers do
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_classifier(Path(tmp) / "classifier", "tiny" if args.size == "tiny" else "t5-small")
        classifier = t5cls.Classifier(model_dir, device=args.device, dtype=args.dtype)
        for data in args.data.split(","):
            texts = read_texts(args.texts, data)
            expected = classifier.predict_proba(texts)
            gains[data] = batching_gain(classifier, texts, batch=args.clients)
            for name, extra in modes:
                results[data, name] = run_mode(model_dir, texts, expected, extra, args)
                print(f"{data} / {name}: {results[data, name]['rps']:.1f} requests/s", file=sys.stderr, flush=True)

    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text)
        lines.extend(text.splitlines() or [""])

    emit(
        f"\n`t5cls serve`, {'tiny' if args.size == 'tiny' else 't5-small'} shapes (random weights, 3 labels), {args.clients} concurrent clients, "
        f"{args.requests} single-text requests per row, loopback, {args.load_generator} load generator\n"
    )
    emit("| texts | server | requests/s | p50 latency | p99 latency | mean batch | load generator CPU | vs batching off |")
    emit("|---|---|---:|---:|---:|---:|---:|---:|")
    for (data, name), r in results.items():
        base = results[data, modes[1][0]]["rps"]
        emit(
            f"| {data} | {name} | {r['rps']:.1f} | {r['p50']:.0f} ms | {r['p99']:.0f} ms | {r['mean_batch']:.1f} | "
            f"{r['client_cpu_ms']:.2f} ms/request | "
            f"{r['rps'] / base:.2f}x |"
        )
    emit(
        f"\nThe same model in-process (no HTTP, {torch.get_num_threads()} threads), the most that merging "
        f"{args.clients} requests can gain:\n"
    )
    emit(f"| texts | one text alone | per text in batches of {args.clients} | in-process gain | served gain |")
    emit("|---|---:|---:|---:|---:|")
    for data, g in gains.items():
        served = results[data, modes[0][0]]["rps"] / results[data, modes[1][0]]["rps"]
        emit(f"| {data} | {g['alone_ms']:.1f} ms | {g['batched_ms']:.1f} ms | {g['gain']:.2f}x | {served:.2f}x |")
    worst = max(r["worst_diff"] for r in results.values())
    emit(f"\nall answers equal the in-process Classifier (max |diff| {worst:.1e})")
    emit(f"machine: {machine_line()}, Python {platform.python_version()}")
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
