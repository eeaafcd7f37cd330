"""`fakescope fit-fusion configs/fusion/video.yaml`: put a face model's video scores on the video scale.

The face model is calibrated per crop; a video's score is the max over identities of the mean of
their most suspicious frames, which genuine clips push upwards (detect.fusion, VideoCalibration).
Here each labelled clip is run through the Detector once (frame scores cached), its raw video
score recomputed from the frame scores with the pipeline's own rules, and a two-parameter logistic
map of its logit fitted on the clips. Clips are few, so every figure reported is leave-one-clip-out:
the held-out clip's P(fake) comes from a map fitted without it, and its verdict from bands chosen
without it. The shipped map is fitted on all clips, its bands on the out-of-fold scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from sklearn.linear_model import LogisticRegression

from fakescope.data.readers import read_dfdc_metadata
from fakescope.detect import Detector
from fakescope.detect.fusion import VIDEO_CALIBRATION_FILE, VideoCalibration, logit, media_score, track_score
from fakescope.detect.verdict import Thresholds
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models.registry import get_pretrained_cfg
from fakescope.progress import progress
from fakescope.train.card import git_sha, write_fit
from fakescope.train.config import Strict, read_yaml_mapping, validated


class VideoCalibrationConfig(Strict):
    kind: Literal["video"]
    face_model: str
    folders: list[Path] = Field(min_length=1, description="DFDC-format folders (videos + metadata.json) of labelled clips")
    frames: int = Field(32, ge=1, description="frames sampled per clip, as `fakescope detect --frames`")
    face_detector: Literal["yuface", "mtcnn", "haar"] = "yuface"
    c: float = Field(1.0, gt=0, description="inverse L2 strength of the logistic map (few clips: keep it shrunk)")
    fpr: float = Field(0.1, gt=0, lt=1, description="share of real clips allowed in 'manipulated' (out of fold)")
    fnr: float = Field(0.25, gt=0, lt=1, description="share of fake clips allowed in 'authentic' (out of fold)")
    cache: Path = Path("runs/video_calibration")


def load_video_calibration_config(path: Path) -> VideoCalibrationConfig:
    return validated(VideoCalibrationConfig, read_yaml_mapping(path, "fusion config"), path)


def labelled_clips(folders: list[Path]) -> list[dict]:
    """{"path", "label", "dataset"} per clip; `dataset` is metadata.json's own tag where it has one."""
    return [
        {"path": str(video.path), "label": video.label, "dataset": video.dataset or root.name}
        for root in folders
        for video in sorted(read_dfdc_metadata(root), key=lambda v: v.path.name)
    ]


def clip_frame_scores(cfg: VideoCalibrationConfig, clips: list[dict]) -> list[list[list[float]]]:
    """Each clip's frame scores per face track, from the Detector (cached per model, settings and clips)."""
    key = json.dumps([cfg.face_model, cfg.frames, cfg.face_detector, [c["path"] for c in clips]])
    path = cfg.cache / f"frames-{hashlib.sha1(key.encode()).hexdigest()[:12]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    detector = Detector.from_pretrained(
        cfg.face_model, image_model=None, audio_model=None, num_frames=cfg.frames, face_detector=cfg.face_detector, cache_size=0
    )
    tracks = []
    with progress() as bar:
        task = bar.add_task("clips", total=len(clips), info="")
        for clip in clips:
            result = detector.detect(clip["path"])
            tracks.append([[s for _, s, _ in face.frames] for face in result.faces])
            bar.advance(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tracks))
    return tracks


def raw_video_score(tracks: list[list[float]]) -> float:
    """The pipeline's video score before calibration (detect.fusion: top-half mean per track, max over tracks)."""
    return media_score([track_score(t) for t in tracks])


def fit_map(z: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float]:
    """Classes weighted equally: the clips' share of fakes is no prior for a user's clip (the frame
    models are calibrated on balanced data too)."""
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(z.reshape(-1, 1), y)
    return float(clf.coef_[0, 0]), float(clf.intercept_[0])


