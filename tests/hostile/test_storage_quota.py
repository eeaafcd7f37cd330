"""Storage quota: a full blob store answers 507 (413 for a file larger than the whole budget) and keeps nothing
of the refused upload; old jobs, their uploads and thumbnails, and orphaned uploads are swept away."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakescope.serve.app import create_app
from fakescope.serve.db import Job, upgrade_database, utcnow
from fakescope.serve.retention import Retention
from fakescope.serve.settings import ServeSettings

pytestmark = pytest.mark.timeout(60)

BUDGET = 8 * 1024
DAY = 24 * 3600.0


def png(size: int, marker: bytes = b"") -> bytes:
    """A valid PNG padded to `size` bytes (decoders ignore what follows IEND), distinct per marker."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 200, 30)).save(out, format="PNG")
    data = out.getvalue() + marker
    return data + b"\0" * (size - len(data))


def app_client(data_dir: Path, **overrides: Any) -> TestClient:
    """The real app without its lifespan (no worker processes)."""
    values: dict[str, Any] = {"data_dir": data_dir, "no_auth": True, "web_page": False, "max_storage_bytes": BUDGET}
    settings = ServeSettings(**(values | overrides))
    upgrade_database(settings.resolved_db_url())
    return TestClient(create_app(settings))


def stored(client: TestClient) -> list[str]:
    return sorted(p.name for p in client.app.state.service.blobs.blob_paths())


def temp_files(client: TestClient) -> list[Path]:
    return list(client.app.state.service.blobs.tmp_dir.iterdir())


def post(client: TestClient, data: bytes, route: str = "/v1/jobs"):
    return client.post(route, files={"file": ("a.png", data)})


def test_a_full_store_answers_507_and_keeps_nothing(tmp_path):
    client = app_client(tmp_path)
    first = post(client, png(5 * 1024, b"first"))
    assert first.status_code == 202, first.text
    before = stored(client)
    for route in ("/v1/jobs", "/v1/detect"):
        refused = post(client, png(5 * 1024, b"second"), route)
        assert refused.status_code == 507, refused.text
        detail = refused.json()["detail"]
        assert detail.startswith("storage full:") and "\n" not in detail
    assert stored(client) == before and temp_files(client) == []
    assert client.get("/v1/jobs").json()["total"] == 1
    assert post(client, png(2 * 1024, b"small")).status_code == 202  # what still fits is taken


def test_a_file_larger_than_the_whole_budget_is_413(tmp_path):
    client = app_client(tmp_path)
    refused = post(client, png(BUDGET + 1, b"huge"))
    assert refused.status_code == 413
    assert refused.json()["detail"] == "file too large: the server's storage budget is 8 KiB"
    assert stored(client) == [] and temp_files(client) == []


def test_deleting_a_job_frees_its_upload_once_no_other_job_uses_it(tmp_path):
    client = app_client(tmp_path)
    data = png(5 * 1024, b"shared")
    one, two = post(client, data).json(), post(client, data).json()
    assert one["sha256"] == two["sha256"] and len(stored(client)) == 1
    assert client.delete(f"/v1/jobs/{one['id']}").status_code == 204
    assert stored(client) == [one["sha256"]]
    assert client.delete(f"/v1/jobs/{two['id']}").status_code == 204
    assert stored(client) == []
    assert post(client, png(5 * 1024, b"room again")).status_code == 202  # the budget counts the freed bytes


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_retention_sweeps_old_jobs_their_files_and_orphans(tmp_path):
    client = app_client(tmp_path, retention_days=30, max_storage_bytes=0)
    svc = client.app.state.service
    blobs, runner = svc.blobs, svc.runner
    ids = {name: post(client, png(1024, name.encode())).json() for name in ("old", "shared_old", "queued_old", "recent")}
    shared_again = client.post("/v1/jobs", files={"file": ("b.png", png(1024, b"shared_old"))}).json()
    orphan_old = blobs.save_iter([png(1024, b"orphan old")], max_bytes=10_000)
    orphan_new = blobs.save_iter([png(1024, b"orphan new")], max_bytes=10_000)
    long_ago = utcnow() - timedelta(days=40)
    with svc.sessions.begin() as session:
        for name in ("old", "shared_old", "queued_old"):
            job = session.get(Job, ids[name]["id"])
            job.created_at = long_ago
            if name != "queued_old":
                job.status, job.finished_at = "done", long_ago
        recent = session.get(Job, ids["recent"]["id"])
        recent.status, recent.finished_at = "done", utcnow()
    for path in blobs.blob_paths():
        if path.name != orphan_new.sha256:
            age(path, 40 * DAY)
    thumbs = svc.settings.thumb_dir
    for job_id in (ids["old"]["id"], ids["recent"]["id"], "f" * 32):
        (thumbs / job_id).mkdir(parents=True)
        (thumbs / job_id / "0.jpg").write_bytes(b"jpg")
    age(thumbs / ("f" * 32), 2 * DAY)

    report = runner.retention.sweep()

    with svc.sessions() as session:
        left = {j.id for j in session.query(Job)}
    assert left == {ids["queued_old"]["id"], ids["recent"]["id"], shared_again["id"]}
    assert (report.jobs, report.blobs, report.thumbs) == (2, 2, 1)
    assert sorted(stored(client)) == sorted(
        {ids["queued_old"]["sha256"], ids["recent"]["sha256"], ids["shared_old"]["sha256"], orphan_new.sha256}
    )
    assert not (thumbs / ids["old"]["id"]).exists() and (thumbs / ids["recent"]["id"]).exists()
    assert orphan_old.sha256 not in stored(client) and not (thumbs / ("f" * 32)).exists()
    assert blobs.used_bytes == 4 * 1024


def test_zero_days_keeps_jobs_but_still_drops_orphans(tmp_path):
    client = app_client(tmp_path, retention_days=0, max_storage_bytes=0)
    svc = client.app.state.service
    job = post(client, png(1024, b"kept")).json()
    orphan = svc.blobs.save_iter([png(1024, b"orphan")], max_bytes=10_000)
    with svc.sessions.begin() as session:
        row = session.get(Job, job["id"])
        row.status, row.created_at = "done", utcnow() - timedelta(days=3650)
        row.finished_at = row.created_at
    for path in svc.blobs.blob_paths():
        age(path, 3650 * DAY)
    report = svc.runner.retention.sweep()
    assert (report.jobs, report.blobs) == (0, 1)
    assert stored(client) == [job["sha256"]] and orphan.sha256 not in stored(client)


def test_the_sweep_runs_on_its_own_thread_until_stopped(tmp_path):
    client = app_client(tmp_path, max_storage_bytes=0)
    svc = client.app.state.service
    orphan = svc.blobs.save_iter([png(1024, b"thread")], max_bytes=10_000)
    age(orphan.path, 2 * DAY)
    retention = Retention(svc.sessions, svc.blobs, svc.settings.thumb_dir, 30, every_s=0.05)
    retention.start()
    try:
        deadline = time.monotonic() + 10
        while orphan.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        retention.stop()
    assert not orphan.path.exists()
    assert svc.runner.retention.days == svc.settings.retention_days == 30
