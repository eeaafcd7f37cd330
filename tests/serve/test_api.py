"""The HTTP API through the real app: models in spawned workers, SQLite (and PostgreSQL for the main flow)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakescope.constants import DEFAULT_MODEL
from fakescope.serve import ServeSettings, create_app
from fakescope.serve.auth import SESSION_COOKIE, create_key
from fakescope.serve.db import Job, new_id, utcnow
from fakescope.serve.job_queue import MAX_ATTEMPTS
from fakescope.serve.uploads import clean_filename
from fakescope.serve.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.conftest import EXAMPLES
from tests.serve.service_helpers import (
    FAKE_CLIP,
    REAL_CLIP,
    face_image,
    unique_image,
    wait_job,
    wait_ready,
    wait_until,
)

WEBHOOK_SECRET = "test-webhook-secret-0123456789"
RATE_LIMIT = 400


def small_settings(data_dir: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "frames": 8,
        "workers": 1,
        "detect_workers": 1,
        "max_detect_bytes": 1024 * 1024,
        "max_upload_bytes": 4 * 1024 * 1024,
        "webhook_secret": WEBHOOK_SECRET,
        "rate_limit_per_minute": RATE_LIMIT,
    }
    return ServeSettings(**(values | overrides))


def new_key(app: Any, name: str, *, admin: bool = False) -> dict[str, str]:
    with app.state.service.sessions() as session:
        _, token = create_key(session, name, admin=admin)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def allowed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("allowed")
    shutil.copyfile(REAL_CLIP, root / "clip.mp4")
    (root / "alias.mp4").symlink_to(root / "clip.mp4")
    (root / "escape.mp4").symlink_to(REAL_CLIP)
    return root.resolve()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, allowed_root: Path) -> Iterator[TestClient]:
    """One app (two model-loading worker processes) shared by the module's tests."""
    # The file server and webhook receiver of these tests listen on loopback, which only an explicit allow-list opens.
    settings = small_settings(
        tmp_path_factory.mktemp("service"), allowed_roots=[allowed_root], url_hosts=["127.0.0.1"], egress_allow=["127.0.0.1"]
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def alice(client: TestClient) -> dict[str, str]:
    return new_key(client.app, "alice")


@pytest.fixture(scope="module")
def bob(client: TestClient) -> dict[str, str]:
    return new_key(client.app, "bob")


def post_job(client: TestClient, headers: dict[str, str], path: Path, **data: Any) -> dict[str, Any]:
    with path.open("rb") as fh:
        response = client.post("/v1/jobs", headers=headers, files={"file": (path.name, fh)}, data=data)
    assert response.status_code == 202, response.text
    return response.json()


def detect(client: TestClient, headers: dict[str, str], path: Path, name: str | None = None, **params: Any):
    with path.open("rb") as fh:
        return client.post("/v1/detect", headers=headers, params=params, files={"file": (name or path.name, fh)})


def test_client_file_names_are_display_text_only():
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\clip.mp4") == "clip.mp4"
    assert clean_filename("a\x00b\x1bc\x7f\u202e.jpg") == "abc.jpg"
    assert clean_filename("x" * 500 + ".jpg") == "x" * 200
    assert clean_filename("..") == clean_filename("") == clean_filename(None) == "upload"


def test_detect_an_image_answers_its_result(client, alice):
    response = detect(client, alice, face_image(), name="../../secret dir/face.jpg")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "ok" and result["media_type"] == "image" and 0.0 <= result["score"] <= 1.0
    assert result["verdict"] in ("authentic", "suspicious", "manipulated")
    assert result["file"] == "face.jpg" and "blobs" not in json.dumps(result)
    history = client.get("/v1/jobs", headers=alice, params={"limit": 100}).json()["items"]
    row = next(j for j in history if j["kind"] == "detect" and j["sha256"] == result["sha256"])
    assert row["status"] == "done" and row["result"] == result
    thumb = client.get(f"/v1/jobs/{row['id']}/faces/{result['faces'][0]['track_id']}.jpg", headers=alice)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"


def test_video_job_runs_to_done_with_a_face_thumbnail(client, alice):
    job = post_job(client, alice, FAKE_CLIP, force="true")
    assert job["status"] == "queued" and job["kind"] == "job" and job["media_type"] == "video" and not job["cached"]
    done = wait_job(client, job["id"], headers=alice)
    assert done["status"] == "done" and done["attempts"] == 1 and done["error"] is None
    result = done["result"]
    assert result["media_type"] == "video" and result["file"] == FAKE_CLIP.name and result["faces"]
    assert done["score"] == result["score"] and done["verdict"] == result["verdict"]
    track = result["faces"][0]["track_id"]
    url = done["faces_url_template"].replace("{track_id}", str(track))
    assert url == f"/v1/jobs/{job['id']}/faces/{track}.jpg"
    thumb = client.get(url, headers=alice)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(thumb.content))
    assert picture.format == "JPEG" and 32 <= max(picture.size) <= 160
    spread = np.asarray(picture.convert("RGB"), dtype=float).std(axis=(0, 1)).max()
    assert spread > 12, f"a flat thumbnail (pixel spread {spread:.1f}) is not a face"
    missing = client.get(f"/v1/jobs/{job['id']}/faces/99.jpg", headers=alice)
    assert missing.status_code == 404 and "no thumbnail" in missing.json()["detail"]


