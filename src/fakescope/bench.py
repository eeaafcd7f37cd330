"""Pipeline benchmarks: per-stage time and processing time ÷ media duration, measured in one run.

Figures are printed, never asserted: machines are noisy. `fakescope bench video|audio` and
benchmarks/bench_*.py call this. For audio, time ÷ duration is the real-time factor (RTF).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

from fakescope.errors import FakescopeError

if TYPE_CHECKING:
    from fakescope.detect import Detector

VIDEO_STAGES = ("decode", "faces", "model", "audio decode", "audio model", "fusion")
AUDIO_STAGES = ("decode", "audio decode", "audio model")
AUDIO_LENGTHS = (4.0, 30.0, 120.0)
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def default_clips() -> list[Path]:
    clips = sorted(EXAMPLES_DIR.glob("*.mp4"))
    if not clips:
        raise FakescopeError(f"no sample clips in {EXAMPLES_DIR}; pass clip paths to benchmark")
    return clips


def speech_recordings(out_dir: Path, lengths: Sequence[float] = AUDIO_LENGTHS) -> list[Path]:
    """Recordings of the given lengths made by repeating the bundled speech samples (16 kHz WAV)."""
    from fakescope.media.audio import encode_audio, load_audio

    sources = sorted(EXAMPLES_DIR.glob("*.wav"))
    if not sources:
        raise FakescopeError(f"no speech samples (*.wav) in {EXAMPLES_DIR}; pass audio files to benchmark")
    speech = np.concatenate([load_audio(p).samples for p in sources])
    paths = []
    for seconds in lengths:
        n = int(seconds * 16_000)
        path = out_dir / f"speech_{seconds:g}s.wav"
        path.write_bytes(encode_audio(np.resize(speech, n), 16_000, "wav"))
        paths.append(path)
    return paths


def bench_files(detector: Detector, files: Sequence[Path], stages: Sequence[str], *, repeat: int) -> list[dict]:
    """Median over `repeat` runs per file, after one warm-up run that loads everything."""
    detector.detect(files[0])
    rows = []
    for path in files:
        runs = [detector.detect(path) for _ in range(repeat)]
        first = runs[0]
        if first.status != "ok" or not first.duration:
            rows.append({"file": path.name, "status": first.status, "reason": first.reason})
            continue
        total = statistics.median(r.processing_time for r in runs)
        times = {s: statistics.median(r.timings.get(s, 0.0) for r in runs) for s in stages}
        rows.append({
            "file": path.name, "status": "ok", "duration": first.duration, "frames": first.frames_sampled,
            "windows": sum(s.modality == "audio" for s in first.segments), "total": total, "ratio": total / first.duration,
            "stages": times, "share": {s: v / total for s, v in times.items()}, "score": first.score,
        })
    return rows


def bench_video(clips: list[Path], *, num_frames: int = 32, repeat: int = 3, model: str | None = None) -> list[dict]:
    """The default detector (faces, and the sound when a clip has one) on each clip."""
    from fakescope.detect import Detector
    from fakescope.models import DEFAULT_MODEL

    detector = Detector.from_pretrained(model or DEFAULT_MODEL, num_frames=num_frames)
    return bench_files(detector, clips, VIDEO_STAGES, repeat=repeat)


def bench_audio(files: list[Path] | None = None, *, repeat: int = 3, model: str | None = None) -> list[dict]:
    """The audio model on each file (default: 4 s, 30 s and 2 min recordings of the bundled speech)."""
    from fakescope.detect import Detector
    from fakescope.models import DEFAULT_AUDIO_MODEL

    detector = Detector.from_pretrained(image_model=None, audio_model=model or DEFAULT_AUDIO_MODEL)
    if files:
        return bench_files(detector, files, AUDIO_STAGES, repeat=repeat)
    with tempfile.TemporaryDirectory() as tmp:
        return bench_files(detector, speech_recordings(Path(tmp)), AUDIO_STAGES, repeat=repeat)


def bench_table(rows: list[dict], stages: Sequence[str] = VIDEO_STAGES, *, unit: str = "frames") -> Table:
    title = "pipeline, median of runs (stage: seconds and share of total; ÷ dur = processing time ÷ media duration)"
    table = Table(title=title, title_justify="left")
    table.add_column("file", no_wrap=True)
    for col in ["dur", unit, "total", "÷ dur", *stages]:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["file"], r["status"], "", "", r.get("reason") or "", *[""] * len(stages))
            continue
        table.add_row(
            r["file"], f"{r['duration']:.1f}s", str(r[unit]), f"{r['total']:.3f}s", f"{r['ratio']:.4f}",
            *[f"{r['stages'][s]:.3f} {r['share'][s]:.0%}" for s in stages],
        )
    return table
