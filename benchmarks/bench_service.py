"""Load benchmark of `fakescope serve`: synchronous detect latency and job throughput over real HTTP.

Starts the service on loopback (a subprocess with its own data dir), then measures
- p50/p95 latency of POST /v1/detect on a face image at a given concurrency (force=true, so the
  result cache never answers), and
- jobs per minute for 10-s clips submitted at once to POST /v1/jobs (force=true), with the
  time each analysis took inside the worker.

    python benchmarks/bench_service.py                 # 200 detects at concurrency 4, 6 jobs of 10-s clips
    python benchmarks/bench_service.py --quick --json  # a smoke run for CI
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from fakescope.media.clips import copy_clip

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT.parent / "shared" / "data" / "dfdc_faces" / "fake" / "aabmgfhcgg.jpg"
DEFAULT_CLIP = ROOT / "examples" / "real_ffpp_866.mp4"
CLIENT = {"X-Fakescope-Client": "bench"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(data_dir: Path, port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    fakescope = Path(sys.executable).with_name("fakescope")
    command = [
        str(fakescope),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--no-auth",
        "--frames",
        str(args.frames),
        "--workers",
        str(args.workers),
        "--detect-workers",
        str(args.detect_workers),
    ]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "FAKESCOPE_RATE_LIMIT_PER_MINUTE": "1000000"}
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], timeout: float, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the service exited ({process.returncode}); log:\n{log.read_text()[-2000:]}")
        try:
            if client.get("/readyz").status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service was not ready after {timeout:g} s; log:\n{log.read_text()[-2000:]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_detect(base_url: str, image: Path, requests: int, concurrency: int) -> dict[str, Any]:
    content = image.read_bytes()

    def one(_: int) -> float:
        with httpx.Client(base_url=base_url, timeout=300, headers=CLIENT) as client:
            start = time.perf_counter()
            response = client.post("/v1/detect", params={"force": "true"}, files={"file": (image.name, content)})
            elapsed = time.perf_counter() - start
        if response.status_code != 200 or response.json().get("status") != "ok":
            raise SystemExit(f"detect failed: HTTP {response.status_code} {response.text[:300]}")
        return elapsed

    for i in range(min(3, requests)):  # warm the workers' caches of weights and allocator pages
        one(i)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    return {
        "requests": requests,
        "concurrency": concurrency,
        "p50_s": round(percentile(latencies, 0.5), 4),
        "p95_s": round(percentile(latencies, 0.95), 4),
        "mean_s": round(statistics.fmean(latencies), 4),
        "requests_per_s": round(requests / wall, 2),
    }


def bench_jobs(client: httpx.Client, clip: Path, jobs: int) -> dict[str, Any]:
    content = clip.read_bytes()
    start = time.perf_counter()
    ids = []
    for i in range(jobs):
        response = client.post("/v1/jobs", headers=CLIENT, params={"force": "true"}, files={"file": (f"clip-{i}.mp4", content)})
        if response.status_code != 202:
            raise SystemExit(f"job submission failed: HTTP {response.status_code} {response.text[:300]}")
        ids.append(response.json()["id"])
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for job_id in ids:
            if job_id not in done:
                job = client.get(f"/v1/jobs/{job_id}", headers=CLIENT).json()
                if job["status"] in ("done", "failed"):
                    done[job_id] = job
        time.sleep(0.2)
    wall = time.perf_counter() - start
    failed = [j for j in done.values() if j["status"] != "done" or j["result"]["status"] != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} jobs did not finish ok: {failed[0].get('error') or failed[0]['result'].get('reason')}")
    inside = [j["result"]["processing_time"] for j in done.values()]
    duration = next(iter(done.values()))["result"]["duration"]
    return {
        "jobs": jobs,
        "clip_seconds": round(duration, 2),
        "wall_s": round(wall, 2),
        "jobs_per_minute": round(jobs / wall * 60, 2),
        "analysis_mean_s": round(statistics.fmean(inside), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (20 detects, 2 jobs of 4-s clips, 8 frames)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--requests", type=int, default=200, help="POST /v1/detect calls")
    parser.add_argument("--concurrency", type=int, default=4, help="detect calls in flight at once")
    parser.add_argument("--jobs", type=int, default=6, help="clips submitted to POST /v1/jobs")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="length of the benchmark clip")
    parser.add_argument("--frames", type=int, default=32, help="frames sampled per video (the service's --frames)")
    parser.add_argument("--workers", type=int, default=1, help="job worker processes")
    parser.add_argument("--detect-workers", type=int, default=1, help="detect worker processes")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="face image for the detect benchmark")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video the benchmark clip is made from")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.jobs, args.clip_seconds, args.frames = 20, 2, 4.0, 8
    for path in (args.image, args.clip):
        if not path.is_file():
            raise SystemExit(f"missing input: {path}")

    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as tmp:
        tmp_dir = Path(tmp)
        clip = copy_clip(args.clip, tmp_dir / "clip.mp4", args.clip_seconds)
        port, log = free_port(), tmp_dir / "service.log"
        process = start_service(tmp_dir / "data", port, args, log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base_url, timeout=300) as client:
                ready_s = wait_ready(client, process, 300, log)
                detect = bench_detect(base_url, args.image, args.requests, args.concurrency)
                jobs = bench_jobs(client, clip, args.jobs)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    figures = {
        "cpus": os.cpu_count(),
        "frames": args.frames,
        "workers": args.workers,
        "detect_workers": args.detect_workers,
        "ready_s": round(ready_s, 2),
        "detect": detect,
        "jobs": jobs,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(
        title=f"fakescope serve on loopback ({figures['cpus']} CPUs, {args.workers} job + "
        f"{args.detect_workers} detect workers, {args.frames} frames)",
        title_justify="left",
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("service ready after", f"{ready_s:.1f} s")
    table.add_row(
        f"POST /v1/detect p50 (concurrency {detect['concurrency']}, n={detect['requests']})", f"{detect['p50_s'] * 1000:.0f} ms"
    )
    table.add_row("POST /v1/detect p95", f"{detect['p95_s'] * 1000:.0f} ms")
    table.add_row("detect throughput", f"{detect['requests_per_s']:.2f} req/s")
    table.add_row(f"jobs of {jobs['clip_seconds']:g}-s clips (n={jobs['jobs']})", f"{jobs['jobs_per_minute']:.1f} jobs/min")
    table.add_row("analysis time per clip (in the worker)", f"{jobs['analysis_mean_s']:.2f} s")
    Console().print(table)


if __name__ == "__main__":
    main()
