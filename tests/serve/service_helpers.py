"""Helpers for tests that run the service: clients, waiting for readiness and jobs, small media files."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, shared

REAL_CLIP = EXAMPLES / "real_ffpp_866.mp4"
# Its keyframes after the first decode to garbage when seeked to: thumbnails must not seek.
FAKE_CLIP = EXAMPLES / "fake_ffpp_deepfakes_866_878.mp4"
FACE_IMAGES = ["aabmgfhcgg.jpg", "aafkeenkqm.jpg", "aagkcljeci.jpg"]
FINAL = ("done", "failed")


def face_image(index: int = 0) -> Path:
    return shared("dfdc_faces", "fake", FACE_IMAGES[index])


def unique_image(tmp_path: Path, marker: str, index: int = 0) -> Path:
    """A face image with bytes no other test sends (JPEG decoders ignore what follows the end marker)."""
    out = tmp_path / f"{marker}.jpg"
    out.write_bytes(face_image(index).read_bytes() + marker.encode())
    return out


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_ready(client: Any, timeout: float = 180.0) -> None:
    wait_until(lambda: client.get("/readyz").status_code == 200, timeout, "the service to be ready", interval=0.25)


def wait_job(client: Any, job_id: str, timeout: float = 120.0, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll a job until it is done or failed; returns its JobOut."""

    def final() -> dict[str, Any] | None:
        response = client.get(f"/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job = response.json()
        return job if job["status"] in FINAL else None

    return wait_until(final, timeout, f"job {job_id}", interval=0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(app: Any, port: int, **options: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on loopback in a thread (real HTTP, real concurrency); yields its base URL.
    `options` go to uvicorn.Config (e.g. `fakescope serve`'s own, serve.app.UVICORN_OPTIONS)."""
    import uvicorn

    config = {"log_config": None, "access_log": False, **options}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "uvicorn to start", interval=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
