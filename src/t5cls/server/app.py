"""HTTP API for a T5 classifier: ``t5cls serve MODEL``, FastAPI + uvicorn, with micro-batching.

:func:`create_app` reads what the model directory holds and builds a FastAPI app whose lifespan
loads the model once. Endpoints (OpenAPI docs at ``/docs``):

- ``POST /v1/classify`` ``{"inputs": str | [str | [text, text_pair], ...], "top_k"?, "min_score"?, "threshold"?,
  "long_inputs"?, "stride"?, "aggregate"?}`` (a T5 classifier)
- ``POST /v1/zero-shot`` ``{"inputs", "candidate_labels", "hypothesis_template"?, "multi_label"?}``
  (a classifier with an ``entail*`` label, i.e. an NLI model)
- ``POST /v1/score`` ``{"inputs", "labels", "template"?}`` (a seq2seq T5: exact label probabilities)
- ``GET /health``, ``GET /v1/model``

The formats other clients speak have a module each, wired here: :mod:`.hf` (``POST /``, the
Hugging Face Inference API), :mod:`.tei` (``/predict``, ``/rerank``), :mod:`.cohere`
(``/v1/rerank``, ``/v2/rerank``), :mod:`.page` (``GET /``), :mod:`.metrics` (``GET /metrics``).
Body types shared by all are in :mod:`.bodies`; :mod:`.contract` makes ``/openapi.json`` state
every status, the error body and this server's limits.

Concurrent requests are merged by one :class:`~t5cls.server.batcher.MicroBatcher` per endpoint; all
model calls run one at a time in a single worker thread, so the event loop never waits on the
model. Requests beyond the limits (inputs per request, characters per input, body bytes) get a
413 naming the limit; malformed or ill-typed bodies get a 400/422 saying what is wrong; an
internal error fails only the request it belongs to. On shutdown (SIGINT/SIGTERM) uvicorn stops
accepting connections, in-flight requests complete, then the batchers drain and stop.
"""

from __future__ import annotations

import errno
import logging
import math
import socket
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import entropy

from ..batching import DEFAULT_BATCH_TOKENS
from ..devices import default_device, default_dtype
from ..errors import USER_ERRORS, InputError, check_int, check_number
from ..loading import ModelInfo, default_max_length, inspect_model, wrong_kind
from .batcher import BatcherClosedError, MicroBatcher
from .bodies import (
    UNION_BRANCHES,
    Count,
    HypothesisTemplate,
    Labels,
    LabelScore,
    Probability,
    ScoreLabels,
    ScoreTemplate,
    SingleTexts,
    StrictBody,
    Stride,
    Texts,
    json_type,
    ranked,
)
from .cohere import add_routes as add_cohere_routes
from .contract import GET_ERRORS, POST_ERRORS, install_method_not_allowed, install_openapi
from .hf import add_routes as add_hf_routes
from .metrics import ServerMetrics
from .metrics import add_routes as add_metrics_routes
from .page import add_routes as add_page_routes
from .tei import add_routes as add_tei_routes

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_INPUTS = 64
DEFAULT_MAX_CHARS = 10_000
DEFAULT_MAX_BODY_BYTES = 1 << 20
# Rerank requests carry many documents (Cohere suggests up to 1,000): they have their own limit.
DEFAULT_MAX_DOCUMENTS = 1000
# Label scorers (label trie + decoder tensors, cheap to build) kept per (labels, template).
SCORER_CACHE_SIZE = 32


# --- what the model directory holds ---------------------------------------------------------


def inspect_model_dir(model_dir: str | Path, *, base: str | Path | None = None) -> ModelInfo:
    """:func:`t5cls.inspect_model` of ``model_dir``, checked to be something the server runs.

    A classifier (any kind :class:`t5cls.Classifier` loads, a PEFT adapter over one included) is
    served on ``/v1/classify`` (and ``/v1/zero-shot`` when it is an NLI model); a seq2seq T5 (or an
    adapter over one) on ``/v1/score``.

    Raises:
        FileNotFoundError: ``model_dir`` does not exist or has no ``config.json``.
        InputError: the directory holds a model the server cannot run (an ONNX export, say).
    """
    info = inspect_model(model_dir, base=base)
    if not (info.is_classifier or info.is_seq2seq):
        raise wrong_kind(info, "a model t5cls serve runs (a classifier or a seq2seq T5)")
    return info


def _role(info: ModelInfo) -> str:
    """``"classifier"`` or ``"seq2seq"``: which endpoints serve the model."""
    return "classifier" if info.is_classifier else "seq2seq"


