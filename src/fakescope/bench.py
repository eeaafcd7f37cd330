"""Pipeline benchmarks: per-stage time, processing time ÷ media duration, peak memory, cache hits, measured in one run.

Figures are printed, never asserted: machines are noisy. `fakescope bench video|image|audio|
cache|memory|backends|all` and benchmarks/bench_*.py call this. For audio, time ÷ duration is the
real-time factor (RTF); for video, the total is also set against decoding the same frames
alone, the floor every other stage is measured by. `memory` gives one detector's peak resident
memory per file kind, an 8K video and a long recording among them (a tiny file of huge frames, and
a recording whose decoded length, not its file size, sets its memory).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from fakescope.constants import DEFAULT_AUDIO_MODEL, DEFAULT_MODEL
from fakescope.errors import FakescopeError
from fakescope.media.clips import copy_clip

if TYPE_CHECKING:
    from fakescope.detect import Detector

VIDEO_STAGES = ("decode", "faces", "model", "audio decode", "audio model", "fusion")
IMAGE_STAGES = ("decode", "faces", "model", "fusion")
AUDIO_STAGES = ("decode", "audio decode", "audio model")
AUDIO_LENGTHS = (4.0, 30.0, 120.0)
LONG_RECORDING_MINUTES = 30.0
UHD_8K = (7680, 4320)
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


def long_recording(path: Path, minutes: float = LONG_RECORDING_MINUTES, *, rate: int = 48_000) -> Path:
    """The bundled speech repeated for `minutes`, as 48 kHz stereo FLAC written a minute at a time."""
    import soundfile as sf

    from fakescope.media.audio import load_audio, resample

    speech = resample(np.concatenate([load_audio(p).samples for p in sorted(EXAMPLES_DIR.glob("*.wav"))]), 16_000, rate)
    minute = np.resize(speech, 60 * rate)
    stereo = np.clip(np.stack([minute, 0.5 * minute], axis=1), -1.0, 1.0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(round(minutes)):
            f.write(stereo)
    return path


def reset_peak_memory() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to /proc/self/clear_refs); elsewhere the peak stays since start."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mb() -> float:
    """Peak resident memory of this process since the last `reset_peak_memory` (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_memory_mb() -> float:
    """Resident memory of this process now (VmRSS), in MiB; 0 where /proc is missing."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc `malloc_trim`), so that
    the memory a file needs shows as growth instead of reusing what the previous file freed."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def bench_files(detector: Detector, files: Sequence[Path], stages: Sequence[str], *, repeat: int) -> list[dict]:
    """Median over `repeat` runs per file, after one warm-up run that loads everything."""
    detector.detect(files[0])
    rows = []
    for path in files:
        reset_peak_memory()
        runs = [detector.detect(path) for _ in range(repeat)]
        first = runs[0]
        if first.status != "ok":
            rows.append({"file": path.name, "status": first.status, "reason": first.reason})
            continue
        total = statistics.median(r.processing_time for r in runs)
        times = {s: statistics.median(r.timings.get(s, 0.0) for r in runs) for s in stages}
        rows.append(
            {
                "file": path.name,
                "status": "ok",
                "duration": first.duration,
                "frames": first.frames_sampled,
                "windows": sum(s.modality == "audio" for s in first.segments),
                "faces": first.faces_found,
                "total": total,
                "ratio": total / first.duration if first.duration else None,
                "stages": times,
                "share": {s: v / total for s, v in times.items()},
                "score": first.score,
                "peak_mb": round(peak_memory_mb(), 1),
            }
        )
    return rows


def make_detector(*, backend: str = "auto", threads: int | None = None, **kwargs: Any) -> Detector:
    """A detector as `fakescope detect` builds it, without the result cache (every run must really run)."""
    from fakescope.detect import Detector

    return Detector.from_pretrained(backend=backend, threads=threads, cache_size=0, **kwargs)


def decode_only_seconds(clip: Path, num_frames: int, *, repeat: int) -> float:
    """Median time to probe the clip and decode the frames the pipeline samples, and nothing else."""
    from fakescope.media import probe, sample_frames

    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        sample_frames(probe(clip), num_frames)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def bench_video(
    clips: list[Path],
    *,
    num_frames: int = 32,
    repeat: int = 3,
    model: str | None = None,
    backend: str = "auto",
    threads: int | None = None,
    seconds: float | None = None,
) -> list[dict]:
    """The default detector (faces, and the sound when a clip has one) on each clip, and decoding alone.

    `seconds`: time the first `seconds` of each clip instead (video packets copied, no sound)."""

    detector = make_detector(name=model or DEFAULT_MODEL, num_frames=num_frames, backend=backend, threads=threads)
    if seconds is not None:
        with tempfile.TemporaryDirectory() as tmp:
            cut = [copy_clip(c, Path(tmp) / f"{c.stem}_{seconds:g}s{c.suffix}", seconds) for c in clips]
            return _bench_clips(detector, cut, num_frames, repeat)
    return _bench_clips(detector, clips, num_frames, repeat)


def _bench_clips(detector: Detector, clips: list[Path], num_frames: int, repeat: int) -> list[dict]:
    rows = bench_files(detector, clips, VIDEO_STAGES, repeat=repeat)
    for clip, row in zip(clips, rows, strict=True):
        if row["status"] == "ok":
            row["decode_only"] = decode_only_seconds(clip, num_frames, repeat=repeat)
            row["vs_decode"] = row["total"] / row["decode_only"]
    return rows


def face_images(out_dir: Path, clips: Sequence[Path] | None = None) -> list[Path]:
    """One full-size JPEG frame from the middle of each sample clip: a face photo as users send them."""
    import cv2

    from fakescope.media import probe, sample_frames

    paths = []
    for clip in clips or default_clips():
        frames = sample_frames(probe(clip), 3)
        path = out_dir / f"{clip.stem}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(frames[len(frames) // 2].image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


def bench_image(
    files: list[Path] | None = None, *, repeat: int = 5, backend: str = "auto", threads: int | None = None
) -> list[dict]:
    """The default detector (face model and whole-picture model) on face photos (default: frames of the sample clips)."""
    detector = make_detector(backend=backend, threads=threads, audio_model=None)
    if files:
        return bench_files(detector, files, IMAGE_STAGES, repeat=repeat)
    with tempfile.TemporaryDirectory() as tmp:
        return bench_files(detector, face_images(Path(tmp)), IMAGE_STAGES, repeat=repeat)


def bench_audio(
    files: list[Path] | None = None, *, repeat: int = 3, model: str | None = None, threads: int | None = None
) -> list[dict]:
    """The audio model on each file (default: 4 s, 30 s and 2 min recordings of the bundled speech)."""

    detector = make_detector(image_model=None, audio_model=model or DEFAULT_AUDIO_MODEL, threads=threads)
    if files:
        return bench_files(detector, files, AUDIO_STAGES, repeat=repeat)
    with tempfile.TemporaryDirectory() as tmp:
        return bench_files(detector, speech_recordings(Path(tmp)), AUDIO_STAGES, repeat=repeat)


def bench_cache(files: list[Path], *, repeat: int = 20, backend: str = "auto", threads: int | None = None) -> list[dict]:
    """Per file: the first analysis, then the median answer time for the same file again (a result-cache hit)."""
    from fakescope.detect import Detector

    detector = Detector.from_pretrained(backend=backend, threads=threads, cache_size=len(files) + 1)
    rows = []
    for path in files:
        first = detector.detect(path)
        hits = [detector.detect(path) for _ in range(repeat)]
        rows.append(
            {
                "file": path.name,
                "first": first.processing_time,
                "hit": statistics.median(h.processing_time for h in hits),
                "all_cached": all(h.cached for h in hits),
            }
        )
    stats = asdict(detector.cache.stats()) if detector.cache is not None else {}
    for row in rows:
        row["cache"] = stats
    return rows


def cache_table(rows: list[dict]) -> Table:
    table = Table(title="result cache: first analysis, then the same file again (median)", title_justify="left")
    for col in ("file", "first", "cache hit", "speed-up"):
        table.add_column(col, justify="left" if col == "file" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["file"],
            f"{r['first']:.3f}s",
            f"{r['hit'] * 1000:.2f} ms" + ("" if r["all_cached"] else " (missed!)"),
            f"{r['first'] / max(r['hit'], 1e-9):,.0f}×",
        )
    return table


def bench_table(rows: list[dict], stages: Sequence[str] = VIDEO_STAGES, *, unit: str = "frames") -> Table:
    """Per file: the unit count (frames, faces, windows), total, ratios, stage seconds and shares, peak memory."""
    ok = [r for r in rows if r["status"] == "ok"]
    timed = any(r["duration"] for r in ok)
    with_decode = any("vs_decode" in r for r in ok)
    title = "pipeline, median of runs (stage: seconds and share of total"
    title += "; ÷ dur = processing time ÷ media duration" if timed else ""
    title += "; ÷ decode = total ÷ decoding the same frames alone)" if with_decode else ")"
    table = Table(title=title, title_justify="left")
    table.add_column("file", no_wrap=True)
    columns = [
        *(["dur"] if timed else []),
        unit,
        "total",
        *(["÷ dur"] if timed else []),
        *(["÷ decode"] if with_decode else []),
        *stages,
        "peak MiB",
    ]
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["file"], r["status"], r.get("reason") or "", *[""] * (len(columns) - 2))
            continue
        cells = [*([f"{r['duration']:.1f}s" if r["duration"] else "—"] if timed else []), str(r[unit]), f"{r['total']:.3f}s"]
        cells += [f"{r['ratio']:.4f}" if r["ratio"] is not None else "—"] if timed else []
        cells += [f"{r['vs_decode']:.2f}×" if "vs_decode" in r else "—"] if with_decode else []
        cells += [f"{r['stages'][s]:.3f} {r['share'][s]:.0%}" for s in stages] + [f"{r['peak_mb']:.0f}"]
        table.add_row(r["file"], *cells)
    return table


def large_clip(path: Path, size: tuple[int, int] = UHD_8K, *, frames: int = 10, fps: int = 10) -> Path:
    """A clip of huge frames in a tiny file (flat grey, a moving bar, low bitrate), made here with PyAV."""
    import av

    width, height = size
    luma = np.full((height, width), 110, np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "40", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            luma[:, :] = 110
            x = (i * width) // max(1, frames)
            luma[height // 3 : height // 2, x : x + width // 10] = 235
            planes = np.concatenate([luma, np.full((height // 2, width), 128, np.uint8)])
            for packet in stream.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def bench_memory(
    clips: Sequence[Path] | None = None,
    *,
    backend: str = "auto",
    threads: int | None = None,
    long_minutes: float = LONG_RECORDING_MINUTES,
) -> list[dict]:
    """Peak resident memory of one detector analysing one file of each kind: a face photo, a clip, a 30 s
    recording, an 8K clip and a `long_minutes` recording (48 kHz stereo). Each file but the long recording is
    analysed once first (what loads lazily is loaded; the 30 s recording loads what the long one
    needs), then each is measured alone: the peak (VmHWM) and its growth over the memory held before
    the file."""
    detector = make_detector(backend=backend, threads=threads)
    clip = (clips or default_clips())[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = [
            ("image", face_images(out, [clip])[0]),
            ("video", clip),
            ("audio", speech_recordings(out, (30.0,))[0]),
            ("video 8K", large_clip(out / "uhd_8k.mp4")),
        ]
        for _, path in files:
            detector.detect(path)
        files.append((f"audio {long_minutes:g} min", long_recording(out / "long_recording.flac", long_minutes)))
        rows = []
        for kind, path in files:
            release_free_memory()
            before = resident_memory_mb()
            reset_peak_memory()
            start = time.perf_counter()
            result = detector.detect(path)
            seconds = time.perf_counter() - start
            peak = peak_memory_mb()
            rows.append(
                {
                    "kind": kind,
                    "file": path.name,
                    "bytes": path.stat().st_size,
                    "status": result.status,
                    "reason": result.reason,
                    "seconds": seconds,
                    "peak_mb": round(peak, 1),
                    "growth_mb": round(max(0.0, peak - before), 1),
                }
            )
    return rows


def memory_table(rows: list[dict]) -> Table:
    title = "peak resident memory per file kind (one detector; + MiB: growth over its memory before the file)"
    table = Table(title=title, title_justify="left")
    for col in ("kind", "file", "size", "status", "time", "peak MiB", "+ MiB"):
        table.add_column(col, justify="left" if col in ("kind", "file", "status") else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["kind"],
            r["file"],
            f"{r['bytes'] / 1024:,.0f} KiB",
            r["status"],
            f"{r['seconds']:.2f}s",
            f"{r['peak_mb']:.0f}",
            f"{r['growth_mb']:.0f}",
        )
    return table
