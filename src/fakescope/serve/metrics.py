"""Prometheus metrics of one service instance, in a registry of its own.

A dedicated registry (not prometheus_client's global one) keeps two apps in one process,
as in tests, from clashing, and keeps /metrics to what this service measures. Requests
are labelled by route template (/v1/jobs/{job_id}), never the raw path, so ids cannot
blow up the number of series.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("fakescope_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "fakescope_http_request_seconds", "HTTP request latency", ["method", "route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("fakescope_jobs_queued", "jobs waiting for a worker", registry=r)
        self.jobs_running = Gauge("fakescope_jobs_running", "jobs being analysed by this instance", registry=r)
        self.verdicts = Counter(
            "fakescope_verdicts", "finished analyses by verdict (or status when not scored)", ["verdict"], registry=r
        )
        self.jobs_finished = Counter("fakescope_jobs_finished", "jobs finished by this instance", ["kind", "status"], registry=r)
        self.model_load = Gauge(
            "fakescope_model_load_seconds", "seconds a worker process took to load its models", ["pool"], registry=r
        )
        self.detect_batch_size = Histogram(
            "fakescope_detect_batch_files",
            "files per batch sent to a detect worker",
            buckets=(1, 2, 3, 4, 6, 8, 16, 32, 64),
            registry=r,
        )
        self.cache_hits = Counter("fakescope_cache_hits", "analyses answered from a stored result", registry=r)
        self.cache_misses = Counter("fakescope_cache_misses", "analyses that needed a worker", registry=r)
        self.worker_restarts = Counter(
            "fakescope_worker_restarts", "worker pools rebuilt (crash, timeout, cancel)", ["pool"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type, for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware (no buffering of bodies): counts each HTTP request and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template, set on the scope by the router."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE
