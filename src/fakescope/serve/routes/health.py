"""Liveness, readiness and Prometheus metrics, at the root (no API key: for probes and scrapers)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from fakescope.serve.routes import error, service
from fakescope.serve.schemas import Health

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """200 whenever the process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: error("database unreachable or models not loaded yet")})
def readyz(request: Request) -> Health:
    """200 once the database answers and every worker process has loaded its models; 503 with the reason before."""
    svc = service(request)
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        log.warning("readiness: database unreachable: %s", err)
        raise HTTPException(503, "database unreachable") from None
    reason = svc.runner.not_ready_reason()
    if reason is not None:
        raise HTTPException(503, reason)
    return Health(status="ready")


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}}
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency per route, queue depth, running jobs, verdicts, cache, model load."""
    svc = service(request)
    try:
        svc.runner.refresh_gauges()
    except SQLAlchemyError:
        log.warning("metrics: queue depth not refreshed (database unreachable)")
    body, content_type = svc.metrics.render()
    return Response(body, media_type=content_type)