def test_history_filters_and_pages_newest_first(client, tmp_path):
    carol = new_key(client.app, "carol")
    ids = [post_job(client, carol, unique_image(tmp_path, f"history-{i}", i % 3))["id"] for i in range(3)]
    for job_id in ids:
        wait_job(client, job_id, headers=carol)
    page = client.get("/v1/jobs", headers=carol, params={"limit": 2}).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = client.get("/v1/jobs", headers=carol, params={"limit": 2, "offset": 2}).json()
    assert [j["id"] for j in rest["items"]] == ids[:1]
    images = client.get("/v1/jobs", headers=carol, params={"media_type": "image", "status": "done"}).json()
    assert images["total"] == 3
    assert client.get("/v1/jobs", headers=carol, params={"media_type": "video"}).json()["total"] == 0
    verdict = images["items"][0]["verdict"]
    same = client.get("/v1/jobs", headers=carol, params={"verdict": verdict}).json()
    assert same["total"] >= 1 and all(j["verdict"] == verdict for j in same["items"])


def test_delete_removes_the_job_and_its_unreferenced_upload(client, alice, tmp_path):
    job = wait_job(client, post_job(client, alice, unique_image(tmp_path, "to-delete"))["id"], headers=alice)
    blob = client.app.state.service.blobs.path_for(job["sha256"])
    assert blob.is_file()
    assert client.delete(f"/v1/jobs/{job['id']}", headers=alice).status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}", headers=alice).status_code == 404
    assert client.delete(f"/v1/jobs/{job['id']}", headers=alice).status_code == 404
    assert not blob.exists()


def test_keys_are_required_and_each_key_sees_only_its_jobs(client, alice, bob, tmp_path):
    for headers in ({}, {"Authorization": "Bearer fsk_" + "x" * 43}, {"X-API-Key": "nope"}):
        response = client.get("/v1/jobs", headers=headers)
        assert response.status_code == 401 and isinstance(response.json()["detail"], str)
    job = post_job(client, bob, unique_image(tmp_path, "bobs"))
    x_api_key = {"X-API-Key": bob["Authorization"].removeprefix("Bearer ")}
    assert client.get(f"/v1/jobs/{job['id']}", headers=x_api_key).status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}", headers=alice).status_code == 404
    assert client.delete(f"/v1/jobs/{job['id']}", headers=alice).status_code == 404
    assert job["id"] not in {j["id"] for j in client.get("/v1/jobs", headers=alice, params={"limit": 100}).json()["items"]}


