"""Kill -9 the whole service while a job runs; started again on the same data, every job finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.serve.service_helpers import REAL_CLIP, face_image, free_port, wait_job, wait_ready, wait_until

CLIENT = {"X-Fakescope-Client": "restart-test"}
FAKESCOPE = Path(sys.executable).with_name("fakescope")


@contextmanager
def service_process(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`fakescope serve` in its own process group (its workers included), killed with the group at the end."""
    command = [
        str(FAKESCOPE),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--no-auth",
        "--frames",
        "32",
        "--workers",
        "1",
        "--detect-workers",
        "1",
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ | {"HF_HUB_OFFLINE": "1"}
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    wait_until(lambda: not _group_alive(process.pid), 30, "the worker processes to die")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_running_when_the_service_is_killed_finishes_after_a_restart(tmp_path):
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "service.log"
    with service_process(data_dir, port, log) as first, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until(lambda: _responds(client), 120, f"the service to listen (log: {log})")
        wait_ready(client)
        with REAL_CLIP.open("rb") as fh:
            running = client.post("/v1/jobs", headers=CLIENT, files={"file": ("clip.mp4", fh)}).json()
        with face_image().open("rb") as fh:
            queued = client.post("/v1/jobs", headers=CLIENT, files={"file": ("face.jpg", fh)}).json()
        wait_until(
            lambda: client.get(f"/v1/jobs/{running['id']}", headers=CLIENT).json()["status"] == "running",
            60,
            "the video job to start",
            interval=0.05,
        )
        kill_group(first)

    with service_process(data_dir, port, log), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until(lambda: _responds(client), 120, f"the service to listen again (log: {log})")
        video = wait_job(client, running["id"], timeout=240, headers=CLIENT)
        image = wait_job(client, queued["id"], timeout=60, headers=CLIENT)
        history = client.get("/v1/jobs", headers=CLIENT).json()
    assert video["status"] == "done" and video["attempts"] == 2 and video["result"]["faces"], video["error"]
    assert image["status"] == "done" and image["result"]["status"] == "ok"
    assert history["total"] == 2 and {j["id"] for j in history["items"]} == {running["id"], queued["id"]}


def _responds(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_serve_refuses_bad_settings_with_one_line(tmp_path):
    from typer.testing import CliRunner

    from fakescope.cli import app

    runner = CliRunner()
    unknown = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), "--model", "no-such-model"])
    assert unknown.exit_code == 2 and "unknown model 'no-such-model'" in unknown.output
    bad_db = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), "--db", "nonsense://x"])
    assert bad_db.exit_code == 2 and bad_db.output.startswith("error: cannot open database nonsense://x")
    not_url = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), "--db", "::"])
    assert not_url.exit_code == 2 and "not a database URL" in not_url.output
