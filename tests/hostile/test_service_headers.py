"""What the service's answers say about themselves: no CDN behind /docs, no `server` header, no caching of API data.

The server tests run the real app under uvicorn on loopback, with the options `fakescope serve`
uses, and send oversized and forged headers at it.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fakescope.serve import ServeSettings, create_app
from fakescope.serve.app import UVICORN_OPTIONS
from fakescope.serve.db import upgrade_database
from tests.serve.service_helpers import face_image, free_port, running_server

pytestmark = pytest.mark.timeout(60)


def app_for(tmp_path: Path, **overrides: Any) -> Any:
    settings = ServeSettings(**({"data_dir": tmp_path / "data"} | overrides))
    upgrade_database(settings.resolved_db_url())
    return create_app(settings)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The real app without its lifespan (no worker processes), keys required."""
    app = app_for(tmp_path)
    yield TestClient(app)
    app.state.service.engine.dispose()


def test_docs_load_nothing_from_outside(client):
    """Was: /docs pulled Swagger UI from a CDN (and /redoc another), though the tool runs offline."""
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(links) == ["/docs/assets/favicon-32x32.png", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]
    assert "url: '/openapi.json'" in page.text and '"validatorUrl": null' in page.text
    assert not re.search(r"https?://", page.text), "no absolute URL at all"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "http" not in csp
    assets = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}
    for name, kind in assets.items():
        asset = client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind) and len(asset.content) > 500
    for other in ["index.html", "swagger-initializer.js", "..%2F__init__.py", "swagger-ui-bundle.js.map"]:
        assert client.get(f"/docs/assets/{other}").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "fakescope"


def test_api_answers_are_never_cached(tmp_path, client):
    """Was: API JSON (results, jobs, usage) came without Cache-Control, so a shared cache could keep it."""
    open_client = TestClient(app_for(tmp_path / "open", no_auth=True, max_detect_bytes=100))
    answers = {
        "401": client.get("/v1/jobs"),
        "jobs": open_client.get("/v1/jobs"),
        "stats": open_client.get("/v1/stats"),
        "beacon 204": open_client.post("/v1/beacon", json={"event": "page_view"}),
        "422": open_client.get("/v1/jobs", params={"limit": 10_000}),
        "413": open_client.post("/v1/detect", files={"file": ("big.jpg", face_image().read_bytes())}),
        "404": open_client.get("/v1/nope"),
        "openapi": open_client.get("/openapi.json"),
        "healthz": open_client.get("/healthz"),
    }
    for name, response in answers.items():
        assert response.headers.get("cache-control") == "no-store", name
        assert response.headers.get("x-content-type-options") == "nosniff", name
    assert answers["413"].status_code == 413 and answers["beacon 204"].status_code == 204
    assert client.get("/").headers["cache-control"] == "no-store"
    assert client.get("/docs/assets/swagger-ui.css").headers["cache-control"] == "public, max-age=86400", "a route's choice stays"
    open_client.app.state.service.engine.dispose()


def test_fakescope_serve_runs_uvicorn_without_server_header_or_forwarded_headers(tmp_path, monkeypatch):
    import uvicorn

    from fakescope.cli import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path / "data"), "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert seen["server_header"] is False and seen["proxy_headers"] is False


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` under uvicorn on loopback with `fakescope serve`'s options (lifespan off: no workers)."""
    with running_server(app, free_port(), lifespan="off", **UVICORN_OPTIONS) as base:
        yield base


def raw_request(base: str, head: bytes) -> bytes:
    """Send raw request bytes and read the answer's first bytes (b"" if the server just closed)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head)
            return sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_the_real_server_hides_its_name_and_ignores_forged_forwarding(tmp_path):
    """Was: `server: uvicorn` on every answer, and uvicorn believed any loopback peer's X-Forwarded-For."""
    app = app_for(tmp_path, no_auth=True, rate_limit_per_address_per_minute=3)
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and "server" not in health.headers
        statuses = [http.get("/v1/jobs", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(6)]
        assert statuses == [200] * 3 + [429] * 3, "a forged X-Forwarded-For does not make a new address"
        assert "server" not in http.get("/v1/jobs").headers
    app.state.service.engine.dispose()


def test_huge_and_malformed_headers_get_clear_answers(tmp_path):
    app = app_for(tmp_path, trusted_proxies=["127.0.0.1"])
    with serving(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        huge = raw_request(base, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        assert huge == b"" or re.match(rb"HTTP/1\.1 4\d\d ", huge), huge[:200]
        hops = ", ".join(f"10.0.{i // 250}.{i % 250}" for i in range(1000))
        forwarded = http.get("/v1/jobs", headers={"X-Forwarded-For": hops})
        assert forwarded.status_code == 401 and forwarded.json()["detail"].startswith("missing API key")
        assert http.get("/v1/jobs", headers={"Authorization": "Bearer " + "A" * 8000}).status_code == 401
        assert http.get("/v1/jobs", headers={"X-API-Key": ("fsk_" + "é" * 50).encode()}).status_code == 401
        cookie = http.get("/v1/jobs", headers={"Cookie": "fakescope_session=" + "a." * 3000})
        assert cookie.status_code == 401 and "sign in" in cookie.json()["detail"]
        assert http.get("/healthz").status_code == 200, "still serving"
    app.state.service.engine.dispose()
