"""The server tells user errors (4xx) from bugs (500, logged with the traceback), and a bug fails
only the request it belongs to. Real uvicorn on 127.0.0.1, real httpx clients, a real failing
model (an embedding table smaller than its tokenizer: tests/conftest.py).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI

from t5cls import InputError
from t5cls.server import create_app
from t5cls.server.app import InternalErrors
from tests.test_server import ThreadServer


@pytest.fixture(scope="module")
def broken_server(broken_vocab_classifier):
    directory, _, _ = broken_vocab_classifier
    # A long wait merges the concurrent requests below into one model call.
    with ThreadServer(create_app(directory, max_wait_ms=200)) as running:
        with httpx.Client(base_url=running.url, timeout=60) as client:
            yield client


def test_a_bug_answers_500_with_its_traceback_logged(broken_server, broken_vocab_classifier, caplog):
    _, good, bad = broken_vocab_classifier
    with caplog.at_level(logging.ERROR, logger="t5cls.server.app"):
        response = broken_server.post("/v1/classify", json={"inputs": [bad]})
    assert response.status_code == 500
    assert response.json()["detail"].startswith("Internal error in classify: IndexError")
    logged = [r for r in caplog.records if r.name == "t5cls.server.app" and r.exc_info]
    assert logged and logged[0].exc_info[0] is IndexError  # the traceback is in the log
    # The server goes on serving.
    assert broken_server.post("/v1/classify", json={"inputs": [good]}).status_code == 200
    assert broken_server.get("/health").json()["status"] == "ok"


def test_a_bug_fails_only_its_own_request(broken_server, broken_vocab_classifier):
    _, good, bad = broken_vocab_classifier
    bodies = [{"inputs": [good]}, {"inputs": [bad]}, {"inputs": [good, good]}, {"inputs": good}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(lambda body: broken_server.post("/v1/classify", json=body).status_code, bodies))
    assert statuses == [200, 500, 200, 200]
    batching = broken_server.get("/health").json()["batching"]["classify"]
    assert batching["failed_requests"] >= 1


def test_user_errors_from_the_library_are_422(tiny_nli_dir):
    with ThreadServer(create_app(tiny_nli_dir)) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        body = {"inputs": ["the striker scored"], "candidate_labels": ["sports", "politics"]}
        refused = client.post("/v1/zero-shot", json=body | {"hypothesis_template": "no slot for the label"})
        assert refused.status_code == 422
        assert "has no '{}' for the label" in refused.json()["detail"]
        assert client.post("/v1/zero-shot", json=body).status_code == 200


def test_a_bug_outside_the_model_call_is_a_json_500(caplog):
    app = FastAPI()

    @app.get("/bug")
    async def bug() -> dict:
        return {"ratio": 1 / 0}

    @app.get("/user")
    async def user() -> dict:
        raise InputError("bad value")

    @app.get("/fine")
    async def fine() -> dict:
        return {"ok": True}

    from t5cls.server.app import _user_error

    app.add_exception_handler(InputError, _user_error)
    app.add_middleware(InternalErrors)
    with ThreadServer(app) as running, httpx.Client(base_url=running.url) as client:
        with caplog.at_level(logging.ERROR, logger="t5cls.server.app"):
            response = client.get("/bug")
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal error: ZeroDivisionError: division by zero"}
        assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
        assert client.get("/user").status_code == 422
        assert client.get("/user").json() == {"detail": "bad value"}
        assert client.get("/fine").json() == {"ok": True}


@pytest.mark.parametrize(
    "options, match",
    [
        ({"max_batch_tokens": 0}, r"max_batch_tokens=0 must be at least 1"),
        ({"max_inputs": -1}, r"max_inputs=-1"),
        ({"max_batch_size": 0}, r"max_batch_size=0 must be at least 1"),
        ({"max_wait_ms": -1.0}, r"max_wait_ms=-1.0 must be at least 0"),
        ({"threads": 0}, r"threads=0 must be at least 1"),
        ({"device": "gpu"}, r"device='gpu' is not a device name"),
        ({"dtype": "float33"}, r"dtype='float33' is not supported"),
    ],
)
def test_create_app_options(tiny_classifier_dir, options, match):
    with pytest.raises(InputError, match=match):
        create_app(tiny_classifier_dir, **options)


def test_create_app_sources(tmp_path, tiny_classifier_dir):
    with pytest.raises(FileNotFoundError, match=r"is not a model directory \(no config\.json"):
        create_app(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    with pytest.raises(InputError, match=r"holds a 'bert' model"):
        create_app(tmp_path)
