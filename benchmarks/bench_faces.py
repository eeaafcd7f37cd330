"""Face detection and the video path, measured in one run on this machine.

    python benchmarks/bench_faces.py            # 34 labelled clips, 32 frames each; a 10-s 720p clip end to end
    python benchmarks/bench_faces.py --auc      # also the video-level AUC of the shipped model per detector setting
    python benchmarks/bench_faces.py --quick    # CI smoke mode: 1 clip, 4 frames, a 1-s clip, one repeat
    python benchmarks/bench_faces.py --json     # the figures as JSON instead of tables

1. Detectors (mtcnn, yuface with 1 and with the OpenMP default threads, haar) on the same
   sampled frames of the labelled clips: recall (share of frames with a face), seconds per
   32 frames at each detector's detection resolution, median IoU of its boxes with MTCNN's.
2. Sparse detection with the default detector: every k-th frame detected, the rest filled
   in (faces.sparse): share of frames detected, recall, IoU of filled boxes with detected ones.
3. End to end on a 10-s 1280x720 H.264 clip (an example clip re-encoded and looped): the
   pipeline's total time against decoding the same frames alone (probe + sample_frames),
   per detector setting; the issue's floor is total <= 0.15 x duration and <= 3 x decode-only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

from fakescope.detect import Detector
from fakescope.evaluate import binary_metrics
from fakescope.faces import (
    DEFAULT_DETECT_EVERY,
    DEFAULT_FACE_DETECTOR,
    HaarFaceDetector,
    MTCNNFaceDetector,
    YuFaceDetector,
    create_face_detector,
)
from fakescope.faces.bench import face_detector_rows, labelled_clips, run_face_detectors, sparse_rows
from fakescope.media import probe, sample_frames
from fakescope.models import DEFAULT_MODEL, create_model

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FAKESCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
SOURCE_CLIP = ROOT / "examples" / "real_ffpp_866.mp4"
EVERIES = (1, 2, 3, 4)
MIN_IOUS = (0.3, 0.5, 0.7)
# (face detector, detect every k-th frame): the default, the default detecting every frame, the old default.
SETTINGS = ((DEFAULT_FACE_DETECTOR, DEFAULT_DETECT_EVERY), (DEFAULT_FACE_DETECTOR, 1), ("mtcnn", 1))


def make_clip(path: Path, *, seconds: float, width: int, height: int, fps: int = 30, source: Path = SOURCE_CLIP) -> Path:
    """`source` resized to width x height and looped to `seconds`, H.264 (libx264 defaults) in MP4."""
    total = round(seconds * fps)
    with av.open(str(source)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        written = 0
        while written < total:
            src.seek(0)
            for frame in src.decode(video=0):
                resized = frame.reformat(width=width, height=height, format="yuv420p")
                resized.pts, resized.time_base = written, Fraction(1, fps)
                for packet in stream.encode(resized):
                    out.mux(packet)
                written += 1
                if written == total:
                    break
        for packet in stream.encode():
            out.mux(packet)
    return path


def end_to_end(clip: Path, *, num_frames: int, repeat: int) -> list[dict]:
    """Per detector setting: median decode-only and total seconds over `repeat` interleaved runs, and the stages."""
    model = create_model(DEFAULT_MODEL, pretrained=True)
    detectors = {
        (name, every): Detector(
            model, model_name=DEFAULT_MODEL, face_detector=create_face_detector(name), num_frames=num_frames, detect_every=every
        )
        for name, every in SETTINGS
    }
    for detector in detectors.values():
        detector.detect(clip)  # warm-up: loads the face detector, first forward
    decode: list[float] = []
    runs: dict[tuple[str, int], list] = {key: [] for key in detectors}
    for _ in range(repeat):
        start = time.perf_counter()
        sample_frames(probe(clip), num_frames)
        decode.append(time.perf_counter() - start)
        for key, detector in detectors.items():
            runs[key].append(detector.detect(clip))
    decode_s = statistics.median(decode)
    rows = []
    for (name, every), results in runs.items():
        total = statistics.median(r.processing_time for r in results)
        stages = {s: statistics.median(r.timings.get(s, 0.0) for r in results) for s in ("decode", "faces", "model", "fusion")}
        duration = results[0].duration or 0.0
        rows.append(
            {
                "detector": name,
                "every": every,
                "status": results[0].status,
                "frames": results[0].frames_sampled,
                "duration": duration,
                "total_s": total,
                "decode_only_s": decode_s,
                "x_decode": total / decode_s,
                "x_duration": total / duration if duration else None,
                "stages": stages,
                "floor_total": total <= 0.15 * duration,
                "floor_x_decode": total <= 3 * decode_s,
            }
        )
    return rows


def video_auc(clips: list[tuple[Path, int]], *, num_frames: int) -> list[dict]:
    """Video-level AUC of the shipped model on the labelled clips, per detector setting."""
    model = create_model(DEFAULT_MODEL, pretrained=True)
    rows = []
    for name, every in SETTINGS:
        detector = Detector(
            model, model_name=DEFAULT_MODEL, face_detector=create_face_detector(name), num_frames=num_frames, detect_every=every
        )
        results = [detector.detect(path) for path, _ in clips]
        ok = [(label, r.score) for (_, label), r in zip(clips, results, strict=True) if r.status == "ok"]
        metrics = binary_metrics([y for y, _ in ok], [p for _, p in ok])
        rows.append(
            {
                "detector": name,
                "every": every,
                "scored": len(ok),
                "clips": len(clips),
                "auc": metrics["auc"],
                "logloss": metrics["logloss"],
            }
        )
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(title: str, rows: list[dict], columns: list[str]) -> None:
    print(f"\n{title}")
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (videos/, videos_more/)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs per setting (median)")
    parser.add_argument("--clip", type=Path, default=None, help="end-to-end clip (default: a 10-s 720p clip made in /tmp)")
    parser.add_argument("--auc", action="store_true", help="also score the labelled clips per detector setting")
    parser.add_argument("--quick", action="store_true", help="CI smoke mode: 1 clip, 4 frames, a 1-s clip, one repeat")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()[0]
    clips = labelled_clips(args.data)
    frames, repeat, seconds = args.frames, args.repeat, 10.0
    if args.quick:
        clips, frames, repeat, seconds = clips[:1], 4, 1, 1.0
    face_detectors = {
        "mtcnn": MTCNNFaceDetector(),
        "yuface": YuFaceDetector(),
        "yuface-omp": YuFaceDetector(threads=None),
        "haar": HaarFaceDetector(),
    }
    runs = run_face_detectors([path for path, _ in clips], face_detectors, num_frames=frames)
    report: dict[str, object] = {
        "detectors": face_detector_rows(runs, frames, reference="mtcnn"),
        "sparse": sparse_rows(runs[DEFAULT_FACE_DETECTOR], EVERIES, MIN_IOUS),
    }
    clip = args.clip
    if clip is None:
        clip = Path(tempfile.gettempdir()) / f"fakescope_bench_720p_{seconds:g}s.mp4"
        if not clip.exists():
            make_clip(clip, seconds=seconds, width=1280, height=720)
    report["end_to_end"] = end_to_end(clip, num_frames=frames, repeat=repeat)
    report["end_to_end_clip"] = str(clip)
    if args.auc:
        report["auc"] = video_auc(clips, num_frames=frames)
    report["load_average"] = [load_before, os.getloadavg()[0]]  # 1-min load at start and end: the machine is shared
    if args.json:
        print(json.dumps(report, indent=2))
        return
    iou_column = "median_iou_vs_mtcnn"
    _table(
        f"Face detectors on {len(clips)} labelled clips, {frames} frames each",
        report["detectors"],
        ["detector", "frames", "recall", "mean_s_per_frames", "median_s_per_frames", iou_column],
    )
    _table(
        f"Sparse detection with {DEFAULT_FACE_DETECTOR} (default every={DEFAULT_DETECT_EVERY})",
        report["sparse"],
        ["every", "min_iou", "detected_share", "recall", "filled", "mean_iou", "p5_iou"],
    )
    e2e = [{**row, **row["stages"]} for row in report["end_to_end"]]
    _table(
        f"End to end, {clip.name}, {frames} frames, median of {repeat}",
        e2e,
        [
            "detector",
            "every",
            "total_s",
            "decode_only_s",
            "x_decode",
            "x_duration",
            "decode",
            "faces",
            "model",
            "floor_total",
            "floor_x_decode",
        ],
    )
    if args.auc:
        _table("Video-level AUC, shipped model", report["auc"], ["detector", "every", "scored", "clips", "auc", "logloss"])
    print(f"\n1-min load average at start {load_before:.2f}, at end {report['load_average'][1]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
