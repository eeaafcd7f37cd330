"""`fakescope eval DATASET --model NAME`: score a labelled dataset and write the report.

Three kinds of data, one report:
- videos (DFDC format: .mp4 + metadata.json) go through the full detection pipeline, the
  same `Detector` users run; frame level = every scored face crop (labelled with its video's
  label), video level = the fused P(fake) per video, as in the DFDC leaderboard;
- face crops or images (labels.csv, real/ + fake/) go straight into the model at its input
  size — frame level only. The split is rebuilt with the seed and val fraction stored in
  the model's card, so `--split val` is exactly the held-out set that training reported on;
- speech (labels.csv or real/ + fake/ audio files, for audio models) goes through the same
  windowing and window fusion as `fakescope detect` (clip level), with sections per
  generator family and source when labels.csv names them; `--perturb mp3_32k` etc. re-encode
  every clip first (the channel conditions of media.channels).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from fakescope.data import assign_splits, load_samples, read_dfdc_metadata, recorded_split
from fakescope.data.images import FaceCropDataset
from fakescope.detect import Detector
from fakescope.detect.audio import score_speech
from fakescope.detect.result import Result
from fakescope.errors import FakescopeError
from fakescope.evaluate.breakdown import subgroups
from fakescope.evaluate.perturb import parse_perturbation
from fakescope.evaluate.report import write_report
from fakescope.evaluate.submission import UNSCORED, write_submission
from fakescope.faces import DEFAULT_FACE_DETECTOR
from fakescope.media.audio import Audio, load_audio
from fakescope.media.channels import CONDITIONS, apply_condition
from fakescope.media.files import AUDIO_EXTENSIONS
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.transforms import eval_transform

log = logging.getLogger(__name__)


@dataclass
class Scores:
    """Labels and P(fake) per evaluation level, plus what could not be scored."""

    sections: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)


def score_videos(root: Path, model_name: str, *, split: str, frames: int, face_detector: str) -> Scores:
    settings = recorded_split(get_pretrained_cfg(model_name))
    videos = read_dfdc_metadata(root)
    if split != "all":
        videos = assign_splits(videos, settings.val_fraction, seed=settings.seed, source=root / "metadata.json")
        videos = [v for v in videos if v.split == split]
    if not videos:
        raise FakescopeError(f"{root}: no videos in split {split!r}")
    detector = Detector.from_pretrained(model_name, num_frames=frames, face_detector=face_detector, image_model=None)
    out = Scores()
    frame_y, frame_p, video_y, video_p = [], [], [], []
    for i, video in enumerate(videos, 1):
        result = detector.detect(video.path)
        log.info("%d/%d %s: %s %s", i, len(videos), video.path.name, result.status, result.score)
        out.results.append(result)
        ok = result.status == "ok" and result.score is not None
        if not ok:
            out.unscored.append(f"{video.path.name}: {result.reason}")
        video_y.append(video.label)
        video_p.append(result.score if ok else UNSCORED)
        for track in result.faces:
            for _, score, _ in track.frames:
                frame_y.append(video.label)
                frame_p.append(score)
    out.sections["video level"] = (np.array(video_y), np.array(video_p))
    if frame_y:
        out.sections["frame level"] = (np.array(frame_y), np.array(frame_p))
    return out


@torch.inference_mode()
def score_images(root: Path, model_name: str, *, split: str, perturbations: Sequence[str] = (), batch_size: int = 64) -> Scores:
    """Frame-level scores of the clean images, then once more per perturbation (`jpeg70`, ...)."""
    checks = {spec: parse_perturbation(spec) for spec in perturbations}
    settings = recorded_split(get_pretrained_cfg(model_name))
    samples = load_samples(root, val_fraction=settings.val_fraction, seed=settings.seed)
    if split != "all":
        samples = [s for s in samples if s.split == split]
    if not samples:
        raise FakescopeError(f"{root}: no samples in split {split!r}")
    model = create_model(model_name, pretrained=True).eval()
    cfg = model.pretrained_cfg
    labels = np.array([s.label for s in samples])
    out = Scores()
    for name, perturb in {"frame level": None, **{f"frame level, {k}": v for k, v in checks.items()}}.items():
        dataset = FaceCropDataset(samples, cfg.image_size, eval_transform(cfg), perturb=perturb)
        loader = DataLoader(dataset, batch_size=batch_size)
        out.sections[name] = (labels, np.concatenate([model(images)["prob"].numpy() for images, _ in loader]))
    return out


def score_audio(root: Path, model_name: str, *, split: str, perturbations: Sequence[str] = ()) -> Scores:
    """Clip-level P(fake) exactly as `fakescope detect` gives it, clean and per channel condition."""
    for spec in perturbations:
        if spec not in CONDITIONS:
            raise FakescopeError(f"unknown audio perturbation {spec!r}: use one of {', '.join(CONDITIONS)}")
    settings = recorded_split(get_pretrained_cfg(model_name))
    samples = load_samples(root, val_fraction=settings.val_fraction, seed=settings.seed, extensions=AUDIO_EXTENSIONS)
    if split != "all":
        samples = [s for s in samples if s.split == split]
    if not samples:
        raise FakescopeError(f"{root}: no samples in split {split!r}")
    model = create_model(model_name, pretrained=True).eval()
    rate = model.pretrained_cfg.sample_rate
    clips = [load_audio(s.path, sample_rate=rate) for s in samples]
    labels = np.array([s.label for s in samples])
    out = Scores()
    for condition in ("clean", *perturbations):
        probs = []
        for sample, audio in zip(samples, clips, strict=True):
            if condition != "clean":
                audio = Audio(apply_condition(audio.samples, rate, condition), rate, audio.source_rate, audio.start)
            evidence = score_speech(model, audio)
            if evidence.score is None and condition == "clean":
                out.unscored.append(f"{sample.path.name}: {evidence.skipped}")
            probs.append(UNSCORED if evidence.score is None else evidence.score)
        name = "clip level" if condition == "clean" else f"clip level, {condition}"
        out.sections[name] = (labels, np.array(probs))
        if condition == "clean":
            for group, section in subgroups([s.info for s in samples], labels, out.sections[name][1]).items():
                out.sections[f"clip level, {group}"] = section
    return out


def evaluate_dataset(
    root: Path,
    model_name: str,
    *,
    out_dir: Path,
    split: str = "val",
    frames: int = 32,
    face_detector: str = DEFAULT_FACE_DETECTOR,
    submission: Path | None = None,
    perturbations: Sequence[str] = (),
) -> tuple[dict, Path]:
    """Score `root` with `model_name`; write metrics.json, plots and report.html into `out_dir`."""
    root = Path(root)
    if not root.is_dir():
        raise FakescopeError(f"{root}: not a folder")
    is_video = (root / "metadata.json").is_file()
    if submission is not None and not is_video:
        raise FakescopeError("--submission needs a DFDC-format video folder (metadata.json)")
    if perturbations and is_video:
        raise FakescopeError("--perturb applies to image, face-crop and audio datasets, not video folders")
    if get_pretrained_cfg(model_name).input_kind == "audio":
        if is_video:
            raise FakescopeError(f"{model_name} is an audio model: evaluate it on an audio folder (labels.csv or real/ + fake/)")
        scores = score_audio(root, model_name, split=split, perturbations=perturbations)
    elif is_video:
        scores = score_videos(root, model_name, split=split, frames=frames, face_detector=face_detector)
    else:
        scores = score_images(root, model_name, split=split, perturbations=perturbations)
    meta = {
        "model": model_name,
        "dataset": str(root),
        "split": split,
        "unscored (counted as 0.5)": "; ".join(scores.unscored) or "none",
    }
    html = write_report(out_dir, scores.sections, title=f"{model_name} on {root.name} ({split})", meta=meta)
    if submission is not None:
        write_submission(scores.results, submission)
    return json.loads((out_dir / "metrics.json").read_text()), html