def test_too_large_uploads_are_refused_with_413(client, alice):
    big = b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 100 * 1024)
    response = client.post("/v1/detect", headers=alice, files={"file": ("big.jpg", big)})
    assert response.status_code == 413 and response.json()["detail"] == "file too large: the limit is 1 MiB"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while counting
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(6):
            yield b"\0" * (1024 * 1024)

    headers = alice | {"Content-Type": "multipart/form-data; boundary=b"}
    response = client.post("/v1/jobs", headers=headers, content=chunks())
    assert response.status_code == 413 and response.json()["detail"] == "file too large: the limit is 4 MiB"
    exact = b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 1 - 3)  # passes the body check, stopped by the byte count
    response = client.post("/v1/detect", headers=alice, files={"file": ("exact.jpg", exact)})
    assert response.status_code == 413


def test_unsupported_content_is_refused_with_415_before_any_job(client, alice):
    before = client.get("/v1/jobs", headers=alice).json()["total"]
    for endpoint in ("/v1/detect", "/v1/jobs"):
        response = client.post(endpoint, headers=alice, files={"file": ("movie.mp4", b"just some text, not a video")})
        assert response.status_code == 415 and response.json()["detail"].startswith("unsupported media type")
    empty = client.post("/v1/jobs", headers=alice, files={"file": ("empty.jpg", b"")})
    assert empty.status_code == 422 and empty.json()["detail"] == "empty file"
    assert client.get("/v1/jobs", headers=alice).json()["total"] == before


def test_bad_requests_get_one_line_422s(client, alice):
    cases = [
        client.post("/v1/jobs", headers=alice),
        client.post(
            "/v1/jobs", headers=alice, files={"file": ("a.jpg", face_image().read_bytes())}, data={"path": str(REAL_CLIP)}
        ),
        client.post(
            "/v1/jobs",
            headers=alice,
            files={"file": ("a.jpg", face_image().read_bytes())},
            data={"webhook_url": "ftp://example.com/hook"},
        ),
        client.get("/v1/jobs", headers=alice, params={"limit": 1000}),
        client.get("/v1/jobs", headers=alice, params={"status": "sleeping"}),
        client.post("/v1/detect", headers=alice),
        client.post("/v1/beacon", headers=alice, json={"event": "page_view", "seconds": -1}),
    ]
    for response in cases:
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and detail
    assert cases[0].json()["detail"] == "give exactly one of file, path or url"
    assert cases[3].json()["detail"] == "limit: Input should be less than or equal to 100"


def test_rate_limit_answers_429_with_retry_after(client):
    dave = new_key(client.app, "dave")
    ok = 0
    while (response := client.get("/v1/models", headers=dave)).status_code == 200 and ok < 2 * RATE_LIMIT:
        ok += 1
    assert RATE_LIMIT <= ok < 2 * RATE_LIMIT  # the burst, plus what refilled meanwhile
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert client.get("/v1/models", headers=new_key(client.app, "erin")).status_code == 200  # per key
    assert response.json()["detail"].startswith("rate limit exceeded")


