"""`fakescope serve`: REST API, durable jobs, API keys, usage metrics and a web page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fakescope.serve.settings import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app (imported lazily: `fakescope.serve` stays cheap to import for settings alone)."""
    from fakescope.serve.app import create_app as _create_app

    return _create_app(settings)
