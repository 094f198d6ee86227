"""text-embeddings-inference's formats: ``POST /predict`` (a classifier) and ``POST /rerank``.

- ``/predict`` ``{"inputs", "raw_scores"?, "truncate"?, "truncation_direction"?}``: ``inputs`` is a
  text, a ``[text, text_pair]`` pair, or an array of texts or of pairs, read as TEI reads it (an
  array of exactly two strings is one pair). One input answers ``[{"label", "score"}, ...]``, an
  array answers one such list per input; best first; ``raw_scores`` gives the logits.
- ``/rerank`` ``{"query", "texts", "raw_scores"?, "return_text"?, "truncate"?, "truncation_direction"?}``
  -> ``[{"index", "score", "text"?}]`` best first; ``score`` is P(relevant), or its log-odds with
  ``raw_scores``.

``truncate`` is accepted for compatibility: t5cls always truncates a classifier's input at the
model's ``max_length`` and splits long rerank documents into windows (MaxP); only right
truncation is done.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from .bodies import PAIR_SCHEMA, TEXT_SCHEMA, Documents, LabelScore, StrictBody, Text, array_schema, input_list, ranked
from .contract import POST_ERRORS
from .ranking import best_first, score_documents


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _predict_inputs(value: Any) -> Any:
    if _is_pair(value):
        if not all(v.strip() for v in value):
            raise PydanticCustomError("input_empty", "is a [text, text_pair] pair with an empty string; both texts need text.")
        return value
    items = input_list(value, allow_pairs=True)
    return value if isinstance(value, str) else [list(item) if isinstance(item, tuple) else item for item in items]


PredictInputs = Annotated[
    str | list[str] | list[list[str]],
    BeforeValidator(_predict_inputs),
    WithJsonSchema({"anyOf": [TEXT_SCHEMA, PAIR_SCHEMA, array_schema(TEXT_SCHEMA), array_schema(PAIR_SCHEMA)]}),
]

Direction = Literal["Right", "right"]


class PredictRequest(StrictBody):
    """TEI's ``/predict`` body."""

    inputs: PredictInputs = Field(description="A text, a [text, text_pair] pair, or an array of texts or of pairs.", examples=["a gripping film"])
    raw_scores: bool = Field(False, description="Logits instead of probabilities.")
    truncate: bool | None = Field(None, description="Accepted; inputs are always truncated at the model's max_length.")
    truncation_direction: Direction | None = Field(None, description="Only right truncation is done.")


class RerankRequest(StrictBody):
    """TEI's ``/rerank`` body."""

    query: Text = Field(examples=["what is the capital of France?"])
    texts: Documents = Field(description="The documents to rank.", examples=[["Paris is the capital of France.", "Bananas are yellow."]])
    raw_scores: bool = Field(False, description="Log-odds of relevance instead of P(relevant).")
    return_text: bool = Field(False, description="Include each document's text.")
    truncate: bool | None = Field(None, description="Accepted; long documents are always split into windows and scored by the best.")
    truncation_direction: Direction | None = Field(None, description="Only right truncation is done.")


class Rank(BaseModel):
    index: int
    score: float
    text: str | None = Field(None, description="The document, with return_text.")


def add_routes(app: FastAPI, *, classifier: bool, rerank: bool) -> list[str]:
    """Add ``POST /predict`` (for a classifier) and ``POST /rerank`` (for a reranking model)."""
    endpoints = []
    if classifier:
        endpoints.append("POST /predict")

        @app.post(
            "/predict", response_model=list[LabelScore] | list[list[LabelScore]], responses=POST_ERRORS,
            summary="text-embeddings-inference: classify", tags=["text-embeddings-inference"],
        )
        async def predict(body: PredictRequest, request: Request) -> Any:
            service = request.app.state.service
            single = isinstance(body.inputs, str) or _is_pair(body.inputs)
            items = [body.inputs] if single else body.inputs
            items = [tuple(item) if isinstance(item, list) else item for item in items]
            service.check_limits(items)
            rows = await service.probabilities(items, raw=body.raw_scores)
            results = [ranked(np.asarray(row), service.classifier.labels) for row in rows]
            return results[0] if single else results

    if rerank:
        endpoints.append("POST /rerank")

        @app.post(
            "/rerank", response_model=list[Rank], response_model_exclude_none=True, responses=POST_ERRORS,
            summary="text-embeddings-inference: rerank texts for a query", tags=["text-embeddings-inference"],
        )
        async def rerank_texts(body: RerankRequest, request: Request) -> Any:
            scores, log_odds = await score_documents(request, body.query, body.texts, what="texts")
            shown = log_odds if body.raw_scores else scores
            return [
                {"index": i, "score": float(shown[i]), **({"text": body.texts[i]} if body.return_text else {})}
                for i in best_first(scores)
            ]

    return endpoints


__all__ = ["add_routes", "PredictRequest", "RerankRequest"]
