"""50 uploads from 10 client threads over real HTTP: every job is accounted for, none lost or duplicated."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from fakescope.media.clips import copy_clip
from fakescope.serve import ServeSettings, create_app
from tests.serve.service_helpers import (
    REAL_CLIP,
    face_image,
    free_port,
    running_server,
    unique_image,
    wait_job,
    wait_ready,
)

THREADS = 10
PER_THREAD = 5


def test_fifty_concurrent_uploads_all_finish(tmp_path: Path):
    clip = copy_clip(REAL_CLIP, tmp_path / "short.mp4", seconds=1.0)
    files = [face_image(0), face_image(1), face_image(2), clip]
    settings = ServeSettings(
        data_dir=tmp_path / "data", no_auth=True, frames=4, workers=1, detect_workers=1, rate_limit_per_minute=10_000
    )
    app = create_app(settings)
    with running_server(app, free_port()) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        wait_ready(client)

        def upload(thread: int) -> list[str]:
            headers = {"X-Fakescope-Client": f"thread-{thread}"}
            ids = []
            with httpx.Client(base_url=base_url, timeout=60, headers=headers) as own:
                for i in range(PER_THREAD):
                    path = files[(thread + i) % len(files)]
                    response = own.post("/v1/jobs", files={"file": (path.name, path.read_bytes())})
                    assert response.status_code == 202, response.text
                    ids.append(response.json()["id"])
            return ids

        with ThreadPoolExecutor(THREADS) as pool:
            per_thread = list(pool.map(upload, range(THREADS)))
        ids = [job_id for thread_ids in per_thread for job_id in thread_ids]
        assert len(ids) == THREADS * PER_THREAD and len(set(ids)) == len(ids)
        jobs = {}
        for thread, thread_ids in enumerate(per_thread):
            for job_id in thread_ids:
                jobs[job_id] = wait_job(client, job_id, timeout=300, headers={"X-Fakescope-Client": f"thread-{thread}"})
        listed = {
            thread: client.get("/v1/jobs", params={"limit": 100}, headers={"X-Fakescope-Client": f"thread-{thread}"}).json()
            for thread in range(THREADS)
        }
    assert all(job["status"] == "done" and job["result"]["status"] == "ok" for job in jobs.values())
    assert sum(page["total"] for page in listed.values()) == len(ids)
    assert all({j["id"] for j in listed[t]["items"]} == set(per_thread[t]) for t in range(THREADS))
    by_content: dict[str, set[float]] = {}
    for job in jobs.values():
        by_content.setdefault(job["sha256"], set()).add(job["score"])
    assert len(by_content) == len(files) and all(len(scores) == 1 for scores in by_content.values())


def test_concurrent_detects_are_batched_and_each_gets_its_own_result(tmp_path: Path):
    images = [unique_image(tmp_path, f"batch-{i}", index=i % 3) for i in range(8)]
    # A wide window so that requests sent together surely meet (the test asserts batching, not time).
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        no_auth=True,
        workers=1,
        detect_workers=1,
        batch_window_ms=500,
        batch_max_files=4,
        rate_limit_per_minute=10_000,
    )
    app = create_app(settings)
    with running_server(app, free_port()) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        wait_ready(client)

        def detect(path: Path) -> dict:
            response = client.post("/v1/detect", files={"file": (path.name, path.read_bytes())})
            assert response.status_code == 200, response.text
            return response.json()

        with ThreadPoolExecutor(len(images)) as pool:
            results = list(pool.map(detect, images))
        metrics = client.get("/metrics").text
    assert [r["file"] for r in results] == [p.name for p in images]
    assert all(r["status"] == "ok" and r["score"] is not None for r in results)
    batches = float(
        next(line.split()[-1] for line in metrics.splitlines() if line.startswith("fakescope_detect_batch_files_count"))
    )
    files = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("fakescope_detect_batch_files_sum")))
    assert files == len(images) and batches < len(images), metrics
