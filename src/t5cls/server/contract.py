"""The OpenAPI document as a contract: every status a route answers, the error body, the limits.

FastAPI writes the schema from the routes; this module adds what it cannot know by itself: the
error statuses each route answers (all with :class:`~t5cls.server.bodies.ErrorBody`), and the
server's own limits (``max_inputs``, ``max_chars``, ``max_documents``) in place of the markers the
body types carry. ``tests/test_server_contract.py`` runs schemathesis against a real server to
hold the server to this document.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .bodies import LABEL_STRING_KEY, LIMIT_KEY, ErrorBody

_ERRORS = {
    400: "The body is not valid JSON.",
    404: "This model does not serve the route; the message names the routes it has.",
    413: "Too many inputs or documents, an input too long, or a body too large; the message names the limit.",
    422: "A field is missing, of the wrong type, unknown, or refused by the model; the message names it.",
    500: "An internal error; only this request failed.",
    503: "The server is shutting down, or too many requests are in flight.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the ``{"detail": str}`` body."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


POST_ERRORS = error_responses(400, 413, 422, 500, 503)
"""What every POST route can answer besides 200 (body checks, limits, the model, shutdown)."""

GET_ERRORS = error_responses(500)


def _label_string_pattern(min_items: int, max_items: int, max_chars: int) -> str:
    # One label: non-blank after strip(), at most max_chars long after strip().
    middle = f"(?:[^,]{{0,{max_chars - 2}}}[^\\s,])?" if max_chars >= 2 else ""
    label = f"\\s*[^\\s,]{middle}\\s*"
    return f"^{label}(?:,{label}){{{max(min_items - 1, 0)},{max(max_items - 1, 0)}}}$"


def apply_limits(schema: Any, limits: Mapping[str, int]) -> Any:
    """A copy of ``schema`` with every limit marker replaced by the server's number.

    ``{"x-t5cls-limit": {"maxItems": "max_inputs"}}`` becomes ``{"maxItems": 64}``; a
    comma-separated label string gets the pattern that bounds its count and label lengths. A limit
    not in ``limits`` (one the loaded model sets, asked for before it loaded) is left out.
    """
    if isinstance(schema, list):
        return [apply_limits(item, limits) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: apply_limits(value, limits) for key, value in schema.items() if key not in (LIMIT_KEY, LABEL_STRING_KEY)}
    for keyword, name in (schema.get(LIMIT_KEY) or {}).items():
        if name in limits:
            out[keyword] = int(limits[name])
    if LABEL_STRING_KEY in schema:
        min_items = int(schema[LABEL_STRING_KEY]["min_items"])
        out["pattern"] = _label_string_pattern(min_items, int(limits["max_inputs"]), int(limits["max_chars"]))
    return out


def install_openapi(app: FastAPI, limits: Callable[[], Mapping[str, int]]) -> None:
    """Make ``app.openapi()`` (``/openapi.json``, ``/docs``) publish the schema with ``limits()`` filled in.

    ``limits`` is called when the schema is first asked for: once the model is loaded, it knows
    the model's limits too (``max_stride``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                openapi_version=app.openapi_version,
            )
            limits_now = limits()
            filled = apply_limits(copy.deepcopy(schema), limits_now)
            if "max_stride" not in limits_now:
                return filled  # asked before the model loaded: not cached
            app.openapi_schema = filled
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_method_not_allowed(app: FastAPI) -> None:
    """Answer 405 with an ``Allow`` header listing every method of the path, not only the first route's.

    Starlette names the methods of the first route whose path matches; ``/`` has two routes (GET
    for the page, POST for the Hugging Face format), and RFC 9110 asks for all of them.
    """
    from fastapi.exception_handlers import http_exception_handler

    async def handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        methods: set[str] = set()
        for route in app.router.routes:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods.update(getattr(route, "methods", None) or ())
        return JSONResponse({"detail": str(exc.detail)}, status_code=405, headers={"Allow": ", ".join(sorted(methods))})

    app.add_exception_handler(StarletteHTTPException, handler)


__all__ = [
    "error_responses", "apply_limits", "install_openapi", "install_method_not_allowed", "POST_ERRORS", "GET_ERRORS",
]
