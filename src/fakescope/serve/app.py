"""The FastAPI application: wiring of settings, database, storage, workers, routes and the web page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fakescope.constants import __version__
from fakescope.errors import FakescopeError, MissingFileError
from fakescope.serve.auth import owner_dependency, session_secret
from fakescope.serve.db import make_engine, session_factory, upgrade_database
from fakescope.serve.jobs import JobRunner
from fakescope.serve.metrics import Metrics, MetricsMiddleware
from fakescope.serve.ratelimit import RateLimits
from fakescope.serve.routes import api_docs, detect, health, jobs, models, session, stats
from fakescope.serve.service import Service
from fakescope.serve.settings import ServeSettings
from fakescope.serve.storage import BlobStore, EmptyUploadError, StorageFullError, UploadTooLargeError
from fakescope.serve.sync_detect import DetectTimeoutError
from fakescope.serve.uploads import BodyLimitMiddleware

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}
DESCRIPTION = """Deepfake detection as a service: faces in images and videos, whole AI-generated pictures,
synthetic speech. Send a file to POST /v1/detect for an answer in the same request, or to POST /v1/jobs
for durable background analysis (long videos, server paths, URLs, webhooks).

Authenticate with an API key (`fakescope keys create NAME`) as `Authorization: Bearer <key>` or `X-API-Key`;
the web page signs in with one (POST /v1/session). Every error is JSON `{"detail": "<one line>"}`."""
# How `fakescope serve` runs uvicorn: no `server` header (it names the software to scanners), and no
# rewriting of the client address from X-Forwarded-For: the rate limits read that header themselves,
# and only from the proxies `trusted_proxies` names (uvicorn would believe any loopback peer).
UVICORN_OPTIONS: dict[str, Any] = {"server_header": False, "proxy_headers": False}
# FakescopeError subclasses a request can raise, and the status each means.
ERROR_STATUS: dict[type[FakescopeError], int] = {
    UploadTooLargeError: 413,
    StorageFullError: 507,
    EmptyUploadError: 422,
    DetectTimeoutError: 504,
    MissingFileError: 404,
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The service as an ASGI app; migrations, worker pools and the dispatcher start with its lifespan."""
    settings = settings or ServeSettings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db_url = settings.resolved_db_url()
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    metrics = Metrics()
    blobs = BlobStore(settings.blob_dir, budget_bytes=settings.max_storage_bytes, min_free_bytes=settings.min_free_disk_bytes)
    service = Service(
        settings=settings,
        engine=engine,
        sessions=sessions,
        blobs=blobs,
        runner=JobRunner(settings, sessions, blobs, metrics),
        limiter=RateLimits.from_settings(settings),
        metrics=metrics,
        require_owner=owner_dependency(settings, sessions),
        session_secret=session_secret(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(upgrade_database, db_url)
        blobs.clean_tmp()
        await anyio.to_thread.run_sync(service.runner.start)
        log.info("fakescope service started (data in %s)", settings.data_dir)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.runner.stop)
            engine.dispose()

    # /docs is api_docs' own page with Swagger UI's files served from here; FastAPI's would load them from a CDN.
    app = FastAPI(
        title="fakescope", version=__version__, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, detect_bytes=settings.max_detect_bytes, upload_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Fakescope-Client"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(NoStoreMiddleware)
    _add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api_docs.router)
    for module in (detect, jobs, models, session, stats):
        app.include_router(module.router)
    if settings.web_page:
        _add_web_page(app)
    return app


def _add_web_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        """The page alone: it grants nothing. When keys are required it signs in with one (POST /v1/session)."""
        return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


class NoStoreMiddleware:
    """API answers are one caller's data: `Cache-Control: no-store` unless a route chose otherwise, and `nosniff`.

    Applies to everything under /v1 and to every JSON answer (errors of middlewares included);
    a route that sets its own Cache-Control (face thumbnails, the page, Swagger UI's files) keeps it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                json = headers.get("content-type", "").startswith("application/json")
                if (api or json) and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error becomes {"detail": "<one line>"}; an unexpected one is logged with its traceback, never sent."""

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"detail": one_line(detail)}, status_code=exc.status_code, headers=exc.headers)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    async def fakescope_error(_request: Request, exc: Exception) -> JSONResponse:
        status = next((code for cls, code in ERROR_STATUS.items() if isinstance(exc, cls)), 422)
        return JSONResponse({"detail": one_line(str(exc))}, status_code=status)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500, headers={"Cache-Control": "no-store"})

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(FakescopeError, fakescope_error)
    app.add_exception_handler(Exception, unexpected)


def validation_message(exc: RequestValidationError) -> str:
    """The first problem as `field: message`, e.g. "limit: Input should be less than or equal to 100"."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")]
    message = f"{'.'.join(loc)}: {first.get('msg', 'invalid')}" if loc else str(first.get("msg", "invalid request"))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return one_line(message + more)


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]
