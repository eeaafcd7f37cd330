"""`fakescope eval DATASET --model NAME`: score a labelled dataset and write the report.

Every kind of data is scored by default the way `fakescope detect` scores it, so the report's
figures are the ones users get (a model's input alone can look better than the detect path):
- videos (DFDC format: .mp4 + metadata.json) go through the full detection pipeline, the
  same `Detector` users run; frame level = every scored face crop (labelled with its video's
  label), video level = the fused P(fake) per video, as in the DFDC leaderboard;
- face crops or images (labels.csv, real/ + fake/) go through the Detector too (face detection,
  crop geometry, fusion): picture level = the Result's score per file. An image model is run
  beside the default face model, as `fakescope detect` runs it, and reported alone and fused.
  `--perturb jpeg70` etc. write each perturbed picture as PNG and detect that file. `--crops`
  instead feeds each file straight into the model at its input size ("crops (model input only)"):
  the model's own figure, not what users get. Either way the split is rebuilt with the seed and
  val fraction stored in the model's card, so `--split val` is exactly the held-out set that
  training reported on;
- speech (labels.csv or real/ + fake/ audio files, for audio models) goes through the same
  windowing and window fusion as `fakescope detect` (clip level), with sections per
  generator family and source when labels.csv names them; `--perturb mp3_32k` etc. re-encode
  every clip first (the channel conditions of media.channels).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fakescope.constants import DEFAULT_MODEL
from fakescope.data import Sample, assign_splits, load_samples, read_dfdc_metadata, recorded_split
from fakescope.data.audio import first_window_batches
from fakescope.data.images import FaceCropDataset
from fakescope.detect import Detector
from fakescope.detect.audio import score_speech
from fakescope.detect.failures import failed_result
from fakescope.detect.result import Result
from fakescope.errors import FakescopeError
from fakescope.evaluate.breakdown import subgroups
from fakescope.evaluate.perturb import Perturbation, parse_perturbation
from fakescope.evaluate.report import write_report
from fakescope.evaluate.submission import UNSCORED, write_submission
from fakescope.faces import DEFAULT_FACE_DETECTOR
from fakescope.media.audio import Audio, load_audio
from fakescope.media.channels import CONDITIONS, apply_condition
from fakescope.media.files import AUDIO_EXTENSIONS
from fakescope.media.image import load_image
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.base import ClassifierModel
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
        why = " (the model was trained on every group: its card's figures are leave-one-group-out)" * (settings.val_fraction == 0)
        raise FakescopeError(f"{root}: no videos in split {split!r}{why}; --split all scores every video")
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


# Section names of image folders: the detect path's, and the model-input-only figure of `--crops`,
# named so that a reader cannot take it for what `fakescope detect` gives.
PICTURE_LEVEL = "picture level"
CROPS_LEVEL = "crops (model input only)"
MODEL_INPUT_CHUNK = 1024  # files decoded at a time by model_input_probs (~150 MB at 224 px)


def _image_samples(root: Path, model_name: str, split: str) -> list[Sample]:
    """The labelled pictures of `split`, rebuilt with the seed and val fraction of the model's card:
    both image scorers score exactly the same files."""
    settings = recorded_split(get_pretrained_cfg(model_name))
    samples = load_samples(root, val_fraction=settings.val_fraction, seed=settings.seed)
    if split != "all":
        samples = [s for s in samples if s.split == split]
    if not samples:
        raise FakescopeError(f"{root}: no samples in split {split!r}")
    return samples


def score_pictures(
    root: Path,
    model_name: str,
    *,
    split: str,
    perturbations: Sequence[str] = (),
    face_detector: str = DEFAULT_FACE_DETECTOR,
) -> Scores:
    """Picture-level P(fake) of every file as `fakescope detect` gives it (face detection, crop
    geometry, fusion), clean and once more per perturbation (`jpeg70`, ...).

    A face model is the Detector's face model, alone: "picture level" = the Result's score. An image
    model runs beside the default face model, as detect runs it: "picture level, <model> alone"
    (its entry in the Result's detectors) and "picture level, fused" (the Result's score).
    A perturbed picture is written as PNG (no second compression) and that file detected.
    Files the Detector could not score count as UNSCORED and are listed.
    """
    checks = {spec: parse_perturbation(spec) for spec in perturbations}
    samples = _image_samples(root, model_name, split)
    is_face_model = get_pretrained_cfg(model_name).input_kind == "face"
    detector = Detector.from_pretrained(
        model_name if is_face_model else DEFAULT_MODEL,
        image_model=None if is_face_model else model_name,
        audio_model=None,  # pictures have no sound
        face_detector=face_detector,
        cache_size=0,
    )
    levels = [PICTURE_LEVEL] if is_face_model else [f"{PICTURE_LEVEL}, {model_name} alone", f"{PICTURE_LEVEL}, fused"]
    labels = np.array([s.label for s in samples])
    out = Scores()
    for condition, perturb in {"clean": None, **checks}.items():
        probs: dict[str, list[float]] = {level: [] for level in levels}
        with tempfile.TemporaryDirectory(prefix="fakescope-eval-") as tmp:
            for i, sample in enumerate(samples):
                if perturb is None:
                    result = detector.detect(sample.path)
                    out.results.append(result)
                else:
                    result = _detect_perturbed(detector, sample.path, perturb, Path(tmp) / f"{i:06d}.png")
                if result.status != "ok" or result.score is None:
                    tag = "" if perturb is None else f" ({condition})"
                    out.unscored.append(f"{sample.path.name}{tag}: {result.reason}")
                fused = result.score if result.status == "ok" and result.score is not None else UNSCORED
                if is_face_model:
                    probs[PICTURE_LEVEL].append(fused)
                else:
                    alone = next((d.score for d in result.detectors if d.name == model_name), None)
                    probs[levels[0]].append(UNSCORED if alone is None or result.status != "ok" else alone)
                    probs[levels[1]].append(fused)
                if (i + 1) % 100 == 0:
                    log.info("%s: %d/%d pictures detected", condition, i + 1, len(samples))
        for level, values in probs.items():
            name = level if perturb is None else f"{level}, {condition}"
            out.sections[name] = (labels, np.array(values))
    return out


def _detect_perturbed(detector: Detector, path: Path, perturb: Perturbation, dest: Path) -> Result:
    """`detect` on the picture after `perturb`, decoded as detect decodes it and written losslessly to `dest`."""
    try:
        picture = perturb(Image.fromarray(load_image(path)))
        picture.convert("RGB").save(dest, format="PNG")
    except FakescopeError as err:
        return failed_result(path, err)
    try:
        return detector.detect(dest)
    finally:
        dest.unlink(missing_ok=True)


@torch.inference_mode()
def score_model_input(
    root: Path, model_name: str, *, split: str, perturbations: Sequence[str] = (), batch_size: int = 64
) -> Scores:
    """`--crops`: each file straight into the model at its input size (no face detection, no fusion),
    clean and once more per perturbation. The model's own figure on its training geometry, which
    can differ from what `fakescope detect` gives on the same files: its sections say so."""
    checks = {spec: parse_perturbation(spec) for spec in perturbations}
    samples = _image_samples(root, model_name, split)
    model = create_model(model_name, pretrained=True).eval()
    labels = np.array([s.label for s in samples])
    out = Scores()
    for name, perturb in {CROPS_LEVEL: None, **{f"{CROPS_LEVEL}, {k}": v for k, v in checks.items()}}.items():
        out.sections[name] = (labels, model_input_probs(model, samples, perturb=perturb, batch_size=batch_size))
    return out


@torch.inference_mode()
def model_input_probs(
    model: ClassifierModel, samples: Sequence[Sample], *, perturb: Perturbation | None = None, batch_size: int = 64
) -> np.ndarray:
    """P(fake) of each file straight into `model` at its input size (the `--crops` figure; cross-dataset protocols),
    read a chunk at a time so that thousands of files never sit decoded in memory at once."""
    cfg = model.pretrained_cfg
    probs = []
    if cfg.input_kind == "audio":  # each clip's first window, as a speech model's val metrics read it
        if perturb is not None:
            raise FakescopeError("model input perturbations are for pictures; audio conditions: fakescope eval --perturb")
        for start in range(0, len(samples), MODEL_INPUT_CHUNK):
            paths = [s.path for s in samples[start : start + MODEL_INPUT_CHUNK]]
            part = np.zeros(len(paths), np.float32)
            for rows, waves in first_window_batches(paths, cfg, batch_size):
                part[rows] = model(waves)["prob"].reshape(-1).numpy()
            probs.append(part)
        return np.concatenate(probs) if probs else np.zeros(0)
    for start in range(0, len(samples), MODEL_INPUT_CHUNK):
        chunk = FaceCropDataset(samples[start : start + MODEL_INPUT_CHUNK], cfg.image_size, eval_transform(cfg), perturb=perturb)
        probs.extend(model(images)["prob"].numpy() for images, _ in DataLoader(chunk, batch_size=batch_size))
    return np.concatenate(probs) if probs else np.zeros(0)


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
    crops: bool = False,
) -> tuple[dict, Path]:
    """Score `root` with `model_name`; write metrics.json, plots and report.html into `out_dir`.

    Image folders go through the detect path (`score_pictures`) unless `crops`, which feeds each
    file straight into the model (`score_model_input`, the model-input-only figure)."""
    root = Path(root)
    if not root.is_dir():
        raise FakescopeError(f"{root}: not a folder")
    is_video = (root / "metadata.json").is_file()
    if submission is not None and not is_video:
        raise FakescopeError("--submission needs a DFDC-format video folder (metadata.json)")
    if perturbations and is_video:
        raise FakescopeError("--perturb applies to image, face-crop and audio datasets, not video folders")
    input_kind = get_pretrained_cfg(model_name).input_kind
    if crops and input_kind == "audio":
        raise FakescopeError(f"--crops applies to image and face models: {model_name} is an audio model, scored clip by clip")
    if crops and is_video:
        raise FakescopeError("--crops applies to image and face-crop folders: video folders are always scored by the Detector")
    if input_kind == "audio":
        if is_video:
            raise FakescopeError(f"{model_name} is an audio model: evaluate it on an audio folder (labels.csv or real/ + fake/)")
        scores = score_audio(root, model_name, split=split, perturbations=perturbations)
    elif is_video:
        scores = score_videos(root, model_name, split=split, frames=frames, face_detector=face_detector)
    elif crops:
        scores = score_model_input(root, model_name, split=split, perturbations=perturbations)
    else:
        scores = score_pictures(root, model_name, split=split, perturbations=perturbations, face_detector=face_detector)
    meta = {
        "model": model_name,
        "dataset": str(root),
        "split": split,
        "scored": _scoring_path(is_video, input_kind, crops, model_name),
        "unscored (counted as 0.5)": "; ".join(scores.unscored) or "none",
    }
    html = write_report(out_dir, scores.sections, title=f"{model_name} on {root.name} ({split})", meta=meta)
    if submission is not None:
        write_submission(scores.results, submission)
    return json.loads((out_dir / "metrics.json").read_text()), html


def _scoring_path(is_video: bool, input_kind: str, crops: bool, model_name: str) -> str:
    """How the report's scores were made, in its header: the detect path or the model's input alone."""
    if input_kind == "audio":
        return "as fakescope detect: speech windows, window fusion"
    if crops:
        return "crops (model input only): each file straight into the model, no face detection or fusion"
    if is_video:
        return "as fakescope detect: the Detector (face detection, tracking, crop geometry, fusion)"
    if input_kind == "image":
        return f"as fakescope detect: the Detector with {DEFAULT_MODEL} on faces and {model_name} on the whole picture, fused"
    return "as fakescope detect: the Detector (face detection, crop geometry, fusion)"