def test_server_paths_must_stay_inside_the_allowed_roots(client, alice, allowed_root):
    job = client.post("/v1/jobs", headers=alice, data={"path": str(allowed_root / "alias.mp4")})
    assert job.status_code == 202 and job.json()["source"] == "path" and job.json()["filename"] == "clip.mp4"
    assert wait_job(client, job.json()["id"], headers=alice)["status"] == "done"
    refused = [
        "/etc/passwd",
        str(allowed_root / ".." / ".." / ".." / "etc" / "passwd"),
        str(allowed_root / "escape.mp4"),
        str(EXAMPLES / "real_ffpp_866.mp4"),
    ]
    for path in refused:
        response = client.post("/v1/jobs", headers=alice, data={"path": path})
        assert response.status_code == 403, path
        assert response.json()["detail"] == "path is outside the allowed roots"
    missing = client.post("/v1/jobs", headers=alice, data={"path": str(allowed_root / "nope.mp4")})
    assert missing.status_code == 404
    directory = client.post("/v1/jobs", headers=alice, data={"path": str(allowed_root)})
    assert directory.status_code == 422 and directory.json()["detail"] == "path: not a regular file"


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server for URL jobs: /face.jpg, /big.jpg (5 MiB), /moved (a redirect), /notes.txt."""
    shutil.copyfile(face_image(), tmp_path / "face.jpg")
    (tmp_path / "big.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024))
    (tmp_path / "notes.txt").write_text("not media")

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/face.jpg")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_url_jobs_fetch_from_allowed_hosts_only(client, alice, file_server):
    job = client.post("/v1/jobs", headers=alice, data={"url": f"{file_server}/face.jpg", "force": "true"})
    assert job.status_code == 202 and job.json()["source"] == "url" and job.json()["filename"] == "face.jpg"
    assert wait_job(client, job.json()["id"], headers=alice)["result"]["status"] == "ok"
    expected = {
        f"{file_server.replace('127.0.0.1', 'localhost')}/face.jpg": (403, "url: host localhost is not allowed"),
        f"{file_server}/moved": (502, "could not fetch url: HTTP 302"),
        f"{file_server}/missing.jpg": (502, "could not fetch url: HTTP 404"),
        f"{file_server}/big.jpg": (413, "file too large: the limit is 4 MiB"),
        f"{file_server}/notes.txt": (415, "unsupported media type: not an image, video or audio file"),
        "file:///etc/passwd": (422, "url: must be an http:// or https:// URL"),
    }
    for url, (status, detail) in expected.items():
        response = client.post("/v1/jobs", headers=alice, data={"url": url})
        assert (response.status_code, response.json()["detail"]) == (status, detail), url


def test_identical_content_is_answered_from_the_cache_unless_forced(client, alice, tmp_path):
    image = unique_image(tmp_path, "cache-me", 1)
    first = wait_job(client, post_job(client, alice, image)["id"], headers=alice)
    assert first["status"] == "done" and not first["cached"]
    again = post_job(client, alice, image)
    assert again["status"] == "done" and again["cached"] and again["score"] == first["score"]
    assert again["result"]["sha256"] == first["result"]["sha256"]
    forced = post_job(client, alice, image, force="true")
    assert forced["status"] == "queued" and not forced["cached"]
    rerun = wait_job(client, forced["id"], headers=alice)
    assert not rerun["cached"] and rerun["score"] == pytest.approx(first["score"], abs=1e-6)
    sync = detect(client, alice, image)
    assert sync.status_code == 200 and sync.json()["score"] == first["score"] and sync.json()["cached"]
    newest = client.get("/v1/jobs", headers=alice, params={"limit": 1}).json()["items"][0]
    assert newest["kind"] == "detect" and newest["cached"]
    metrics = client.get("/metrics").text
    assert "fakescope_cache_hits_total" in metrics and "fakescope_cache_misses_total" in metrics


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_webhook_is_delivered_signed_to_a_receiver(client, alice, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_port}/hook"
        job = post_job(client, alice, unique_image(tmp_path, "webhook"), webhook_url=hook)
        wait_until(lambda: _Receiver.received, 60, "the webhook")
        done = wait_until(
            lambda: (j := client.get(f"/v1/jobs/{job['id']}", headers=alice).json())["webhook_status"] and j,
            30,
            "the webhook status",
        )
    finally:
        server.shutdown()
    headers, body = _Receiver.received[0]
    assert verify(WEBHOOK_SECRET, int(headers[TIMESTAMP_HEADER]), body, headers[SIGNATURE_HEADER])
    assert not verify("another-secret", int(headers[TIMESTAMP_HEADER]), body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["job_id"] == job["id"] and payload["status"] == "done" and payload["error"] is None
    assert payload["result"]["score"] == done["score"] and done["webhook_status"] == "delivered"


def test_health_readiness_models_and_metrics(client, alice):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    models = client.get("/v1/models", headers=alice).json()
    assert models["frames"] == 8 and models["models"][0]["name"] == DEFAULT_MODEL
    assert models["models"][0]["input_kind"] == "face" and len(models["models"][0]["version"]) == 12
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    body = text.text
    assert 'fakescope_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}' in body
    assert 'route="/v1/detect"' in body and "fakescope_http_request_seconds_bucket" in body
    assert "fakescope_jobs_queued " in body and "fakescope_jobs_running " in body
    load = [line for line in body.splitlines() if line.startswith('fakescope_model_load_seconds{pool="jobs"}')]
    assert load and float(load[0].split()[-1]) > 0
    assert "fakescope_verdicts_total{verdict=" in body


def test_stats_count_uses_users_and_page_time(client, alice):
    assert client.post("/v1/beacon", headers=alice, json={"event": "page_view"}).status_code == 204
    assert client.post("/v1/beacon", headers=alice, json={"event": "page_time", "seconds": 42.5}).status_code == 204
    stats = client.get("/v1/stats", headers=alice, params={"days": 7}).json()
    assert len(stats["days"]) == 7 and stats["days"][-1]["uses"] == stats["uses"] >= 3
    assert stats["scope"] == "caller" and stats["unique_users"] == 1 and stats["median_time_on_page_s"] == 42.5
    assert sum(stats["verdict_mix"].values()) == stats["uses"]
    everyone = client.get("/v1/stats", headers=new_key(client.app, "ops", admin=True), params={"days": 7}).json()
    assert everyone["scope"] == "all" and everyone["uses"] > stats["uses"] and everyone["unique_users"] >= 2


def test_web_page_signs_in_with_a_key_for_a_session_cookie(client, alice):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in page.headers and client.get("/v1/jobs").status_code == 401, "the page alone grants nothing"
    cookie = client.post("/v1/session", headers=alice).headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    with_cookie = client.get("/v1/jobs").json()  # the client kept the cookie
    assert with_cookie["total"] == client.get("/v1/jobs", headers=alice).json()["total"] >= 1, "the session is alice's"
    assert client.get("/static/app.js").status_code == 200
    client.cookies.clear()
    assert client.get("/v1/jobs").status_code == 401


def test_unknown_routes_and_methods_are_json_errors(client):
    assert client.get("/nope").json() == {"detail": "Not Found"}
    response = client.put("/v1/jobs")
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}


def test_an_unexpected_failure_is_a_json_500_without_traceback(client, alice, monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals /srv/data")

    monkeypatch.setattr("fakescope.serve.routes.jobs.list_owned_jobs", broken)
    response = TestClient(client.app, raise_server_exceptions=False).get("/v1/jobs", headers=alice)
    assert response.status_code == 500 and response.json() == {"detail": "internal error"}
    assert "secret internals" in caplog.text  # logged for the operator, never sent


def test_orphaned_jobs_are_requeued_and_give_up_after_three_starts(client, tmp_path):
    """A running row whose lease expired belongs to a dead server: run again, unless it already had its three starts."""
    svc = client.app.state.service
    with svc.sessions() as session:
        key, token = create_key(session, "frank")
    headers = {"Authorization": f"Bearer {token}"}
    done = wait_job(client, post_job(client, headers, unique_image(tmp_path, "lease"))["id"], headers=headers)
    past = utcnow() - timedelta(minutes=5)
    ids = {attempts: new_id() for attempts in (1, MAX_ATTEMPTS)}
    with svc.sessions.begin() as session:
        for attempts, job_id in ids.items():
            session.add(
                Job(
                    id=job_id,
                    owner=f"key:{key.id}",
                    kind="job",
                    status="running",
                    filename="orphan.jpg",
                    sha256=done["sha256"],
                    size=done["size"],
                    media_type="image",
                    source="upload",
                    force=True,
                    cached=False,
                    attempts=attempts,
                    lease_until=past,
                    created_at=past,
                    started_at=past,
                )
            )
    svc.runner.requeue_expired()
    retried = wait_job(client, ids[1], headers=headers)
    assert retried["status"] == "done" and retried["attempts"] == 2 and retried["score"] == done["score"]
    gave_up = client.get(f"/v1/jobs/{ids[MAX_ATTEMPTS]}", headers=headers).json()
    assert gave_up["status"] == "failed"
    assert gave_up["error"] == f"gave up after {MAX_ATTEMPTS} attempts (the service stopped while it ran)"


def test_a_crashed_worker_is_replaced_and_the_job_retried(client, alice):
    runner = client.app.state.service.runner
    job = post_job(client, alice, REAL_CLIP, force="true")
    wait_until(
        lambda: client.get(f"/v1/jobs/{job['id']}", headers=alice).json()["status"] == "running",
        60,
        "the job to start",
        interval=0.05,
    )
    for pid in runner.job_pool.pids():
        os.kill(pid, signal.SIGKILL)
    done = wait_job(client, job["id"], timeout=180, headers=alice)
    assert done["status"] == "done" and done["attempts"] == 2 and done["result"]["faces"]


def test_timeouts_fail_the_job_and_answer_504(client, alice, tmp_path):
    settings = client.app.state.service.settings
    settings.job_timeout_s, settings.detect_timeout_s = 0.3, 0.01
    try:
        job = post_job(client, alice, REAL_CLIP, force="true")
        failed = wait_job(client, job["id"], timeout=180, headers=alice)
        response = detect(client, alice, unique_image(tmp_path, "slow"), force="true")
    finally:
        settings.job_timeout_s, settings.detect_timeout_s = 1800.0, 120.0
    assert failed["status"] == "failed" and failed["error"] == "timed out after 0.3 s" and failed["result"] is None
    assert response.status_code == 504 and response.json()["detail"] == "analysis timed out after 0.01 s"
    wait_ready(client)
    assert detect(client, alice, unique_image(tmp_path, "after-timeout")).json()["status"] == "ok"


@pytest.fixture
def flow_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(small_settings(tmp_path / "data", db_url=db_url, no_auth=True))) as test_client:
        wait_ready(test_client)
        yield test_client


def test_main_flow_on_each_database(flow_client, tmp_path):
    """Upload → job → result → cache → history → stats → delete, on SQLite and PostgreSQL."""
    me = {"X-Fakescope-Client": "flow-test"}
    image = unique_image(tmp_path, "flow", 2)
    sync = detect(flow_client, me, image)
    assert sync.status_code == 200 and sync.json()["status"] == "ok"
    job = post_job(flow_client, me, REAL_CLIP)
    done = wait_job(flow_client, job["id"], headers=me)
    assert done["status"] == "done" and done["result"]["faces"]
    cached = post_job(flow_client, me, image)
    assert cached["cached"] and cached["score"] == sync.json()["score"]
    page = flow_client.get("/v1/jobs", headers=me).json()
    assert page["total"] == 3 and [j["kind"] for j in page["items"]] == ["job", "job", "detect"]
    assert flow_client.get("/v1/jobs", headers={"X-Fakescope-Client": "someone-else"}).json()["total"] == 0
    stats = flow_client.get("/v1/stats", headers=me).json()
    assert stats["uses"] == 3 and stats["unique_users"] == 1
    assert flow_client.delete(f"/v1/jobs/{done['id']}", headers=me).status_code == 204
    assert flow_client.get("/v1/jobs", headers=me).json()["total"] == 2
