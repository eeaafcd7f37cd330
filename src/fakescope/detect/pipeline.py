"""Per-media pipelines: image and video → faces → crops → scores → fused Result.

Images are scored by the face model on each face and, when the detector has one, by the
image model on the whole picture; videos by the face model only (the image model was trained
on still pictures, not on video frames).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from fakescope.detect.fusion import NO_FACE_TEMPERATURE, fuse_detectors, media_score, soften, timeline, track_score
from fakescope.detect.result import DetectorScore, FaceTrack, Result, Segment
from fakescope.detect.scoring import score_crops, whole_image_input
from fakescope.faces import FaceDetector, crop_face, filter_tracks, track_faces
from fakescope.faces.crop import center_square
from fakescope.media import MediaInfo, load_image, sample_frames
from fakescope.models.base import DeepfakeDetector


@dataclass
class StageTimer:
    """Seconds spent per pipeline stage; reported in the Result and by the benchmark."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


@dataclass
class PipelineContext:
    model: DeepfakeDetector
    model_name: str
    face_detector: FaceDetector
    num_frames: int = 32
    image_model: DeepfakeDetector | None = None
    image_model_name: str = ""


def _crop(ctx: PipelineContext, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    cfg = ctx.model.pretrained_cfg
    return crop_face(image, box, margin=cfg.face_margin, shift=cfg.face_shift, size=cfg.image_size)


def run_image(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Result:
    """Score every face, and the whole picture with the image model if there is one; fuse the detectors.

    With no detectable face the face model scores the centre square (right for tight face
    crops); beside an image model that score is softened before fusion (see detect.fusion).
    """
    with timer.stage("decode"):
        image = load_image(info.path)
    with timer.stage("faces"):
        faces = ctx.face_detector.detect([image])[0]
        if faces:
            crops = [_crop(ctx, image, face.box) for face in faces]
            boxes = [face.as_xywh() for face in faces]
        else:
            crops = [whole_image_input(image, ctx.model.pretrained_cfg)]
            x0, y0, side = center_square(*image.shape[:2])
            boxes = [[float(x0), float(y0), float(side), float(side)]]
    with timer.stage("model"):
        scores = score_crops(ctx.model, crops)
        whole = None if ctx.image_model is None else _score_whole(ctx.image_model, image)
    with timer.stage("fusion"):
        result.faces = [
            FaceTrack(track_id=i, score=float(s), frames=[(0.0, float(s), box)]) for i, (s, box) in enumerate(zip(scores, boxes))
        ]
        face_score = media_score(scores.tolist())
        if whole is None:
            detectors = [(ctx.model_name, face_score)]
        else:
            face_evidence = face_score if faces else soften(face_score, NO_FACE_TEMPERATURE)
            detectors = [(ctx.model_name, face_evidence), (ctx.image_model_name, whole)]
    if not faces:
        result.reason = "no face detected: scored the whole image as a face crop"
        if whole is not None:
            result.reason += f" (softened, T={NO_FACE_TEMPERATURE:g}) and with {ctx.image_model_name}"
    return _finish(result, detectors)


def _score_whole(model: DeepfakeDetector, image: np.ndarray) -> float:
    return float(score_crops(model, [whole_image_input(image, model.pretrained_cfg)])[0])


def run_video(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Result:
    """Sample frames, track identities, score all crops in one batch, fuse per identity then per video."""
    result.duration = info.duration
    with timer.stage("decode"):
        frames = sample_frames(info, ctx.num_frames)
    result.frames_sampled = len(frames)
    with timer.stage("faces"):
        per_frame = ctx.face_detector.detect([f.image for f in frames])
        tracks = filter_tracks(track_faces(per_frame, [f.timestamp for f in frames]))
    if not tracks:
        result.status = "not_applicable"
        result.reason = f"no face found in {len(frames)} sampled frames"
        return result
    with timer.stage("faces"):
        crops = [_crop(ctx, frames[det.frame_index].image, det.face.box) for track in tracks for det in track.detections]
    with timer.stage("model"):
        scores = score_crops(ctx.model, crops)
    with timer.stage("fusion"):
        face_tracks, all_t, all_s = [], [], []
        i = 0
        for track in tracks:
            frames_out = []
            for det in track.detections:
                frames_out.append((round(det.timestamp, 3), float(scores[i]), det.face.as_xywh()))
                all_t.append(det.timestamp)
                all_s.append(float(scores[i]))
                i += 1
            face_tracks.append(FaceTrack(track_id=track.track_id, score=track_score([s for _, s, _ in frames_out]), frames=frames_out))
        result.faces = face_tracks
        score = media_score([t.score for t in face_tracks])
        duration = info.duration or (max(all_t) if all_t else 0.0)
        result.segments = [Segment(start=a, end=b, score=s) for a, b, s in timeline(all_t, all_s, duration)]
    return _finish(result, [(ctx.model_name, score)])


def _finish(result: Result, detectors: Sequence[tuple[str, float]]) -> Result:
    """Fuse the (name, P(fake)) of every detector that looked at the file into the Result's score."""
    score, weights = fuse_detectors([s for _, s in detectors])
    result.score = round(score, 6)
    result.probabilities = {"real": round(1 - score, 6), "fake": round(score, 6)}
    result.label = "FAKE" if score >= 0.5 else "REAL"
    result.detectors = [DetectorScore(name=n, score=round(s, 6), weight=w) for (n, s), w in zip(detectors, weights, strict=True)]
    return result


PIPELINES: dict[str, Callable[[PipelineContext, MediaInfo, Result, StageTimer], Result]] = {
    "image": run_image,
    "video": run_video,
}
