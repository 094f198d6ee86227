"""Cohere's rerank formats: ``POST /v1/rerank`` (``cohere.Client``) and ``POST /v2/rerank`` (``cohere.ClientV2``).

``{"model"?, "query", "documents": [str | {"text", ...}], "top_n"?, "return_documents"?}`` ->
``{"id", "results": [{"index", "relevance_score", "document"?: {"text", ...}}], "meta"}``, best
first, ``relevance_score`` = P(relevant) in [0, 1]. v1 documents may be objects with a ``text``
field (other fields come back unchanged in ``document``); v2 documents are strings. ``model`` is
accepted and not checked: the server serves one model.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, WithJsonSchema

from .bodies import TEXT_SCHEMA, Count, Documents, StrictBody, Text, array_schema
from .contract import POST_ERRORS
from .ranking import best_first, score_documents


class Document(BaseModel):
    """A v1 document object: ``text`` is ranked; any other fields are returned as they came."""

    model_config = ConfigDict(extra="allow", strict=True, regex_engine="python-re")
    text: Text


DOCUMENT_SCHEMA = {"type": "object", "properties": {"text": TEXT_SCHEMA}, "required": ["text"], "additionalProperties": True}

V1Document = Annotated[
    Annotated[Text, Tag("string")] | Annotated[Document, Tag("object")], Discriminator(lambda v: "object" if isinstance(v, dict) else "string")
]
V1Documents = Annotated[
    list[V1Document],
    Field(min_length=1),
    WithJsonSchema(array_schema({"anyOf": [TEXT_SCHEMA, DOCUMENT_SCHEMA]}, limit="max_documents")),
]


class V1RerankRequest(StrictBody):
    """The body ``cohere.Client.rerank`` sends."""

    model: str | None = Field(None, description="Accepted and not checked: this server serves one model.")
    query: Text = Field(examples=["what is the capital of France?"])
    documents: V1Documents = Field(examples=[["Paris is the capital of France.", "Bananas are yellow."]])
    top_n: Count | None = Field(None, description="Return the n best documents (default: all).")
    return_documents: bool | None = Field(None, description="Include each document (default false).")


class V2RerankRequest(StrictBody):
    """The body ``cohere.ClientV2.rerank`` sends."""

    model: str | None = Field(None, description="Accepted and not checked: this server serves one model.")
    query: Text = Field(examples=["what is the capital of France?"])
    documents: Documents = Field(examples=[["Paris is the capital of France.", "Bananas are yellow."]])
    top_n: Count | None = Field(None, description="Return the n best documents (default: all).")


class ResultDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str


class Result(BaseModel):
    index: int
    relevance_score: float = Field(ge=0.0, le=1.0, description="P(relevant).")
    document: ResultDocument | None = None


class RerankResponse(BaseModel):
    id: str
    results: list[Result] = Field(description="Best first.")
    meta: dict[str, Any]


async def _rank(request: Request, body: V1RerankRequest | V2RerankRequest, *, version: str, return_documents: bool) -> dict[str, Any]:
    documents = [d if isinstance(d, Document) else Document(text=d) for d in body.documents]
    scores, _ = await score_documents(request, body.query, [d.text for d in documents])
    results = []
    for i in best_first(scores, body.top_n):
        result: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
        if return_documents:
            result["document"] = documents[i].model_dump()
        results.append(result)
    return {"id": str(uuid.uuid4()), "results": results, "meta": {"api_version": {"version": version}}}


def add_routes(app: FastAPI, *, rerank: bool) -> list[str]:
    """Add ``POST /v1/rerank`` and ``POST /v2/rerank`` when the model reranks."""
    if not rerank:
        return []

    @app.post(
        "/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True, responses=POST_ERRORS,
        summary="Cohere v1 rerank", tags=["Cohere"],
    )
    async def rerank_v1(body: V1RerankRequest, request: Request) -> Any:
        return await _rank(request, body, version="1", return_documents=bool(body.return_documents))

    @app.post(
        "/v2/rerank", response_model=RerankResponse, response_model_exclude_none=True, responses=POST_ERRORS,
        summary="Cohere v2 rerank", tags=["Cohere"],
    )
    async def rerank_v2(body: V2RerankRequest, request: Request) -> Any:
        return await _rank(request, body, version="2", return_documents=False)

    return ["POST /v1/rerank", "POST /v2/rerank"]


__all__ = ["add_routes", "V1RerankRequest", "V2RerankRequest"]