# --- request and response bodies -------------------------------------------------------------

class ClassifyRequest(StrictBody):
    """Texts to classify with the served classifier."""

    inputs: Texts = Field(description="A text, or an array of texts or [text, text_pair] pairs.", examples=[["a gripping film"]])
    top_k: Count | None = Field(None, description="Return the k most likely labels per input (default: all).")
    min_score: Probability | None = Field(
        None, description='Single-label models: below this top probability the input\'s entry in "labels" is null ("none of these").'
    )
    threshold: Probability | None = Field(
        None, description="Multi-label models: predict labels at or above this probability (default: the model's saved per-label thresholds, else 0.5).",
    )
    long_inputs: Literal["truncate", "chunk"] = Field(
        "truncate", description="Inputs longer than the model's max_length: cut them, or read the text in overlapping windows."
    )
    stride: Stride | None = Field(None, description="With chunk: tokens of overlap between windows (default: a quarter of the window).")
    aggregate: Literal["mean", "max"] = Field("mean", description="With chunk: average the windows' probabilities, or take each label's largest.")


class ZeroShotRequest(StrictBody):
    """Texts and candidate labels for NLI zero-shot classification."""

    inputs: SingleTexts = Field(description="A text or an array of texts.", examples=[["the striker scored twice"]])
    candidate_labels: Labels = Field(description="Labels to choose from (an array, or one comma-separated string).", examples=[["sports", "politics"]])
    hypothesis_template: HypothesisTemplate = Field(
        "This example is {}.", description="Hypothesis; {} is replaced by each label (no other braces)."
    )
    multi_label: bool = Field(False, description="Score labels independently instead of one softmax across them.")
    threshold: Probability | None = Field(None, description='Below this best score, "label" is null.')
    long_inputs: Literal["truncate", "chunk"] = Field(
        "truncate", description="Premises longer than max_length (with the hypothesis): cut them, or read them in overlapping windows."
    )
    stride: Stride | None = Field(None, description="With chunk: tokens of overlap between windows (default: a quarter of the window).")
    aggregate: Literal["mean", "max"] = Field("mean", description="With chunk: average the windows' scores, or take each label's largest.")


class ScoreRequest(StrictBody):
    """Texts and labels for exact label probabilities from a seq2seq T5."""

    inputs: SingleTexts = Field(description="A text or an array of texts.", examples=[["a gripping film"]])
    labels: ScoreLabels = Field(description="Candidate label strings (multi-token labels are fine).", examples=[["positive", "negative"]])
    template: ScoreTemplate = Field(
        "{text}", description="Prompt with one {text} slot (no other braces), e.g. 'sst2 sentence: {text}'."
    )


class ClassifyResponse(BaseModel):
    results: list[list[LabelScore]] = Field(description="Per input, labels sorted by score (probability), best first.")
    labels: list[str | None | list[str]] = Field(
        description="Per input, the decision: the label (null under min_score); multi-label: the labels at or above their threshold; "
        "regression: null."
    )
    windows: list[int] | None = Field(None, description="With long_inputs=chunk: how many windows each input was read in.")


class Health(BaseModel):
    status: str = Field(description='"ok", or what is wrong.')
    queued: int = Field(description="Requests waiting for a model call.")
    batching: dict[str, dict[str, Any]] = Field(description="Per batcher: requests, inputs, batches, mean and largest batch.")


class ModelDescription(BaseModel):
    """What ``GET /v1/model`` (and ``GET /`` without ``Accept: text/html``) says about the server."""

    model_config = ConfigDict(extra="allow")
    path: str
    kind: str
    model_type: str
    parameters: int | None = Field(description="The torch model's parameters; null when ONNX Runtime runs it (--int8).")
    endpoints: list[str] = Field(description='The routes this server answers, e.g. "POST /v1/classify".')
    settings: dict[str, Any] = Field(description="Batching and limits.")


class ZeroShotResult(BaseModel):
    sequence: str
    labels: list[str] = Field(description="Candidate labels sorted by score, best first.")
    scores: list[float]
    label: str | None = Field(description="The best label; null when its score is under the threshold.")
    windows: int | None = Field(None, description="With long_inputs=chunk: how many windows the premise was read in.")


class ZeroShotResponse(BaseModel):
    results: list[ZeroShotResult]


class ScoreResult(BaseModel):
    labels: list[str] = Field(description="Labels sorted by probability, best first.")
    scores: list[float] = Field(description="Exact P(label | prompt), normalised over the labels.")
    label: str
    entropy: float = Field(description="Entropy (nats) of the label distribution: 0 = certain, log(n) = uniform.")


