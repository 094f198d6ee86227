"""The server's routes in other clients' formats, against a real uvicorn on 127.0.0.1 and httpx.

Hugging Face task format (``POST /``), text-embeddings-inference (``/predict``, ``/rerank``), Cohere
(``/v1/rerank``, ``/v2/rerank``), ``GET /`` and ``GET /metrics``: answers equal the in-process
``Classifier``, ``ZeroShotClassifier`` and ``Reranker``; bad input on every route is a 4xx that
names the field, and the server stays healthy. The real client libraries are in tests/e2e/.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from scipy.special import expit, softmax

from t5cls import Classifier
from t5cls.server import create_app
from tests.conftest import sample_texts
from tests.test_server import ThreadServer

LIMITS = dict(max_inputs=8, max_chars=300, max_body_bytes=1 << 16, max_documents=12)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [text[:250] for text in sample_texts(12)]


def _serve(model_dir):
    running = ThreadServer(create_app(model_dir, max_wait_ms=5, **LIMITS)).__enter__()
    client = httpx.Client(base_url=running.url, timeout=60)
    return running, client


@pytest.fixture(scope="module")
def classifier_server(tiny_classifier_dir):
    running, client = _serve(tiny_classifier_dir)
    yield client
    client.close()
    running.__exit__(None, None, None)


@pytest.fixture(scope="module")
def nli_server(tiny_nli_dir):
    running, client = _serve(tiny_nli_dir)
    yield client
    client.close()
    running.__exit__(None, None, None)


@pytest.fixture(scope="module")
def seq2seq_server(tiny_t5_dir):
    running, client = _serve(tiny_t5_dir)
    yield client
    client.close()
    running.__exit__(None, None, None)


def _by_label(result: list[dict]) -> dict[str, float]:
    return {entry["label"]: entry["score"] for entry in result}


def _best_first(result: list[dict], key: str = "score") -> None:
    scores = [entry[key] for entry in result]
    assert scores == sorted(scores, reverse=True)


# --- Hugging Face task format: POST / --------------------------------------------------------


def test_hf_text_classification_equals_classifier(classifier_server, tiny_classifier_dir, texts):
    classifier = Classifier(tiny_classifier_dir)
    one = classifier_server.post("/", json={"inputs": texts[0]})
    assert one.status_code == 200, one.text
    assert len(one.json()) == 1  # one list per input; huggingface_hub takes element 0
    _best_first(one.json()[0])
    np.testing.assert_allclose([_by_label(one.json()[0])[label] for label in classifier.labels], classifier.predict_proba([texts[0]])[0], atol=1e-5)

    batch = classifier_server.post("/", json={"inputs": texts[:3], "parameters": {"top_k": 2}}).json()
    assert [len(result) for result in batch] == [2, 2, 2]
    assert [result[0]["label"] for result in batch] == classifier.predict(texts[:3])

    logits = classifier.logits(texts[:2])
    for function, expected in (("none", logits), ("sigmoid", expit(logits)), ("softmax", softmax(logits, axis=-1))):
        answer = classifier_server.post("/", json={"inputs": texts[:2], "parameters": {"function_to_apply": function}}).json()
        for result, row in zip(answer, expected):
            np.testing.assert_allclose([_by_label(result)[label] for label in classifier.labels], row, atol=1e-5)

    refused = classifier_server.post("/", json={"inputs": "x", "parameters": {"candidate_labels": ["a", "b"]}})
    assert refused.status_code == 422 and "parameters.candidate_labels: unknown field" in refused.json()["detail"]


def test_hf_zero_shot_equals_zero_shot_classifier(nli_server, tiny_nli_dir, texts):
    from t5cls.zero_shot import ZeroShotClassifier

    zero_shot = ZeroShotClassifier(tiny_nli_dir)
    labels = ["sports", "politics", "business"]
    for multi_label in (False, True):
        body = {"inputs": texts[0], "parameters": {"candidate_labels": labels, "multi_label": multi_label, "hypothesis_template": "It is about {}."}}
        answer = nli_server.post("/", json=body)
        assert answer.status_code == 200, answer.text
        want = zero_shot(texts[0], labels, multi_label=multi_label, hypothesis_template="It is about {}.")
        assert [r["label"] for r in answer.json()] == want["labels"]  # one flat list for one text
        np.testing.assert_allclose([r["score"] for r in answer.json()], want["scores"], atol=1e-5)

    batch = nli_server.post("/", json={"inputs": texts[:2], "parameters": {"candidate_labels": "sports, world"}}).json()
    assert len(batch) == 2 and all(len(result) == 2 for result in batch)
    # Without candidate_labels, the NLI model classifies (entailment / neutral / contradiction).
    plain = nli_server.post("/", json={"inputs": texts[0]}).json()
    assert sorted(_by_label(plain[0])) == ["contradiction", "entailment", "neutral"]


def test_hf_route_on_seq2seq_names_the_routes_it_has(seq2seq_server):
    response = seq2seq_server.post("/", json={"inputs": "a text"})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "POST /v1/score" in detail and "POST /rerank" in detail and "POST /v1/rerank" in detail


# --- text-embeddings-inference: /predict, /rerank --------------------------------------------


def test_tei_predict_reads_inputs_as_tei_does(classifier_server, tiny_classifier_dir, texts):
    classifier = Classifier(tiny_classifier_dir)
    labels = classifier.labels
    single = classifier_server.post("/predict", json={"inputs": texts[0]}).json()
    _best_first(single)
    np.testing.assert_allclose([_by_label(single)[label] for label in labels], classifier.predict_proba([texts[0]])[0], atol=1e-5)
    pair = classifier_server.post("/predict", json={"inputs": [texts[0], texts[1]]}).json()  # two strings: one pair
    np.testing.assert_allclose([_by_label(pair)[label] for label in labels], classifier.predict_proba([(texts[0], texts[1])])[0], atol=1e-5)
    batch = classifier_server.post("/predict", json={"inputs": texts[:3], "raw_scores": True, "truncate": True, "truncation_direction": "Right"})
    assert batch.status_code == 200, batch.text
    for result, row in zip(batch.json(), classifier.logits(texts[:3])):
        np.testing.assert_allclose([_by_label(result)[label] for label in labels], row, atol=1e-5)
    pairs = classifier_server.post("/predict", json={"inputs": [[texts[0], texts[1]], [texts[2], texts[3]]]}).json()
    assert len(pairs) == 2


def test_tei_and_cohere_rerank_equal_reranker(seq2seq_server, tiny_t5_dir, texts):
    from t5cls import Reranker

    query, documents = "who won the game?", texts[:6]
    reranker = Reranker(tiny_t5_dir)
    expected = reranker.score([(query, document) for document in documents])
    order = list(np.argsort(-expected, kind="stable"))

    tei = seq2seq_server.post("/rerank", json={"query": query, "texts": documents, "return_text": True})
    assert tei.status_code == 200, tei.text
    assert [r["index"] for r in tei.json()] == order and tei.json()[0]["text"] == documents[order[0]]
    np.testing.assert_allclose([r["score"] for r in tei.json()], expected[order], atol=1e-5)
    raw = seq2seq_server.post("/rerank", json={"query": query, "texts": documents, "raw_scores": True}).json()
    np.testing.assert_allclose([r["score"] for r in raw], reranker.log_odds([(query, d) for d in documents])[order], atol=1e-5)
    assert "text" not in raw[0]

    objects = [{"text": d, "id": i} for i, d in enumerate(documents)]
    v1 = seq2seq_server.post("/v1/rerank", json={"query": query, "documents": objects, "top_n": 3, "return_documents": True})
    assert v1.status_code == 200, v1.text
    results = v1.json()["results"]
    assert [r["index"] for r in results] == order[:3]
    assert results[0]["document"] == {"text": documents[order[0]], "id": int(order[0])}  # other fields come back
    np.testing.assert_allclose([r["relevance_score"] for r in results], expected[order[:3]], atol=1e-5)

    v2 = seq2seq_server.post("/v2/rerank", json={"model": "any", "query": query, "documents": documents}).json()
    assert [r["index"] for r in v2["results"]] == order and "document" not in v2["results"][0]
    assert v2["meta"]["api_version"]["version"] == "2" and v2["id"]


# --- GET / and GET /metrics ------------------------------------------------------------------


def test_root_serves_the_page_to_browsers_and_json_to_others(classifier_server):
    page = classifier_server.get("/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" in page.text and "http" not in page.text.split("<script>")[1].split("</script>")[0]  # fetches nothing from elsewhere
    described = classifier_server.get("/", headers={"accept": "application/json"}).json()
    assert described == classifier_server.get("/v1/model").json()
    assert {"GET /", "POST /", "POST /predict", "GET /metrics", "POST /v1/classify"} <= set(described["endpoints"])


def test_metrics_count_requests_batches_and_queue(classifier_server, texts):
    for _ in range(2):
        assert classifier_server.post("/predict", json={"inputs": texts[:2]}).status_code == 200
    assert classifier_server.post("/predict", json={"inputs": []}).status_code == 422
    assert classifier_server.get("/no-such-route").status_code == 404
    metrics = classifier_server.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(metrics.text) for s in f.samples}
    assert samples[("t5cls_requests_total", (("route", "POST /predict"), ("status", "200")))] >= 2
    assert samples[("t5cls_requests_total", (("route", "POST /predict"), ("status", "422")))] >= 1
    assert samples[("t5cls_requests_total", (("route", "unmatched"), ("status", "404")))] >= 1
    assert samples[("t5cls_request_seconds_count", (("route", "POST /predict"),))] >= 3
    assert samples[("t5cls_batch_size_count", ())] >= 2 and samples[("t5cls_batch_size_sum", ())] >= 4
    assert ("t5cls_queue_length", ()) in samples


# --- bad input on every new route ------------------------------------------------------------

BAD = [
    # (server, route, body, status, words the message must contain)
    ("classifier", "/", {"inputs": []}, 422, "inputs: the list is empty"),
    ("classifier", "/", {"inputs": "x", "parameters": {"top_k": 0}}, 422, "parameters.top_k"),
    ("classifier", "/", {"inputs": "x", "parameters": {"function_to_apply": "tanh"}}, 422, "parameters.function_to_apply"),
    ("classifier", "/", {"inputs": ["a"] * 9}, 413, "inputs has 9 items"),
    ("nli", "/", {"inputs": "x", "parameters": {"candidate_labels": []}}, 422, "parameters.candidate_labels"),
    ("nli", "/", {"inputs": "x", "parameters": {"candidate_labels": ["a"], "hypothesis_template": "no slot"}}, 422, "parameters.hypothesis_template"),
    ("classifier", "/predict", {"inputs": ["ok", 3]}, 422, "inputs: item 1 is a number"),
    ("classifier", "/predict", {"inputs": "x", "truncation_direction": "Left"}, 422, "truncation_direction"),
    ("classifier", "/predict", {"inputs": "x", "raw_scores": "yes"}, 422, "raw_scores"),
    ("seq2seq", "/rerank", {"query": "q", "texts": []}, 422, "texts"),
    ("seq2seq", "/rerank", {"query": " ", "texts": ["d"]}, 422, "query: is an empty string"),
    ("seq2seq", "/rerank", {"query": "q", "texts": ["d"] * 13}, 413, "texts has 13 items; this server takes at most 12 per request (max_documents"),
    ("seq2seq", "/v1/rerank", {"query": "q", "documents": [{"title": "no text"}]}, 422, "documents.0.text: Field required"),
    ("seq2seq", "/v1/rerank", {"query": "q", "documents": ["d"], "top_n": 0}, 422, "top_n"),
    ("seq2seq", "/v1/rerank", {"query": "q", "documents": ["d" * 301]}, 413, "documents[0] has 301 characters"),
    ("seq2seq", "/v2/rerank", {"model": "m", "query": "q", "documents": [{"text": "objects are v1 only"}]}, 422, "documents.0"),
    ("seq2seq", "/v2/rerank", {"model": "m", "documents": ["d"]}, 422, "query: Field required"),
    ("seq2seq", "/v2/rerank", {"model": "m", "query": "q", "documents": ["d"], "max_tokens_per_doc": 10}, 422, "max_tokens_per_doc: unknown field"),
]


@pytest.mark.parametrize("which,route,body,status,words", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_field(request, which, route, body, status, words):
    client = request.getfixturevalue(f"{which}_server")
    response = client.post(route, json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"], response.json()["detail"]
    assert client.get("/health").json()["status"] == "ok"


def test_unsupported_method_lists_every_method_of_the_path(classifier_server):
    response = classifier_server.request("DELETE", "/")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
