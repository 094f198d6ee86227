"""``POST /``: the Hugging Face Inference API task format, as ``huggingface_hub.InferenceClient`` sends it.

``InferenceClient(model="http://host:port")`` posts ``{"inputs", "parameters"}`` to the base URL:

- text classification: ``parameters`` ``{"top_k"?, "function_to_apply"?}`` -> ``[[{"label", "score"},
  ...]]``, one list per input, best first (the client takes element 0);
- zero-shot (an NLI model, when ``parameters.candidate_labels`` is present): ``{"candidate_labels",
  "multi_label"?, "hypothesis_template"?}`` -> ``[{"label", "score"}, ...]`` best first for a string
  input, one such list per input for an array.

Both go through the same micro-batchers as ``/v1/classify`` and ``/v1/zero-shot``. A seq2seq model
serves neither: ``POST /`` answers 404 naming the routes it has.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from pydantic import Discriminator, Field, Tag
from scipy.special import expit, softmax

from ..zero_shot import DEFAULT_HYPOTHESIS_TEMPLATE
from .bodies import Count, HypothesisTemplate, Labels, LabelScore, StrictBody, TextOrTexts, as_list, ranked
from .contract import POST_ERRORS


class ClassificationParameters(StrictBody):
    """Text-classification parameters (transformers' pipeline names)."""

    top_k: Count | None = Field(None, description="Return the k most likely labels per input (default: all).")
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None, description="Apply this to the raw logits (default: the model's own: softmax, sigmoid for multi-label, none for regression)."
    )


class ZeroShotParameters(StrictBody):
    """Zero-shot parameters (transformers' pipeline names)."""

    candidate_labels: Labels = Field(description="Labels to choose from.", examples=[["sports", "politics"]])
    multi_label: bool | None = Field(None, description="Score labels independently (default false).")
    hypothesis_template: HypothesisTemplate | None = Field(None, description=f"Default {DEFAULT_HYPOTHESIS_TEMPLATE!r}.")


class Options(StrictBody):
    """The hosted API's options; accepted so that clients that send them work, and ignored (the model is loaded)."""

    wait_for_model: bool | None = None
    use_cache: bool | None = None


def _task(value: Any) -> str:
    return "zero-shot" if isinstance(value, dict) and "candidate_labels" in value else "text-classification"


class ClassificationRequest(StrictBody):
    """A text-classification request."""

    inputs: TextOrTexts = Field(description="A text or an array of texts.", examples=["a gripping film"])
    parameters: ClassificationParameters | None = None
    options: Options | None = None


class TaskRequest(StrictBody):
    """A text-classification request, or a zero-shot one when ``parameters.candidate_labels`` is present."""

    inputs: TextOrTexts = Field(description="A text or an array of texts.", examples=["the striker scored twice"])
    parameters: (
        Annotated[
            Annotated[ZeroShotParameters, Tag("zero-shot")] | Annotated[ClassificationParameters, Tag("text-classification")],
            Discriminator(_task),
        ]
        | None
    ) = None
    options: Options | None = None


_APPLY = {"softmax": lambda x: softmax(x, axis=-1), "sigmoid": expit, "none": lambda x: x}


async def _classify(request: Request, texts: list[str], parameters: ClassificationParameters | None) -> list[list[dict[str, Any]]]:
    service = request.app.state.service
    service.check_limits(texts)
    parameters = parameters or ClassificationParameters()
    labels = service.classifier.labels
    if parameters.function_to_apply is None:
        rows = await service.probabilities(texts)
    else:
        logits = await service.probabilities(texts, raw=True)
        rows = list(_APPLY[parameters.function_to_apply](np.asarray(logits, dtype=np.float64)))
    return [ranked(row, labels, parameters.top_k) for row in rows]


async def _zero_shot(request: Request, texts: list[str], parameters: ZeroShotParameters) -> list[list[dict[str, Any]]]:
    service = request.app.state.service
    service.check_limits(texts)
    labels = tuple(parameters.candidate_labels)
    service.check_limits(labels, what="parameters.candidate_labels")
    # /v1/zero-shot's key with its defaults (no threshold, inputs truncated), so the two share calls.
    key = (parameters.hypothesis_template or DEFAULT_HYPOTHESIS_TEMPLATE, bool(parameters.multi_label), None, "truncate", None, "mean")
    costs = service.token_costs(texts, rows=len(labels))
    results = await service.run("zero-shot", [(text, labels) for text in texts], key=key, costs=costs)
    return [[{"label": label, "score": score} for label, score in zip(r["labels"], r["scores"])] for r in results]


ClassificationAnswer = list[list[LabelScore]]
ZeroShotAnswer = list[LabelScore] | list[list[LabelScore]]


def add_routes(app: FastAPI, *, kind: str, nli: bool, routes: list[str]) -> list[str]:
    """Add ``POST /`` for a classifier (zero-shot too when ``nli``); for any other model, a 404 naming ``routes``."""
    if kind != "classifier":

        @app.post("/", include_in_schema=False)
        async def not_served() -> None:
            raise HTTPException(
                404,
                "POST / is the Hugging Face task format for text classification and zero-shot, which need a classifier; "
                f"this server holds a {kind} model and serves: {', '.join(routes)}.",
            )

        return []

    if not nli:

        @app.post(
            "/", response_model=ClassificationAnswer, responses=POST_ERRORS,
            summary="Hugging Face Inference API: text classification", tags=["Hugging Face"],
        )
        async def text_classification(body: ClassificationRequest, request: Request) -> Any:
            return await _classify(request, as_list(body.inputs), body.parameters)

        return ["POST /"]

    @app.post(
        "/", response_model=ClassificationAnswer | ZeroShotAnswer, responses=POST_ERRORS,
        summary="Hugging Face Inference API: zero-shot (with parameters.candidate_labels) or text classification",
        tags=["Hugging Face"],
    )
    async def task(body: TaskRequest, request: Request) -> Any:
        if isinstance(body.parameters, ZeroShotParameters):
            results = await _zero_shot(request, as_list(body.inputs), body.parameters)
            return results[0] if isinstance(body.inputs, str) else results
        return await _classify(request, as_list(body.inputs), body.parameters)

    return ["POST /"]


__all__ = ["add_routes", "ClassificationRequest", "TaskRequest", "ClassificationParameters", "ZeroShotParameters"]