class ScoreResponse(BaseModel):
    results: list[ScoreResult]


# --- the service: model, batchers, limits ----------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    """Batching and limits of one server (see :func:`create_app` for their meaning)."""

    device: str | None = None
    dtype: str | None = None
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS
    max_batch_size: int | None = None
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    max_inputs: int = DEFAULT_MAX_INPUTS
    max_chars: int = DEFAULT_MAX_CHARS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    threads: int | None = None
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    int8: bool = False

    def check(self) -> None:
        """Raise :class:`InputError` for a limit that is not positive, or a device this machine lacks."""
        for name in ("max_batch_tokens", "max_inputs", "max_chars", "max_body_bytes", "max_documents"):
            check_int(name, getattr(self, name))
        check_int("max_batch_size", self.max_batch_size, none_ok=True, hint="1 turns batching off")
        check_number("max_wait_ms", self.max_wait_ms, minimum=0.0, hint="milliseconds")
        check_int("threads", self.threads, none_ok=True, hint="None keeps torch's setting")
        if self.int8 and self.device is not None and torch.device(self.device).type != "cpu":
            raise InputError(f"int8 runs on CPU; got device={self.device!r}. Drop --int8 on a GPU (bf16 is its fast path) or use --device cpu.")
        if self.int8 and self.dtype not in (None, "float32"):
            raise InputError(f"int8 computes activations in float32; got dtype={self.dtype!r}. Leave --dtype unset with --int8.")
        default_dtype(default_device(self.device), self.dtype)


