"""`Service`: what a request handler may need, kept on `app.state.service`.

Its own module so that the routes can name it without importing the app that mounts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fakescope.serve.auth import Caller
from fakescope.serve.jobs import JobRunner
from fakescope.serve.metrics import Metrics
from fakescope.serve.ratelimit import RateLimits
from fakescope.serve.settings import ServeSettings
from fakescope.serve.storage import BlobStore


@dataclass
class Service:
    """Everything a request handler may need, on `app.state.service`."""

    settings: ServeSettings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
    runner: JobRunner
    limiter: RateLimits
    metrics: Metrics
    require_owner: Callable[[Request], Caller]
    session_secret: str
