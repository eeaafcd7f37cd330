"""Workers of a killed scan or server end with it instead of lingering, models loaded, for minutes.

Each test starts the real pool in a child Python (scan's ProcessPoolExecutor with its initializer,
or the service's WorkerPool), reads its worker pids, SIGKILLs the child (which cannot clean up)
and expects every worker gone within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")

# Workers stuck in an endless analysis, as a scan of huge files would be.
SCAN = """
import os, sys, time
from pathlib import Path

import fakescope.scan as scan
from fakescope.detect import DetectorOptions

announce = Path(sys.argv[1])


class Stuck:
    def detect(self, path):
        (announce / str(os.getpid())).write_text(str(path))
        time.sleep(3600)


if __name__ == "__main__":
    # The real initializer runs in each worker; only the models it would load are replaced.
    scan.Detector.from_options = classmethod(lambda cls, options: Stuck())
    files = [announce / f"{i}.jpg" for i in range(4)]
    scan.scan_files(files, announce / "out.jsonl", detector_factory=Stuck, options=DetectorOptions(), workers=2)
"""

# The service's pool, spawned as `fakescope serve` does; a model name that does not exist keeps the
# workers light (their initializer records the load error and they stay up, waiting for calls).
SERVE = """
import sys, time

from fakescope.serve.pool import WorkerPool
from fakescope.serve.settings import ServeSettings

if __name__ == "__main__":
    pool = WorkerPool("jobs", 2, ServeSettings(model="no-such-model", data_dir=sys.argv[1]), threads=1)
    pool.start()
    pool.wait_ready(240)
    print(*pool.pids(), flush=True)
    time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    """Running, or stopped, but not a zombie waiting for a reaper (it holds no memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _kill_and_expect_orphans_gone(parent: subprocess.Popen, workers: list[int], within: float = 5.0) -> None:
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # leave nothing behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent by {within} s"


def _start(tmp_path: Path, script: str, *args: str, stdout=None) -> subprocess.Popen:
    path = tmp_path / "parent.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(path), *args], env=env, stdout=stdout, text=True)


@pytest.mark.timeout(120)
def test_scan_workers_end_with_a_killed_scan(tmp_path: Path) -> None:
    announce = tmp_path / "pids"
    announce.mkdir()
    parent = _start(tmp_path, SCAN, str(announce))
    try:
        deadline = time.monotonic() + 90
        while len(pids := [int(p.name) for p in announce.iterdir() if p.name.isdigit()]) < 2:
            assert parent.poll() is None, "the scan ended early"
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        _kill_and_expect_orphans_gone(parent, pids)
    finally:
        parent.kill()


@pytest.mark.timeout(300)
def test_service_pool_workers_end_with_a_killed_server(tmp_path: Path) -> None:
    parent = _start(tmp_path, SERVE, str(tmp_path / "data"), stdout=subprocess.PIPE)
    try:
        line = parent.stdout.readline()
        assert line.strip(), "the pool never came up"
        _kill_and_expect_orphans_gone(parent, [int(pid) for pid in line.split()])
    finally:
        parent.kill()


@pytest.mark.timeout(300)
def test_workers_outlive_the_thread_that_started_them(tmp_path: Path) -> None:
    """Linux sends the parent-death signal when the starting *thread* ends: a pool rebuilt from a
    short-lived request thread must keep its workers while the server lives."""
    import threading

    from fakescope.serve import workers
    from fakescope.serve.pool import WorkerPool
    from fakescope.serve.settings import ServeSettings

    pool = WorkerPool("jobs", 1, ServeSettings(model="no-such-model", data_dir=tmp_path), threads=1)
    starter = threading.Thread(target=lambda: (pool.start(), pool.wait_ready(240)))
    starter.start()
    starter.join()
    try:
        (pid,) = pool.pids()
        time.sleep(1.5)  # the signal came when the thread ended; the watchdog has looked again since
        assert _alive(pid)
        future, _ = pool.submit(workers.warm_up)
        assert future.result(timeout=60)["pid"] == pid
    finally:
        pool.stop()
