"""The HTTP server: a real uvicorn on 127.0.0.1 at a free port, real httpx clients, real model.

The module's server runs in a thread (one model load for most tests); one test starts
``t5cls serve`` in a subprocess to check the CLI and graceful shutdown on SIGTERM. The
micro-batcher is also tested directly with plain functions.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch

from t5cls import Classifier
from t5cls.server import create_app
from tests.conftest import int8_has_vnni, sample_texts

# int8 (ONNX Runtime) against fp32 on the tiny models: 0.1 with VNNI, 0.2 without (see conftest.int8_has_vnni; 0.105 once on an AVX2 EPYC).
INT8_ATOL = 0.1 if int8_has_vnni() else 0.2

LIMITS = dict(max_inputs=8, max_chars=300, max_body_bytes=4096)
STARTUP_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadServer:
    """uvicorn serving ``app`` in a background thread on a free loopback port."""

    def __init__(self, app, *, startup_timeout_s: float = STARTUP_TIMEOUT_S):
        self.startup_timeout_s = startup_timeout_s
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [text[:250] for text in sample_texts(24)]


@pytest.fixture(scope="module")
def classifier(tiny_classifier_dir) -> Classifier:
    return Classifier(tiny_classifier_dir)


@pytest.fixture(scope="module")
def server(tiny_classifier_dir):
    app = create_app(tiny_classifier_dir, max_wait_ms=20, **LIMITS)
    with ThreadServer(app) as running:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            yield client


def _scores(result: list[dict], labels: list[str]) -> np.ndarray:
    by_label = {entry["label"]: entry["score"] for entry in result}
    return np.array([by_label[label] for label in labels])


# --- answers ---------------------------------------------------------------------------------


def test_classify_equals_in_process_classifier(server, classifier, texts):
    response = server.post("/v1/classify", json={"inputs": texts[:8]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    expected = classifier.predict_proba(texts[:8])
    assert len(results) == 8
    for result, row in zip(results, expected):
        scores = [entry["score"] for entry in result]
        assert scores == sorted(scores, reverse=True)  # best first
        np.testing.assert_allclose(_scores(result, classifier.labels), row, atol=1e-5)

    single = server.post("/v1/classify", json={"inputs": texts[0], "top_k": 2}).json()["results"]
    assert len(single) == 1 and len(single[0]) == 2
    assert single[0][0]["label"] == classifier.predict(texts[0])


def test_classify_text_pairs(server, classifier, texts):
    pairs = [(texts[0][:100], texts[1][:100]), (texts[2][:100], texts[3][:100])]
    response = server.post("/v1/classify", json={"inputs": [list(p) for p in pairs]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    for result, row in zip(results, classifier.predict_proba(pairs)):
        np.testing.assert_allclose(_scores(result, classifier.labels), row, atol=1e-5)


def test_model_health_and_docs(server, classifier):
    model = server.get("/v1/model").json()
    assert model["labels"] == classifier.labels == ["negative", "neutral", "positive"]
    assert model["problem_type"] == "single_label_classification"
    assert model["kind"] == "classifier" and model["parameters"] > 0 and model["d_model"] == 32
    assert model["threads"] == torch.get_num_threads()
    assert "POST /v1/classify" in model["endpoints"] and "POST /v1/score" not in model["endpoints"]
    assert model["settings"]["max_inputs"] == LIMITS["max_inputs"]
    assert server.get("/health").json()["status"] == "ok"
    assert server.get("/docs").status_code == 200
    paths = server.get("/openapi.json").json()["paths"]
    assert "/v1/classify" in paths and "/v1/score" not in paths and "/v1/zero-shot" not in paths
    assert server.post("/v1/zero-shot", json={"inputs": "x", "candidate_labels": ["a"]}).status_code == 404


def test_16_concurrent_clients_400_requests(server, classifier, texts):
    expected = classifier.predict_proba(texts)
    url = str(server.base_url)

    async def client_loop(jobs: list[int]) -> list[tuple[int, list]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            answers = []
            for job in jobs:
                response = await client.post("/v1/classify", json={"inputs": texts[job % len(texts)]})
                assert response.status_code == 200, response.text
                answers.append((job, response.json()["results"][0]))
            return answers

    async def main() -> list[tuple[int, list]]:
        jobs = list(range(400))
        per_client = await asyncio.gather(*(client_loop(jobs[c::16]) for c in range(16)))
        return [answer for answers in per_client for answer in answers]

    before = server.get("/health").json()["batching"]["classify"]
    answers = asyncio.run(asyncio.wait_for(main(), timeout=300))
    assert len(answers) == 400
    for job, result in answers:
        np.testing.assert_allclose(_scores(result, classifier.labels), expected[job % len(texts)], atol=1e-5)
    after = server.get("/health").json()["batching"]["classify"]
    assert after["requests"] - before["requests"] == 400
    assert after["batches"] - before["batches"] < 400  # concurrent requests were merged
    assert after["failed_requests"] == before["failed_requests"]


# --- bad input -------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}
BAD_REQUESTS = [
    # (id, request kwargs, status, words the message must contain)
    ("malformed-json", dict(content=b'{"inputs": ["a"', headers=JSON), 400, "not valid JSON"),
    ("not-json", dict(content=b"hello", headers={"content-type": "text/plain"}), 422, "must be JSON"),
    ("no-body", dict(), 422, "body is missing"),
    ("array-body", dict(json=["a"]), 422, "must be a JSON object"),
    ("missing-inputs", dict(json={"top_k": 1}), 422, "inputs: Field required"),
    ("inputs-number", dict(json={"inputs": 5}), 422, "inputs: must be a string or an array of strings, got a number"),
    ("item-null", dict(json={"inputs": ["ok", None]}), 422, "item 1 is null"),
    ("empty-list", dict(json={"inputs": []}), 422, "inputs: the list is empty"),
    ("empty-string", dict(json={"inputs": ["fine", "  "]}), 422, "item 1 is an empty string"),
    ("mixed-pairs", dict(json={"inputs": ["a", ["b", "c"]]}), 422, "mixes single texts and [text, text_pair] pairs"),
    ("top-k-string", dict(json={"inputs": "a", "top_k": "2"}), 422, "top_k: Input should be a valid integer"),
    ("top-k-zero", dict(json={"inputs": "a", "top_k": 0}), 422, "top_k: Input should be greater than or equal to 1"),
    ("unknown-field", dict(json={"input": "a"}), 422, "input: unknown field"),
    ("too-many-inputs", dict(json={"inputs": ["a"] * 9}), 413, "at most 8 per request (max_inputs"),
    ("too-long-input", dict(json={"inputs": ["a", "b" * 301]}), 413, "inputs[1] has 301 characters; this server takes at most 300"),
    ("body-too-large", dict(json={"inputs": ["a" * 5000]}), 413, "at most 4,096 (max_body_bytes"),
]


@pytest.mark.parametrize("kwargs,status,words", [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_input_gets_clear_4xx(server, kwargs, status, words):
    response = server.post("/v1/classify", **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert server.get("/health").json()["status"] == "ok"


def test_streamed_body_over_limit_is_refused(server):
    def chunks():  # no Content-Length: the server must count what arrives
        yield b'{"inputs": ["'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"]}'

    response = server.post("/v1/classify", content=chunks(), headers=JSON)
    assert response.status_code == 413 and "max_body_bytes" in response.json()["detail"]
    assert server.post("/v1/classify", json={"inputs": "still fine"}).status_code == 200


def test_create_app_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        create_app(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    with pytest.raises(ValueError, match="holds a 'bert' model"):
        create_app(tmp_path)
    # What `t5cls export` writes: config, tokenizer and model.onnx, no torch weights.
    (tmp_path / "config.json").write_text('{"model_type": "t5cls", "architectures": ["T5ForClassification"]}')
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="is an ONNX export"):
        create_app(tmp_path)


def test_create_app_refuses_bad_limits(tiny_classifier_dir):
    with pytest.raises(ValueError, match="max_inputs=0"):
        create_app(tiny_classifier_dir, max_inputs=0)
    with pytest.raises(ValueError, match="max_batch_size=0"):
        create_app(tiny_classifier_dir, max_batch_size=0)
    with pytest.raises(ValueError, match="threads=0"):
        create_app(tiny_classifier_dir, threads=0)


# --- zero-shot (NLI classifier) and label scoring (seq2seq T5) ---------------------------------


def _post_concurrently(url: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    async def main():
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await asyncio.gather(*(client.post(path, json=body) for body in bodies))

    return asyncio.run(asyncio.wait_for(main(), timeout=300))


def test_zero_shot_endpoint_equals_in_process(tiny_nli_dir, texts):
    from t5cls.zero_shot import ZeroShotClassifier

    zero_shot = ZeroShotClassifier(tiny_nli_dir)
    label_sets = [["sports", "politics", "business"], ["science", "world"], ["sports", "world"]]
    bodies = [
        {"inputs": texts[i : i + 2], "candidate_labels": labels, "multi_label": i == 2}
        for i, labels in enumerate(label_sets)
    ]
    with ThreadServer(create_app(tiny_nli_dir, max_wait_ms=50, **LIMITS)) as running:
        responses = _post_concurrently(running.url, "/v1/zero-shot", bodies)  # merged: labels differ per text
        for body, response in zip(bodies, responses):
            assert response.status_code == 200, response.text
            expected = zero_shot(body["inputs"], body["candidate_labels"], multi_label=body["multi_label"])
            for got, want in zip(response.json()["results"], expected):
                assert got["labels"] == want["labels"] and got["label"] == want["label"]
                np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
        with httpx.Client(base_url=running.url, timeout=60) as client:
            comma = client.post("/v1/zero-shot", json={"inputs": texts[0], "candidate_labels": "sports, world", "threshold": 0.99})
            assert comma.status_code == 200 and comma.json()["results"][0]["labels"][0] in ("sports", "world")
            assert comma.json()["results"][0]["label"] is None  # two labels never reach 0.99 here
            bad = client.post("/v1/zero-shot", json={"inputs": "x", "candidate_labels": ["a", "b"], "hypothesis_template": "no slot"})
            assert bad.status_code == 422 and "has no '{}'" in bad.json()["detail"]
            repeated = client.post("/v1/zero-shot", json={"inputs": "x", "candidate_labels": ["a", "a"]})
            assert repeated.status_code == 422 and "repeated label" in repeated.json()["detail"]
            too_many = client.post("/v1/zero-shot", json={"inputs": "x", "candidate_labels": [str(i) for i in range(9)]})
            assert too_many.status_code == 413 and "candidate_labels has 9 items" in too_many.json()["detail"]
            assert client.post("/v1/classify", json={"inputs": [["premise", "hypothesis"]]}).status_code == 200
            model = client.get("/v1/model").json()
            assert "POST /v1/zero-shot" in model["endpoints"] and model["labels"][0] == "entailment"
            assert client.get("/health").json()["status"] == "ok"


def test_score_endpoint_equals_in_process(tiny_t5_dir, texts):
    from t5cls.scoring import LabelScorer

    template = "sst2 sentence: {text}"
    requests = [(["positive", "negative"], template), (["positive", "negative"], template), (["yes", "no", "maybe so"], "{text}")]
    bodies = [{"inputs": texts[i : i + 2], "labels": labels, "template": t} for i, (labels, t) in enumerate(requests)]
    with ThreadServer(create_app(tiny_t5_dir, max_wait_ms=50, **LIMITS)) as running:
        responses = _post_concurrently(running.url, "/v1/score", bodies)
        for body, response in zip(bodies, responses):
            assert response.status_code == 200, response.text
            scorer = LabelScorer(tiny_t5_dir, labels=body["labels"], template=body["template"], show_progress_bar=False)
            for got, row in zip(response.json()["results"], scorer.predict_proba(body["inputs"])):
                by_label = dict(zip(got["labels"], got["scores"]))
                np.testing.assert_allclose([by_label[label] for label in body["labels"]], row, atol=1e-5)
                assert got["label"] == got["labels"][0]
                np.testing.assert_allclose(got["entropy"], -(row * np.log(row)).sum(), atol=1e-5)
        with httpx.Client(base_url=running.url, timeout=60) as client:
            one = client.post("/v1/score", json={"inputs": "x", "labels": ["positive"]})
            assert one.status_code == 422 and "at least 2 labels" in one.json()["detail"]
            assert client.post("/v1/classify", json={"inputs": "x"}).status_code == 404
            model = client.get("/v1/model").json()
            assert model["kind"] == "seq2seq" and {"POST /v1/score", "POST /rerank", "POST /v1/rerank", "POST /v2/rerank"} <= set(model["endpoints"])
            assert client.get("/health").json()["status"] == "ok"


# --- int8 on every route ------------------------------------------------------------------------


def test_int8_classify_and_zero_shot_run_on_onnx_runtime(tiny_nli_dir, texts):
    # A torch directory: exported and quantised at start-up; answers follow the fp32 model closely.
    from t5cls.zero_shot import ZeroShotClassifier

    fp32_clf, fp32_zs = Classifier(tiny_nli_dir), ZeroShotClassifier(tiny_nli_dir)
    # The ONNX export runs at start-up: seconds on a quiet machine, minutes on a loaded one.
    with ThreadServer(create_app(tiny_nli_dir, int8=True, max_wait_ms=5, **LIMITS), startup_timeout_s=600) as running:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            model = client.get("/v1/model").json()
            assert model["quantize"] == "int8" and model["dtype"] == "int8 (ONNX Runtime)"
            got = client.post("/v1/classify", json={"inputs": texts[:4], "top_k": None}).json()["results"]
            for ranked, row in zip(got, fp32_clf.predict_proba(texts[:4])):
                by_label = {r["label"]: r["score"] for r in ranked}
                # Tiny random weights with a N(0, 1) head: int8 rounding moves a probability by up to ~0.05.
                np.testing.assert_allclose([by_label[label] for label in fp32_clf.labels], row, atol=INT8_ATOL)
            labels = ["sports", "politics", "business"]
            got = client.post("/v1/zero-shot", json={"inputs": texts[:3], "candidate_labels": labels}).json()["results"]
            for result, want in zip(got, fp32_zs(texts[:3], labels)):
                by_label = dict(zip(result["labels"], result["scores"]))
                np.testing.assert_allclose([by_label[label] for label in want["labels"]], want["scores"], atol=INT8_ATOL)


def test_int8_score_runs_on_int8_linear_layers(tiny_t5_dir, texts):
    from t5cls.scoring import LabelScorer

    labels = ["positive", "negative"]
    expected = LabelScorer(tiny_t5_dir, labels=labels, quantize="int8", show_progress_bar=False).predict_proba(texts[:3])
    with ThreadServer(create_app(tiny_t5_dir, int8=True, **LIMITS)) as running:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            assert client.get("/v1/model").json()["quantize"] == "int8"
            got = client.post("/v1/score", json={"inputs": texts[:3], "labels": labels}).json()["results"]
    for result, row in zip(got, expected):
        by_label = dict(zip(result["labels"], result["scores"]))
        # int8 activations are quantised per call: a merged batch may round a little differently.
        np.testing.assert_allclose([by_label[label] for label in labels], row, atol=0.02)


def test_int8_refuses_a_gpu_or_another_dtype(tiny_t5_dir):
    with pytest.raises(ValueError, match="int8 runs on CPU"):
        create_app(tiny_t5_dir, int8=True, device="cuda")
    with pytest.raises(ValueError, match="Leave --dtype unset"):
        create_app(tiny_t5_dir, int8=True, dtype="bfloat16")


# --- the CLI in a subprocess: startup, answers, graceful shutdown -----------------------------


def test_serve_cli_finishes_in_flight_requests_on_sigterm(tiny_classifier_dir, classifier, texts):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # A long wait keeps the requests queued in the server when SIGTERM arrives.
    command = ["t5cls", "serve", str(tiny_classifier_dir), "--port", str(port), "--max-wait-ms", "1000"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "t5cls serve did not start"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)

        def post(text: str) -> httpx.Response:
            return httpx.post(f"{url}/v1/classify", json={"inputs": text}, timeout=60)

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(post, text) for text in texts[:4]]
            while httpx.get(f"{url}/health", timeout=5).json()["queued"] < 4:
                assert time.monotonic() < deadline + 30, "requests never reached the server"
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            responses = [future.result(timeout=60) for future in futures]
        # uvicorn re-raises the signal once shut down, so the process ends "killed by SIGTERM".
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        log = process.stdout.read()
        assert "Application shutdown complete" in log, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for response, row in zip(responses, classifier.predict_proba(texts[:4])):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(_scores(response.json()["results"][0], classifier.labels), row, atol=1e-5)


def test_serve_cli_bad_model_dir_is_one_line(tmp_path, capsys):
    from t5cls.cli import main

    assert main(["serve", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "t5cls serve: error:" in err and "does not exist" in err and "Traceback" not in err
