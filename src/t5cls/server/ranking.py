"""What the rerank routes (TEI ``/rerank``, Cohere ``/v1/rerank`` and ``/v2/rerank``) share.

One request's documents become one batcher submission of ``(query, document)`` pairs, so they are
scored in one call of :meth:`t5cls.Reranker.score` (sorted by length, packed to the token budget),
merged with other requests' pairs when they arrive together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from fastapi import Request
from scipy.special import expit


async def score_documents(request: Request, query: str, documents: Sequence[str], *, what: str = "documents") -> tuple[np.ndarray, np.ndarray]:
    """P(relevant) and its log-odds for each document and ``query``, in document order; 413 beyond the limits."""
    service = request.app.state.service
    service.check_limits([query], what="query")
    service.check_limits(list(documents), what=what, limit="max_documents")
    pairs = [(query, document) for document in documents]
    log_odds = np.asarray(await service.run("rerank", pairs), dtype=np.float64)
    return expit(log_odds), log_odds


def best_first(scores: np.ndarray, top_n: int | None = None) -> list[int]:
    """Document indices by score, best first (ties keep document order), at most ``top_n``."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:top_n]]


__all__ = ["score_documents", "best_first"]
