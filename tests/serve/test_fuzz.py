"""Property-based requests generated from the app's own OpenAPI schema: no 5xx, answers match the schema."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from fakescope.serve import ServeSettings, create_app
from tests.serve.service_helpers import wait_ready

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
APP = create_app(
    ServeSettings(
        data_dir=tempfile.mkdtemp(prefix="fakescope-fuzz-"),
        no_auth=True,
        frames=4,
        rate_limit_per_minute=100_000,
        max_detect_bytes=256 * 1024,
        max_upload_bytes=256 * 1024,
    )
)


async def without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """APP for schemathesis, which would run (and end) the lifespan around every operation: the module
    fixture runs it once instead, so the workers load their models once."""
    if scope["type"] == "lifespan":
        return
    await APP(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", without_lifespan)


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    with TestClient(APP) as client:
        wait_ready(client)
        yield


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_answers_conform_to_its_schema(case):
    case.call_and_validate(checks=CHECKS)
