"""Real client libraries against a real ``t5cls serve`` app on 127.0.0.1 (uvicorn in a thread).

- ``huggingface_hub.InferenceClient(model=URL)``: ``text_classification`` and
  ``zero_shot_classification`` equal the in-process ``Classifier`` / ``ZeroShotClassifier``;
- the ``cohere`` SDK: ``Client(base_url=URL).rerank`` (v1) and ``ClientV2(base_url=URL).rerank`` (v2),
  and TEI's ``/rerank`` with httpx, rank as the in-process ``Reranker`` does;
- bad input through each client is a 4xx naming the field, and the server stays healthy.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from t5cls import Classifier
from t5cls.server import create_app
from tests.conftest import sample_texts
from tests.test_server import ThreadServer

TEXTS = [text[:200] for text in sample_texts(6)]


@pytest.fixture()
def hf_online(monkeypatch):
    """The server is on this machine: huggingface_hub's offline mode (set for the suite) must not refuse it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_huggingface_hub_text_classification(tiny_classifier_dir, hf_online):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    classifier = Classifier(tiny_classifier_dir)
    with ThreadServer(create_app(tiny_classifier_dir)) as running:
        client = InferenceClient(model=running.url)
        for text, row in zip(TEXTS[:3], classifier.predict_proba(TEXTS[:3])):
            answer = client.text_classification(text)
            assert [item.label for item in answer] == [classifier.labels[j] for j in np.argsort(-row, kind="stable")]
            np.testing.assert_allclose([item.score for item in answer], np.sort(row)[::-1], atol=1e-5)
        top = client.text_classification(TEXTS[0], top_k=1)
        assert len(top) == 1 and top[0].label == classifier.predict(TEXTS[0])
        with pytest.raises(HfHubHTTPError) as refused:
            client.text_classification(" ")
        assert refused.value.response.status_code == 422 and "inputs" in refused.value.response.json()["detail"]
        assert httpx.get(f"{running.url}/health").json()["status"] == "ok"


def test_huggingface_hub_zero_shot_classification(tiny_nli_dir, hf_online):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    from t5cls.zero_shot import ZeroShotClassifier

    zero_shot = ZeroShotClassifier(tiny_nli_dir)
    labels = ["sports", "politics", "business"]
    with ThreadServer(create_app(tiny_nli_dir)) as running:
        client = InferenceClient(model=running.url)
        for multi_label, template in ((False, None), (True, "The topic is {}.")):
            options = {"hypothesis_template": template} if template else {}
            answer = client.zero_shot_classification(TEXTS[0], candidate_labels=labels, multi_label=multi_label, **options)
            want = zero_shot(TEXTS[0], labels, multi_label=multi_label, **options)
            assert [item.label for item in answer] == want["labels"]
            np.testing.assert_allclose([item.score for item in answer], want["scores"], atol=1e-5)
        with pytest.raises(HfHubHTTPError) as refused:
            client.zero_shot_classification(TEXTS[0], candidate_labels=["a", "a"])
        assert refused.value.response.status_code == 422
        assert "parameters.candidate_labels" in refused.value.response.json()["detail"]
        assert httpx.get(f"{running.url}/health").json()["status"] == "ok"


def test_cohere_sdk_and_tei_rerank_equal_reranker(tiny_t5_dir):
    import cohere

    from t5cls import Reranker

    query, documents = "who won the game?", TEXTS
    expected = Reranker(tiny_t5_dir).score([(query, document) for document in documents])
    order = [int(i) for i in np.argsort(-expected, kind="stable")]
    with ThreadServer(create_app(tiny_t5_dir)) as running:
        v1 = cohere.Client(api_key="unused", base_url=running.url).rerank(query=query, documents=documents, top_n=4, return_documents=True)
        assert [r.index for r in v1.results] == order[:4]
        np.testing.assert_allclose([r.relevance_score for r in v1.results], expected[order[:4]], atol=1e-5)
        assert v1.results[0].document.text == documents[order[0]]

        v2 = cohere.ClientV2(api_key="unused", base_url=running.url).rerank(model="t5cls", query=query, documents=documents)
        assert [r.index for r in v2.results] == order
        np.testing.assert_allclose([r.relevance_score for r in v2.results], expected[order], atol=1e-5)

        tei = httpx.post(f"{running.url}/rerank", json={"query": query, "texts": documents}, timeout=60)
        assert [r["index"] for r in tei.json()] == order
        np.testing.assert_allclose([r["score"] for r in tei.json()], expected[order], atol=1e-5)

        with pytest.raises(cohere.core.ApiError) as refused:
            cohere.ClientV2(api_key="unused", base_url=running.url).rerank(model="t5cls", query=query, documents=[])
        assert refused.value.status_code == 422 and "documents" in refused.value.body["detail"]
        assert httpx.get(f"{running.url}/health").json()["status"] == "ok"