class _Service:
    """Everything the endpoints share, built in the lifespan."""

    def __init__(self, info: ModelInfo, settings: ServerSettings):
        self.info = info
        self.settings = settings
        # torch reads its thread count when a thread first runs a parallel op, so the model
        # thread sets it itself, before any model call.
        initializer, initargs = (torch.set_num_threads, (settings.threads,)) if settings.threads else (None, ())
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="t5cls-model", initializer=initializer, initargs=initargs
        )
        self.batchers: dict[str, MicroBatcher] = {}
        self.classifier: Any = None
        self.zero_shot: Any = None
        self.reranker: Any = None
        # Called with the size of every model call (the /metrics batch-size histogram).
        self.observe_batch: Callable[[int], None] | None = None
        self.chars_per_token = 1.0
        self.max_length = 512
        self.description: dict[str, Any] = {}

    def load(self) -> None:
        """Load the model(s); runs once, before the server accepts connections."""
        s = self.settings
        if self.info.is_classifier:
            from ..inference import Classifier

            # int8: Classifier's ONNX Runtime path (an export's model_int8.onnx, else exported here, once).
            self.classifier = Classifier(
                self.info, device="cpu" if s.int8 else s.device, dtype=None if s.int8 else s.dtype,
                quantize="int8" if s.int8 else None, batch_tokens=s.max_batch_tokens,
            )  # fmt: skip
            def classify(items: list[Any], key: Hashable) -> list[Any]:
                _, long_inputs, stride, aggregate = key
                proba, windows = self.classifier.predict_proba_windows(items, long_inputs=long_inputs, stride=stride, aggregate=aggregate)
                return list(zip(proba, windows or [None] * len(proba)))

            self._add_batcher("classify", classify)
            # Raw logits, for the formats that ask for them (TEI raw_scores, HF function_to_apply).
            self._add_batcher("logits", lambda items, key: list(self.classifier.logits(items)))
            tokenizer, model = self.classifier.tokenizer, self.classifier.model
            self.max_length = int(self.classifier.max_length)
            if self.info.nli:
                self._load_zero_shot()
        else:
            tokenizer, model = self._load_scorer_model()
        self.chars_per_token = _chars_per_token(tokenizer)
        self.description = _model_description(self.info, model if model is not None else self.classifier.config)
        self.description["threads"] = s.threads or torch.get_num_threads()
        self.description["quantize"] = "int8" if s.int8 else None
        if self.classifier is not None:
            self.description.update(
                labels=list(self.classifier.labels), problem_type=self.classifier.config.problem_type, max_length=self.max_length
            )

    def _load_zero_shot(self) -> None:
        from ..zero_shot import ZeroShotClassifier  # imported only when an NLI model is served

        # The same weights as /v1/classify: no second copy in memory (with int8, the same ONNX session).
        if self.settings.int8:
            self.zero_shot = ZeroShotClassifier(self.classifier)
        else:
            self.zero_shot = ZeroShotClassifier(
                self.classifier.model, self.classifier.tokenizer, batch_tokens=self.settings.max_batch_tokens
            )

        def run(items: list[tuple[str, tuple[str, ...]]], key: Hashable) -> list[Any]:
            template, multi_label, threshold, long_inputs, stride, aggregate = key
            # One label list per text, so requests with different candidate labels share a call.
            return self.zero_shot(
                [text for text, _ in items], [list(labels) for _, labels in items],
                hypothesis_template=template, multi_label=multi_label, threshold=threshold,
                long_inputs=long_inputs, stride=stride, aggregate=aggregate,
            )

        self._add_batcher("zero-shot", run)

    def _load_scorer_model(self) -> tuple[Any, Any]:
        from ..scoring import LabelScorer, load_seq2seq  # imported only when a seq2seq model is served

        device = default_device("cpu" if self.settings.int8 else self.settings.device)
        model, tokenizer = load_seq2seq(self.info, device=device, dtype=default_dtype(device, self.settings.dtype))
        if self.settings.int8:
            from ..export import quantize_linear_int8

            # Once, in place: every LabelScorer built below shares the int8 layers (LabelScorer(quantize="int8")'s path).
            model = quantize_linear_int8(model, inplace=True)
        self.max_length = default_max_length(tokenizer)
        scorers: dict[Hashable, LabelScorer] = {}  # touched only in the model thread

        def run(items: list[str], key: Hashable) -> list[np.ndarray]:
            labels, template = key
            scorer = scorers.pop(key, None) or LabelScorer(
                (model, tokenizer), labels=list(labels), template=template,
                batch_tokens=self.settings.max_batch_tokens, show_progress_bar=False,
            )
            scorers[key] = scorer  # most recently used last
            while len(scorers) > SCORER_CACHE_SIZE:
                scorers.pop(next(iter(scorers)))
            return list(scorer.predict_proba(items))

        self._add_batcher("score", run)
        self._load_reranker(model, tokenizer)
        return tokenizer, model

    def _load_reranker(self, model: Any, tokenizer: Any) -> None:
        from ..rerank import Reranker  # imported only when a reranking model is served

        s = self.settings
        # The same weights as /v1/score. The batcher's items are (query, document) pairs and its
        # results their exact log-odds (TEI's raw_scores); the routes turn them into P(relevant).
        self.reranker = Reranker(
            (model, tokenizer), batch_tokens=s.max_batch_tokens, device="cpu" if s.int8 else s.device, dtype=s.dtype,
            show_progress_bar=False,
        )  # with --int8, the int8 layers of /v1/score: rerank runs on them too
        self._add_batcher("rerank", lambda pairs, key: list(self.reranker.log_odds(pairs)))

    def _add_batcher(self, name: str, run: Callable[[list[Any], Hashable], Sequence[Any]]) -> None:
        s = self.settings

        def observed(items: list[Any], key: Hashable) -> Sequence[Any]:
            if self.observe_batch is not None:
                self.observe_batch(len(items))
            return run(items, key)

        self.batchers[name] = MicroBatcher(
            observed, max_batch_tokens=s.max_batch_tokens, max_batch_size=s.max_batch_size, max_wait_ms=s.max_wait_ms,
            executor=self.executor,
        )

    def start(self) -> None:
        for batcher in self.batchers.values():
            batcher.start()

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()
        self.executor.shutdown(wait=True)

    def token_costs(self, items: Sequence[Any], *, rows: int = 1) -> list[int]:
        """Estimated tokens per input (times ``rows``, the model rows an input becomes), from its characters.

        Exact counts would mean tokenising in the event loop (about 0.3 s for a full request of
        64 x 10,000 characters); the estimate only decides when a merged batch is full, while the
        model function packs its batches by exact counts.
        """
        return [rows * min(self.max_length, math.ceil(_chars(item) / self.chars_per_token) + 1) for item in items]

    def check_limits(self, items: Sequence[Any], *, what: str = "inputs", limit: str = "max_inputs") -> None:
        """Answer 413 when ``items`` are more than the setting ``limit`` allows or a text is too long.

        Each text counts on its own (both texts of a pair may have ``max_chars``), as the
        published schema's ``maxLength`` says.
        """
        s = self.settings
        most = getattr(s, limit)
        if len(items) > most:
            raise HTTPException(
                413,
                f"{what} has {len(items)} items; this server takes at most {most} per request "
                f"({limit}, `t5cls serve --{limit.replace('_', '-')}`). Split the request.",
            )
        for index, item in enumerate(items):
            chars = max(map(len, item)) if isinstance(item, tuple) else len(item)
            if chars > s.max_chars:
                raise HTTPException(
                    413,
                    f"{what}[{index}] has {chars:,} characters; this server takes at most {s.max_chars:,} per "
                    "text (max_chars, `t5cls serve --max-chars`).",
                )

    async def run(self, name: str, items: list[Any], *, key: Hashable = None, costs: list[int] | None = None) -> list[Any]:
        """Send one request's inputs through the endpoint's batcher; map failures to HTTP errors.

        ``costs``: estimated tokens per input (default: :meth:`token_costs` of ``items``).
        """
        costs = self.token_costs(items) if costs is None else costs
        try:
            return await self.batchers[name].submit(items, costs=costs, key=key)
        except BatcherClosedError as exc:
            raise HTTPException(503, str(exc)) from exc
        except USER_ERRORS as exc:  # the library's words for a bad input
            raise HTTPException(422, str(exc)) from exc
        except Exception as exc:
            # A bug: the request fails alone (the batcher retried its batch-mates without it).
            logger.exception("Internal error in %s", name)
            raise HTTPException(500, f"Internal error in {name}: {type(exc).__name__}: {exc}") from exc

    async def probabilities(self, items: list[Any], *, raw: bool = False) -> list[np.ndarray]:
        """Per input, P(label) as ``/v1/classify`` gives them by default (or the logits, ``raw``).

        For the routes in other formats: they share ``/v1/classify``'s batches (same key).
        """
        kind = "pairs" if isinstance(items[0], tuple) else "texts"  # a call takes one kind
        if raw:
            return await self.run("logits", items, key=kind)
        answers = await self.run("classify", items, key=(kind, "truncate", None, "mean"))
        return [row for row, _ in answers]

    @property
    def queued(self) -> int:
        """Requests waiting in every batcher (the /metrics queue-length gauge)."""
        return sum(b.queued for b in self.batchers.values())

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if all(b.alive for b in self.batchers.values()) else "error: a batch worker stopped",
            "queued": self.queued,
            "batching": {name: b.stats.as_dict() for name, b in self.batchers.items()},
        }


