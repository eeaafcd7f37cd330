"""Video pipeline benchmark: per-stage time and total time ÷ clip duration, measured in one run.

Figures are printed, never asserted: machines are noisy. `fakescope bench video` and
benchmarks/bench_video.py call this.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from rich.table import Table

from fakescope.errors import FakescopeError

STAGES = ("decode", "faces", "model", "fusion")
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def default_clips() -> list[Path]:
    clips = sorted(EXAMPLES_DIR.glob("*.mp4"))
    if not clips:
        raise FakescopeError(f"no sample clips in {EXAMPLES_DIR}; pass clip paths to benchmark")
    return clips


def bench_video(clips: list[Path], *, num_frames: int = 32, repeat: int = 3, model: str | None = None) -> list[dict]:
    """Median over `repeat` runs per clip (after one warm-up run that loads everything)."""
    from fakescope.detect import Detector
    from fakescope.models import DEFAULT_MODEL

    detector = Detector.from_pretrained(model or DEFAULT_MODEL, num_frames=num_frames)
    detector.detect(clips[0])
    rows = []
    for clip in clips:
        runs = [detector.detect(clip) for _ in range(repeat)]
        first = runs[0]
        if first.status != "ok" or not first.duration:
            rows.append({"file": clip.name, "status": first.status, "reason": first.reason})
            continue
        total = statistics.median(r.processing_time for r in runs)
        stages = {s: statistics.median(r.timings.get(s, 0.0) for r in runs) for s in STAGES}
        rows.append({
            "file": clip.name, "status": "ok", "duration": first.duration, "frames": first.frames_sampled,
            "total": total, "ratio": total / first.duration,
            "stages": stages, "share": {s: v / total for s, v in stages.items()}, "score": first.score,
        })
    return rows


def bench_table(rows: list[dict]) -> Table:
    table = Table(title="video pipeline, median of runs (stage: seconds and share of total)", title_justify="left")
    table.add_column("clip", no_wrap=True)
    for col in ["dur", "frames", "total", "÷ dur", *STAGES]:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["file"], r["status"], "", "", r.get("reason") or "", "", "", "", "")
            continue
        table.add_row(
            r["file"], f"{r['duration']:.1f}s", str(r["frames"]), f"{r['total']:.2f}s", f"{r['ratio']:.3f}",
            *[f"{r['stages'][s]:.2f} {r['share'][s]:.0%}" for s in STAGES],
        )
    return table