def leave_one_out(raw: np.ndarray, y: np.ndarray, cfg: VideoCalibrationConfig) -> tuple[np.ndarray, list[str]]:
    """Each clip's calibrated P(fake) and verdict from a map and bands fitted on the other clips."""
    z = np.vectorize(logit)(raw)
    probs, verdicts = np.zeros(len(y)), []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        calibration = VideoCalibration(cfg.face_model, *fit_map(z[rest], y[rest], cfg.c))
        in_sample = [calibration(p) for p in raw[rest]]
        bands = Thresholds.from_card(verdict_thresholds(y[rest], in_sample, fpr=cfg.fpr, fnr=cfg.fnr))
        probs[i] = calibration(raw[i])
        verdicts.append(bands.verdict(probs[i]))
    return probs, verdicts


def clip_table(y: np.ndarray, probs: np.ndarray, verdicts: list[str] | None) -> dict:
    """AUC, LogLoss, recall of each class at P(fake) = 0.5, and clips of each class called `manipulated`."""
    row = {
        **binary_metrics(y, probs),
        "real_recall": float(np.mean(probs[y == 0] < 0.5)),
        "fake_recall": float(np.mean(probs[y == 1] >= 0.5)),
    }
    if verdicts is not None:
        called = np.array([v == "manipulated" for v in verdicts])
        row |= {"real_manipulated": int(called[y == 0].sum()), "fake_manipulated": int(called[y == 1].sum())}
    return row


def _dataset_row(y: np.ndarray, raw: np.ndarray, oof: np.ndarray) -> dict:
    """Clips and AUC (None for one class) of one source, and its real clips at or above 0.5 before and after."""
    auc = float(binary_metrics(y, raw)["auc"]) if len(set(y)) == 2 else None
    real = y == 0
    return {
        "n": int(len(y)),
        "raw_auc": auc,
        "real_at_0.5_raw": int((raw[real] >= 0.5).sum()),
        "real_at_0.5": int((oof[real] >= 0.5).sum()),
    }


def fit_video_calibration(cfg: VideoCalibrationConfig, *, out: Path | None = None, recipe: str = "") -> dict:
    clips = labelled_clips(cfg.folders)
    frames = clip_frame_scores(cfg, clips)
    scored = [i for i, tracks in enumerate(frames) if tracks]
    y = np.array([clips[i]["label"] for i in scored])
    if len(scored) < 4 or len(set(y)) < 2:
        raise FakescopeError(f"video calibration needs at least 4 clips with a face, of both labels (got {len(scored)})")
    raw = np.array([raw_video_score(frames[i]) for i in scored])
    oof, verdicts = leave_one_out(raw, y, cfg)
    slope, bias = fit_map(np.vectorize(logit)(raw), y, cfg.c)
    card = get_pretrained_cfg(cfg.face_model).thresholds
    card_bands = Thresholds.from_card(card) if card else Thresholds()
    raw_verdicts = [card_bands.verdict(p) for p in raw]
    datasets = np.array([clips[i]["dataset"] for i in scored])
    entry = {
        "face_model": cfg.face_model,
        "slope": round(slope, 6),
        "bias": round(bias, 6),
        "thresholds": verdict_thresholds(y, oof, fpr=cfg.fpr, fnr=cfg.fnr),
        "metrics": {
            "raw": clip_table(y, raw, raw_verdicts),
            # each held-out clip has its own map, so ranking figures (AUC, EER) belong to the raw row only
            "calibrated_out_of_fold": {k: v for k, v in clip_table(y, oof, verdicts).items() if k not in ("auc", "eer")},
            "per_dataset": {
                d: _dataset_row(y[datasets == d], raw[datasets == d], oof[datasets == d]) for d in sorted(set(datasets))
            },
        },
        "dataset": f"{', '.join(f.name for f in cfg.folders)} ({len(scored)} of {len(clips)} clips with a face, "
        f"{cfg.frames} frames, leave-one-clip-out)",
        "recipe": recipe,
        "git": git_sha(),
    }
    if out is not None:
        write_fit(out / VIDEO_CALIBRATION_FILE, entry, keys=("face_model",))
    return entry