def _chars(item: str | tuple[str, ...]) -> int:
    return len(item) if isinstance(item, str) else sum(map(len, item))


def _chars_per_token(tokenizer: Any) -> float:
    """Characters per token of this tokenizer on ordinary English (about 4.5 for T5, 1 for byT5)."""
    sample = "The quick brown fox jumps over the lazy dog, and the market rallied on Tuesday after the vote."
    ids = tokenizer(sample, add_special_tokens=False)["input_ids"]
    return max(1.0, len(sample) / max(len(ids), 1))


def _model_description(info: ModelInfo, model: Any) -> dict[str, Any]:
    """Facts about the served model; ``model`` is a torch model, or only its config (ONNX Runtime)."""
    if not isinstance(model, torch.nn.Module):  # an ONNX session: no torch parameters to count
        config = model
        return {
            "path": info.source, "kind": _role(info), "format": info.kind, "model_type": config.model_type, "parameters": None,
            "d_model": getattr(config, "d_model", None), "encoder_layers": getattr(config, "num_layers", None),
            "decoder_layers": getattr(config, "num_decoder_layers", None), "vocab_size": getattr(config, "vocab_size", None),
            "device": "cpu", "dtype": "int8 (ONNX Runtime)",
        }  # fmt: skip
    config = model.config
    return {
        "path": info.source,
        "kind": _role(info),
        "format": info.kind,
        "model_type": config.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "d_model": config.d_model,
        "encoder_layers": config.num_layers,
        "decoder_layers": getattr(config, "num_decoder_layers", None),
        "vocab_size": config.vocab_size,
        "device": str(next(model.parameters()).device),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }


def _accept(
    request: Request, inputs: Sequence[Any], *, labels: Sequence[str] = (), labels_field: str = "labels"
) -> tuple[_Service, list[Any]]:
    """The app's service and the request's inputs, once they are within the limits."""
    service: _Service = request.app.state.service
    items = list(inputs)
    service.check_limits(items)
    if labels:
        service.check_limits(labels, what=labels_field)
    return service, items


