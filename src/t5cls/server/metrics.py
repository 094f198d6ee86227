"""Prometheus metrics of one server (``GET /metrics``), with ``prometheus-client``.

- ``t5cls_requests_total{route, status}``: answered requests (``route`` is ``"POST /v1/classify"``;
  requests that match no route or method count as ``"unmatched"``, so clients cannot grow the label set);
- ``t5cls_request_seconds{route}``: a histogram of the time to answer;
- ``t5cls_batch_size``: a histogram of the inputs in each model call (merged requests);
- ``t5cls_queue_length``: requests waiting for a model call, read when scraped.

Each app has its own registry, so several servers in one process (tests) do not share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .contract import GET_ERRORS

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServerMetrics:
    """The metrics of one app; ``queue_length`` is a function read at scrape time."""

    def __init__(self, queue_length: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.requests = Counter("t5cls_requests", "Answered requests.", ["route", "status"], registry=self.registry)
        self.seconds = Histogram("t5cls_request_seconds", "Time to answer a request.", ["route"], registry=self.registry)
        self.batch_size = Histogram("t5cls_batch_size", "Inputs per model call.", buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self.queue_length = Gauge("t5cls_queue_length", "Requests waiting for a model call.", registry=self.registry)
        self.queue_length.set_function(queue_length)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route and status."""

    def __init__(self, app: Any, *, metrics: Callable[[], ServerMetrics | None]):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app fails before answering

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics = self.metrics()
            if metrics is not None:
                # The router leaves the matched route in the scope; its path is the template, not the URL.
                route = scope.get("route")
                served = scope["method"] in (getattr(route, "methods", None) or ())  # not a 405 for any method name
                label = f"{scope['method']} {route.path}" if served else "unmatched"
                metrics.requests.labels(route=label, status=str(status)).inc()
                metrics.seconds.labels(route=label).observe(time.perf_counter() - start)


def add_routes(app: FastAPI) -> list[str]:
    """``GET /metrics`` (Prometheus text format) and the middleware that feeds it.

    The metrics object lives in ``app.state.metrics``, made by the lifespan (it reads the service's queue).
    """
    app.add_middleware(RequestMetrics, metrics=lambda: getattr(app.state, "metrics", None))

    @app.get(
        "/metrics", summary="Prometheus metrics: requests, latency, batch sizes, queue length", response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."}, **GET_ERRORS},
    )
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return ["GET /metrics"]


__all__ = ["ServerMetrics", "RequestMetrics", "add_routes"]
