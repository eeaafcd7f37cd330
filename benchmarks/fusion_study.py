"""Which fusion of frame scores into one video score works best? Measured on the 34 labelled clips.

Runs the default detector once per clip of ../shared/data/videos and ../shared/data/videos_more,
keeps every frame score per identity, then compares fusion rules by ROC-AUC and LogLoss.

    python benchmarks/fusion_study.py [--model faceswap-clip-b16.dfdc_ffpp] [--frames 32] [--out runs/fusion_study.json]

It also prints what a user sees: real and fake recall at P(fake) = 0.5, and how many clips of each
class the verdict calls `manipulated` (the model card's bands).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fakescope.constants import DEFAULT_MODEL
from fakescope.detect import Detector
from fakescope.evaluate import binary_metrics
from fakescope.train.video_calibration import labelled_clips

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

Rule = Callable[[list[list[float]]], float]


def top_mean(scores: list[float], fraction: float) -> float:
    s = sorted(scores, reverse=True)
    return float(np.mean(s[: max(1, round(len(s) * fraction))]))


RULES: dict[str, Rule] = {
    "mean of all frames": lambda tracks: float(np.mean([s for t in tracks for s in t])),
    "max over tracks of track mean": lambda tracks: max(float(np.mean(t)) for t in tracks),
    "max over tracks of track median": lambda tracks: max(float(np.median(t)) for t in tracks),
    "max over tracks of top-50% mean (default)": lambda tracks: max(top_mean(t, 0.5) for t in tracks),
    "max over tracks of top-25% mean": lambda tracks: max(top_mean(t, 0.25) for t in tracks),
    "max frame score": lambda tracks: max(max(t) for t in tracks),
    "longest track mean": lambda tracks: float(np.mean(max(tracks, key=len))),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="face model (default: the default one)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "fusion_study.json")
    args = parser.parse_args()

    detector = Detector.from_pretrained(args.model, num_frames=args.frames, image_model=None, audio_model=None)
    rows = []
    for clip in labelled_clips([DATA / "videos", DATA / "videos_more"]):
        path, label, dataset = Path(clip["path"]), clip["label"], clip["dataset"]
        r = detector.detect(path)
        tracks = [[s for _, s, _ in face.frames] for face in r.faces]
        rows.append(
            {
                "file": path.name,
                "label": label,
                "dataset": dataset,
                "status": r.status,
                "score": r.score,
                "tracks": tracks,
                "time": r.processing_time,
                "verdict": r.verdict,
                "duration": r.duration,
            }
        )
        print(
            f"{path.name:55s} {'FAKE' if label else 'REAL'} {r.status:8s} "
            f"score={r.score if r.score is None else round(r.score, 3)} "
            f"tracks={len(tracks)} time={r.processing_time:.1f}s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))

    scored = [r for r in rows if r["tracks"]]
    y = [r["label"] for r in scored]
    print(f"\n{len(scored)}/{len(rows)} clips scored")
    print(f"{'rule':45s} {'AUC':>6s} {'LogLoss':>8s} {'acc':>6s}")
    for name, rule in RULES.items():
        p = [rule(r["tracks"]) for r in scored]
        m = binary_metrics(y, p)
        print(f"{name:45s} {m['auc']:6.3f} {m['logloss']:8.3f} {m['accuracy']:6.3f}")
    real = [r for r in scored if not r["label"]]
    fake = [r for r in scored if r["label"]]
    print(
        f"at 0.5: real recall {sum(r['score'] < 0.5 for r in real)}/{len(real)}, "
        f"fake recall {sum(r['score'] >= 0.5 for r in fake)}/{len(fake)}; verdict manipulated: "
        f"{sum(r['verdict'] == 'manipulated' for r in real)} real, {sum(r['verdict'] == 'manipulated' for r in fake)} fake"
    )
    for subset in sorted({r["dataset"] for r in scored}):
        part = [r for r in scored if r["dataset"] == subset]
        p = [RULES["max over tracks of top-50% mean (default)"](r["tracks"]) for r in part]
        labels = [r["label"] for r in part]
        auc = binary_metrics(labels, p)["auc"]
        print(f"  default rule on {subset:30s} n={len(part):2d} AUC={auc:.3f}")


if __name__ == "__main__":
    main()