# --- errors and body size ----------------------------------------------------------------------


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    # pydantic names the union member it tried ("str", "list[str]", a tag); the user did not write those.
    parts = [p for p in parts if p not in UNION_BRANCHES and "[" not in p]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "decode error")
            return JSONResponse({"detail": f"Request body is not valid JSON: {reason}."}, status_code=400)
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        got = errors[0].get("input")
        if got is None:
            detail = 'Request body is missing; send a JSON object such as {"inputs": ["some text"]}.'
        elif isinstance(got, (str, bytes)):
            detail = 'Request body must be JSON (Content-Type: application/json), such as {"inputs": ["some text"]}.'
        else:
            detail = f'Request body must be a JSON object such as {{"inputs": ["some text"]}}, got {json_type(got)}.'
        return JSONResponse({"detail": detail}, status_code=422)
    messages = []
    for error in errors:
        where = _location(error.get("loc", ()))
        message = "unknown field; check its spelling" if error.get("type") == "extra_forbidden" else error.get("msg", "")
        messages.append(f"{where}: {message.rstrip('.')}.")
    return JSONResponse({"detail": " ".join(dict.fromkeys(messages))}, status_code=422)


async def _user_error(request: Request, exc: Exception) -> JSONResponse:
    # An InputError raised outside the model call (the model call maps its own in _Service.run).
    return JSONResponse({"detail": str(exc)}, status_code=422)


class InternalErrors:
    """ASGI middleware: a bug in a route answers 500 ``{"detail"}`` and is logged with its traceback.

    Only that request fails; the server goes on serving. (Starlette's own 500 is plain text and
    re-raises into uvicorn's log; this one keeps the API's error body and logs once, here.)
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.exception("Internal error answering %s %s", scope.get("method"), scope.get("path"))
            if started:  # the answer is half sent: all that is left is to drop the connection
                raise
            detail = f"Internal error: {type(exc).__name__}: {exc}"
            await JSONResponse({"detail": detail}, status_code=500)(scope, receive, send)


class BodySizeLimit:
    """ASGI middleware: answer 413 to a request body above ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send, int(declared))
            return
        # Read the whole body (it is small by definition) so that a chunked upload is bounded too.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client disconnected
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._reject(scope, receive, send, size, streamed=True)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: dict, receive: Callable, send: Callable, size: int, *, streamed: bool = False) -> None:
        what = f"more than {self.max_bytes:,}" if streamed else f"{size:,}"
        detail = (
            f"Request body is {what} bytes; this server takes at most {self.max_bytes:,} "
            "(max_body_bytes, `t5cls serve --max-body-bytes`). Send fewer or shorter texts per request."
        )
        await JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})(scope, receive, send)


# --- the app ---------------------------------------------------------------------------------


def create_app(
    model_dir: str | Path,
    *,
    base: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
    max_batch_size: int | None = None,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    threads: int | None = None,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
    int8: bool = False,
) -> FastAPI:
    """Build the FastAPI app that serves ``model_dir``; its lifespan loads the model once.

    Args:
        model_dir: a classifier directory (``t5cls convert``, the published formats, any transformers
            sequence classifier; zero-shot too when it has an ``entail*`` label), a seq2seq T5
            directory (label scoring), or a PEFT adapter over either (see :func:`t5cls.inspect_model`).
        base: for a PEFT adapter, its base model (default: the adapter's ``base_model_name_or_path``).
        device, dtype: as for :class:`t5cls.Classifier` (CUDA + bf16 when available, else CPU + fp32).
        max_batch_tokens: padded-token budget of one model call (merged requests).
        max_batch_size: most inputs merged into one call; ``1`` turns batching off; ``None``: no cap.
        max_wait_ms: how long a request may wait for others to share its model call.
        max_inputs: most inputs (and candidate labels) per request.
        max_documents: most documents per rerank request (TEI ``/rerank``, Cohere ``/v1|v2/rerank``).
        max_chars: most characters per input.
        max_body_bytes: largest request body.
        threads: torch intra-op threads for the model (None: torch's setting, the CPU cores;
            torch keeps one count per process). With uvloop and httptools (``t5cls[serve]``) the
            event loop needs little CPU, and on 2 cores 2 model threads served about 1.5x more
            requests/s than one (README, HTTP server).
        int8: CPU int8 on every route: classify and zero-shot through ONNX Runtime (a directory with
            ``model_int8.onnx`` from ``t5cls export --int8`` as it is; a torch directory is exported
            and quantised at start-up), score through torch's int8 dynamic linear layers
            (:func:`t5cls.export.quantize_linear_int8`, as ``LabelScorer(quantize="int8")``).

    Returns:
        The app; serve it with uvicorn (``uvicorn.run(app)``) or :func:`serve`.

    Raises:
        FileNotFoundError: ``model_dir`` has no ``config.json``.
        ValueError: an unservable model or a non-positive limit.

    Example:
        >>> app = create_app("sst2-classifier", max_wait_ms=2)  # doctest: +SKIP
        >>> import uvicorn; uvicorn.run(app, port=8000)  # doctest: +SKIP
    """
    settings = ServerSettings(
        device=device, dtype=dtype, max_batch_tokens=max_batch_tokens, max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms, max_inputs=max_inputs, max_chars=max_chars, max_body_bytes=max_body_bytes,
        threads=threads, max_documents=max_documents, int8=int8,
    )
    settings.check()
    info = inspect_model_dir(model_dir, base=base)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = _Service(info, settings)
        service.load()  # before the server accepts connections, so blocking is fine
        app.state.metrics = ServerMetrics(lambda: service.queued)
        service.observe_batch = app.state.metrics.batch_size.observe
        service.start()
        app.state.service = service
        logger.info("Serving %s (%s) with endpoints %s", info.source, info.kind, ", ".join(endpoints))
        try:
            yield
        finally:
            await service.stop()  # uvicorn has already let in-flight requests finish

    from .. import __version__

    app = FastAPI(
        title="t5cls",
        version=__version__,
        description=f"T5 classification server for `{info.path.name}` ({_role(info)}, {info.kind}).",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    for user_error in USER_ERRORS:
        app.add_exception_handler(user_error, _user_error)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(InternalErrors)  # added last: the outermost of ours, so it sees every route's bug
    endpoints = ["GET /health", "GET /v1/model"]

    health_body = {"application/json": {"schema": Health.model_json_schema()}}

    @app.get(
        "/health", summary="Liveness, queue length and batching counters", response_model=Health,
        responses={503: {"description": "A batch worker stopped.", "content": health_body}, **GET_ERRORS},
    )
    async def health(request: Request) -> JSONResponse:
        report = request.app.state.service.health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    def describe(request: Request) -> dict[str, Any]:
        service: _Service = request.app.state.service
        return {**service.description, "endpoints": endpoints, "settings": asdict(settings)}

    @app.get("/v1/model", summary="The served model: labels, problem type, sizes, limits", response_model=ModelDescription, responses=GET_ERRORS)
    async def model_info(request: Request) -> dict[str, Any]:
        return describe(request)

    if info.is_classifier:
        endpoints.append("POST /v1/classify")

        @app.post("/v1/classify", response_model=ClassifyResponse, responses=POST_ERRORS, summary="Classify texts (or text pairs)")
        async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
            service, items = _accept(request, body.inputs)
            classifier = service.classifier
            try:  # settings the model cannot take fail before the batch
                classifier.long_input_settings(body.long_inputs, body.stride, body.aggregate)
                # No rows: only checks min_score / threshold against the model (multi-label, regression).
                classifier.labels_from_proba(np.zeros((0, len(classifier.labels))), threshold=body.threshold, min_score=body.min_score)
            except InputError as exc:
                raise HTTPException(422, str(exc)) from exc
            chunk = body.long_inputs == "chunk"
            # A call takes one kind of input and one long-input setting.
            key = ("pairs" if isinstance(items[0], tuple) else "texts", body.long_inputs, body.stride, body.aggregate)
            # Chunked inputs are read whole: their estimated cost is not capped at max_length.
            costs = [math.ceil(_chars(item) / service.chars_per_token) + 1 for item in items] if chunk else None
            answers = await service.run("classify", items, key=key, costs=costs)
            proba = np.stack([row for row, _ in answers])
            labels = classifier.labels
            decided = [None] * len(items) if classifier.problem_type == "regression" else (
                classifier.labels_from_proba(proba, threshold=body.threshold, min_score=body.min_score)
            )
            answer = {"results": [ranked(row, labels, body.top_k) for row in proba], "labels": decided}
            if chunk:
                answer["windows"] = [int(count) for _, count in answers]
            return answer

    if info.is_classifier and info.nli:
        endpoints.append("POST /v1/zero-shot")

        @app.post("/v1/zero-shot", response_model=ZeroShotResponse, responses=POST_ERRORS, summary="NLI zero-shot classification")
        async def zero_shot(body: ZeroShotRequest, request: Request) -> dict[str, Any]:
            service, items = _accept(request, body.inputs, labels=body.candidate_labels, labels_field="candidate_labels")
            labels = tuple(body.candidate_labels)
            key = (body.hypothesis_template, body.multi_label, body.threshold, body.long_inputs, body.stride, body.aggregate)
            try:
                service.classifier.long_input_settings(body.long_inputs, body.stride, body.aggregate)
            except InputError as exc:
                raise HTTPException(422, str(exc)) from exc
            # An item is one text with its labels: it costs one NLI row per label.
            costs = service.token_costs(items, rows=len(labels))
            return {"results": await service.run("zero-shot", [(t, labels) for t in items], key=key, costs=costs)}

    if info.is_seq2seq:
        endpoints.append("POST /v1/score")

        @app.post("/v1/score", response_model=ScoreResponse, responses=POST_ERRORS, summary="Exact label probabilities from a seq2seq T5")
        async def score(body: ScoreRequest, request: Request) -> dict[str, Any]:
            service, items = _accept(request, body.inputs, labels=body.labels)
            rows = await service.run("score", items, key=(tuple(body.labels), body.template))
            labels = body.labels
            results = []
            for row in rows:
                best = ranked(row, labels, None)
                results.append({
                    "labels": [r["label"] for r in best], "scores": [r["score"] for r in best],
                    "label": best[0]["label"], "entropy": float(entropy(row)),
                })
            return {"results": results}

    # The formats other clients speak, beside /v1 (each family in its own module).
    rerank = info.is_seq2seq
    endpoints += add_tei_routes(app, classifier=info.is_classifier, rerank=rerank)
    endpoints += add_cohere_routes(app, rerank=rerank)
    endpoints += add_hf_routes(app, kind=_role(info), nli=info.nli, routes=endpoints)
    endpoints += add_page_routes(app, describe=describe, model_schema=ModelDescription.model_json_schema())
    endpoints += add_metrics_routes(app)  # its middleware wraps the others, so every answer is counted
    def limits() -> dict[str, int]:
        service = getattr(app.state, "service", None)
        model = {"max_stride": service.max_length - 1} if service is not None else {}
        return {**asdict(settings), **model}

    install_openapi(app, limits)
    install_method_not_allowed(app)
    return app


def serve(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = True,
    graceful_timeout_s: int | None = 60,
    limit_concurrency: int | None = 1024,
    **app_options: Any,
) -> None:
    """Serve ``model_dir`` with uvicorn until SIGINT/SIGTERM; in-flight requests complete first.

    Args:
        model_dir: see :func:`create_app`.
        host, port: where to listen (``127.0.0.1`` keeps the server local).
        log_level, access_log: uvicorn logging.
        graceful_timeout_s: on shutdown, wait at most this long for in-flight requests (None: forever).
        limit_concurrency: above this many open connections or in-flight requests, uvicorn answers
            503 at once instead of queueing without bound (None: no limit).
        **app_options: the keyword arguments of :func:`create_app`.

    Raises:
        FileNotFoundError, ValueError: as :func:`create_app`.
        RuntimeError: the server did not start (model failed to load, port in use); the log says why.
    """
    import uvicorn

    check_int("limit_concurrency", limit_concurrency, none_ok=True)
    check_int("graceful_timeout_s", graceful_timeout_s, minimum=0, none_ok=True)
    # Bound here, before the model loads, so that a port in use or a host that is not this
    # machine's fails at once with the reason (uvicorn would log it and call sys.exit).
    sock = bind_socket(host, port)
    try:
        app = create_app(model_dir, **app_options)
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, access_log=access_log, lifespan="on",
            timeout_graceful_shutdown=graceful_timeout_s, limit_concurrency=limit_concurrency,
        )
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        raise RuntimeError(f"The server for {str(model_dir)!r} did not start on {host}:{port}; see the log above.")


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)``, ready for uvicorn; user mistakes are :class:`InputError`.

    Raises:
        InputError: a port outside 1-65535 (the OS would silently take it modulo 65536), a host
            that does not resolve, or an address this machine cannot listen on (not one of its
            own, already in use, or a privileged port without the right).
    """
    if not isinstance(host, str) or not host.strip():
        raise InputError(f"host={host!r} must be an address such as '127.0.0.1' (this machine only) or '0.0.0.0' (all interfaces).")
    check_int("port", port, minimum=1, maximum=65535, hint="e.g. 8000")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise InputError(
            f"host={host!r} is not an address this machine can resolve ({exc.strerror}); use e.g. '127.0.0.1' or '0.0.0.0'."
        ) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart right after a stop
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        fixes = {
            errno.EADDRINUSE: f"another process listens on port {port}; pick another --port",
            errno.EADDRNOTAVAIL: f"{host!r} is not an address of this machine; use '127.0.0.1' or '0.0.0.0'",
            errno.EACCES: "ports below 1024 need special rights; use a port such as 8000",
        }
        fix = fixes.get(exc.errno, "check --host and --port")
        raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror}; {fix}.") from exc
    return sock


__all__ = ["create_app", "serve", "bind_socket", "inspect_model_dir", "ModelInfo", "ServerSettings", "BodySizeLimit", "InternalErrors"]
