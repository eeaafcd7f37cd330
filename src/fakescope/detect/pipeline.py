"""Per-media pipelines: image, video and audio → evidence → scores → fused Result.

Images are scored by the face model on each face and, when the detector has one, by the
image model on the whole picture; videos by the face model (the image model was trained on
still pictures, not on video frames) and, when the detector has an audio model, by their
sound too; audio files by the audio model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fakescope.constants import DEFAULT_DETECT_EVERY, MAX_CROPS_PER_FORWARD
from fakescope.detect.audio import MIN_AUDIO_SECONDS, MIN_RECORDING_SECONDS, AudioEvidence, analyse_audio
from fakescope.detect.content import too_little_content
from fakescope.detect.fusion import (
    NO_FACE_TEMPERATURE,
    ModalityWeights,
    PictureFusion,
    VideoCalibration,
    fuse_detectors,
    fuse_modalities,
    media_score,
    soften,
    timeline,
    track_score,
)
from fakescope.detect.result import DetectorScore, FaceTrack, ModalityScore, Result, Segment
from fakescope.detect.scoring import score_crops, score_track, whole_image_input
from fakescope.detect.timing import StageTimer
from fakescope.errors import UnsupportedMediaError
from fakescope.faces import FaceDetector, crop_face, filter_tracks, track_faces
from fakescope.faces.crop import center_square, fills_picture
from fakescope.faces.sparse import detect_sparse
from fakescope.faces.tracking import Track
from fakescope.media import Frame, MediaInfo, load_image, sample_frames
from fakescope.media.budget import DECODE_BUDGET
from fakescope.media.video import decode_side, decoded_pixels
from fakescope.media.video_decoding import scaled_size
from fakescope.models.base import ClassifierModel
from fakescope.models.temporal import SequenceModel


@dataclass
class PipelineContext:
    model: ClassifierModel
    model_name: str
    face_detector: FaceDetector
    num_frames: int = 32
    image_model: ClassifierModel | None = None
    image_model_name: str = ""
    audio_model: ClassifierModel | None = None
    audio_model_name: str = ""
    weights: ModalityWeights = field(default_factory=ModalityWeights)
    detect_every: int = DEFAULT_DETECT_EVERY
    batch_size: int = MAX_CROPS_PER_FORWARD
    picture_fusion: PictureFusion | None = None
    video_calibration: VideoCalibration | None = None


@dataclass
class Analysis:
    """A file's Result and the decoded pictures behind it, handed forward so nothing decodes the file again.

    `pictures`: each face track's most suspicious frame, by track id (the whole picture for an
    image); the service cuts its face thumbnails from them. `picture_scale`: the pictures' pixels
    per pixel of the boxes, below 1 for a video decoded smaller than its own size (the boxes are
    always given in the video's pixels).
    """

    result: Result
    pictures: dict[int, np.ndarray] = field(default_factory=dict)
    picture_scale: float = 1.0


def _crop(ctx: PipelineContext, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    cfg = ctx.model.pretrained_cfg
    return crop_face(image, box, margin=cfg.face_margin, shift=cfg.face_shift, size=cfg.image_size)


def run_image(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Analysis:
    """Score every face, and the whole picture with the image model if there is one; fuse the detectors.

    A picture that is itself a face crop (one face filling it, faces.crop.fills_picture) is scored
    whole, as the face models were trained. With no detectable face the face model scores the centre
    square (right for tight face crops); beside an image model that score is softened before fusion (see detect.fusion).
    A faceless picture too small or too plain to judge (detect.content) is not_applicable.
    """
    if ctx.model.pretrained_cfg.input_kind == "face_sequence":
        result.status = "not_applicable"
        result.reason = f"{ctx.model_name} judges faces over time and a picture is one frame: score pictures with a frame model"
        result.modalities = [ModalityScore(modality="image", score=None, weight=0.0, skipped=result.reason)]
        return Analysis(result)
    with timer.stage("decode"):
        image = load_image(info.path, info=info)
    with timer.stage("faces"):
        faces = ctx.face_detector.detect([image])[0]
        blank = None if faces else too_little_content(image)
    if blank is not None:
        result.status, result.reason = "not_applicable", f"no face detected and {blank}"
        result.modalities = [ModalityScore(modality="image", score=None, weight=0.0, skipped=result.reason)]
        return Analysis(result)
    with timer.stage("faces"):
        if len(faces) == 1 and fills_picture(faces[0].box, *image.shape[:2]):
            crops = [whole_image_input(image, ctx.model.pretrained_cfg)]
            x0, y0, side = center_square(*image.shape[:2])
            boxes = [[float(x0), float(y0), float(side), float(side)]]
        elif faces:
            crops = [_crop(ctx, image, face.box) for face in faces]
            boxes = [face.as_xywh() for face in faces]
        else:
            crops = [whole_image_input(image, ctx.model.pretrained_cfg)]
            x0, y0, side = center_square(*image.shape[:2])
            boxes = [[float(x0), float(y0), float(side), float(side)]]
    with timer.stage("model"):
        scores = score_crops(ctx.model, crops, batch_size=ctx.batch_size)
        whole = None if ctx.image_model is None else _score_whole(ctx.image_model, image)
    with timer.stage("fusion"):
        result.faces = [
            FaceTrack(track_id=i, score=float(s), frames=[(0.0, float(s), box)])
            for i, (s, box) in enumerate(zip(scores, boxes, strict=True))
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
    if ctx.picture_fusion is not None and len(detectors) == 2:
        score, weights = ctx.picture_fusion.fuse(detectors[0][1], detectors[1][1])
    else:
        score, weights = fuse_detectors([s for _, s in detectors])
    result.modalities = [ModalityScore(modality="image", score=round(score, 6), weight=1.0)]
    _finish(result, score, [(n, s, w) for (n, s), w in zip(detectors, weights, strict=True)])
    return Analysis(result, {track.track_id: image for track in result.faces})


def _score_whole(model: ClassifierModel, image: np.ndarray) -> float:
    return float(score_crops(model, [whole_image_input(image, model.pretrained_cfg)])[0])


def run_video(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Analysis:
    """Faces (and the sound, when there is an audio model) scored apart, then fused (fusion.fuse_modalities)."""
    result.duration = info.duration
    width, height = info.width or 0, info.height or 0
    side = decode_side(width, height, ctx.num_frames) if width and height else None
    decoded_width = None if side is None else scaled_size(width, height, side)[0]
    # The frames are held from decoding to cropping: their pixels count against the process's budget.
    with DECODE_BUDGET.hold(decoded_pixels(width, height, ctx.num_frames, side)):
        face_score, face_skipped, pictures = _score_faces(ctx, info, result, timer, side, decoded_width)
    picture_scale = 1.0 if decoded_width is None else decoded_width / width
    audio = _video_audio(ctx, info, timer)
    scores = {"video": face_score} if face_score is not None else {}
    if audio is not None and audio.score is not None:
        scores["audio"] = audio.score
        result.segments += audio.segments()
    shares: dict[str, float] = {}
    if scores:
        with timer.stage("fusion"):
            score, shares = fuse_modalities(scores, ctx.weights)
    result.modalities = [
        ModalityScore(modality="video", score=_round(face_score), weight=shares.get("video", 0.0), skipped=face_skipped)
    ]
    if audio is not None:
        result.modalities.append(
            ModalityScore(modality="audio", score=_round(audio.score), weight=shares.get("audio", 0.0), skipped=audio.skipped)
        )
    if not scores:
        result.status = "not_applicable"
        result.reason = face_skipped if audio is None else f"{face_skipped}; audio: {audio.skipped}"
        return Analysis(result)
    if face_skipped:
        result.reason = f"{face_skipped}: scored on the audio track only"
    detectors = [(ctx.model_name, face_score, shares.get("video", 0.0))] if face_score is not None else []
    if "audio" in scores:
        detectors.append((ctx.audio_model_name, scores["audio"], shares["audio"]))
    return Analysis(_finish(result, score, detectors), pictures, picture_scale)


def _score_faces(
    ctx: PipelineContext,
    info: MediaInfo,
    result: Result,
    timer: StageTimer,
    side: int | None = None,
    decoded_width: int | None = None,
) -> tuple[float | None, str | None, dict[int, np.ndarray]]:
    """Sample frames, find faces on every `detect_every`-th (faces.sparse), track identities, score
    all crops in one batch, fuse per identity then per video; fills faces and the per-second
    timeline. Returns (score, None, each track's most suspicious frame) or (None, why not, {}).

    Frames are decoded with their long side at most `side` (None: full size; `decoded_width` is then
    their width) and the crops cut from them; the boxes in the Result are given in the video's own pixels."""
    with timer.stage("decode"):
        frames = sample_frames(info, ctx.num_frames, max_side=side)
    result.frames_sampled = len(frames)
    with timer.stage("faces"):
        per_frame = detect_sparse(ctx.face_detector, [f.image for f in frames], ctx.detect_every)
        tracks = filter_tracks(track_faces(per_frame, [f.timestamp for f in frames]))
    if not tracks:
        return None, f"no face found in {len(frames)} sampled frames", {}
    with timer.stage("faces"):
        crops = [_crop(ctx, frames[det.frame_index].image, det.face.box) for track in tracks for det in track.detections]
    with timer.stage("model"):
        if isinstance(ctx.model, SequenceModel):  # each track's sequences (a recurrent model encodes each crop once)
            bounds = np.cumsum([0] + [len(track.detections) for track in tracks])
            by_track = [score_track(ctx.model, crops[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            scores = np.concatenate([t.frames for t in by_track])
        else:
            by_track = None
            scores = score_crops(ctx.model, crops, batch_size=ctx.batch_size)
    with timer.stage("fusion"):
        face_tracks, all_t, all_s = [], [], []
        i = 0
        to_video = None if decoded_width is None or not info.width else info.width / decoded_width
        for k, track in enumerate(tracks):
            frames_out = []
            for det in track.detections:
                box = det.face.as_xywh()
                box = box if to_video is None else [round(v * to_video, 1) for v in box]
                frames_out.append((round(det.timestamp, 3), float(scores[i]), box))
                all_t.append(det.timestamp)
                all_s.append(float(scores[i]))
                i += 1
            score = track_score([s for _, s, _ in frames_out]) if by_track is None else by_track[k].score
            if ctx.video_calibration is not None:
                score = ctx.video_calibration(score)
            attention = None if by_track is None else [round(float(a), 3) for a in by_track[k].attention]
            face_tracks.append(FaceTrack(track_id=track.track_id, score=score, frames=frames_out, attention=attention))
        result.faces = face_tracks
        duration = info.duration or (max(all_t) if all_t else 0.0)
        result.segments = [Segment(start=a, end=b, score=s) for a, b, s in timeline(all_t, all_s, duration)]
    return media_score([t.score for t in face_tracks]), None, _most_suspicious_frames(frames, tracks, face_tracks)


def _most_suspicious_frames(frames: list[Frame], tracks: list[Track], scored: list[FaceTrack]) -> dict[int, np.ndarray]:
    """Each track's frame of its highest-scoring detection (the first of equals), by track id."""
    pictures: dict[int, np.ndarray] = {}
    for track, face in zip(tracks, scored, strict=True):
        if face.frames:
            best = max(range(len(face.frames)), key=lambda k: face.frames[k][1])
            pictures[face.track_id] = frames[track.detections[best].frame_index].image
    return pictures


def _video_audio(ctx: PipelineContext, info: MediaInfo, timer: StageTimer) -> AudioEvidence | None:
    """The sound's evidence; None when the detector has no audio model (the modality is not listed)."""
    if ctx.audio_model is None:
        return None
    if not info.has_audio:
        return AudioEvidence(skipped="no audio track")
    return analyse_audio(ctx.audio_model, info, timer, min_seconds=MIN_AUDIO_SECONDS)


def run_audio(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Analysis:
    """Score the recording's windows with the audio model; segments are the scored windows."""
    if ctx.audio_model is None:
        raise UnsupportedMediaError(f"{info.path.name}: audio files need an audio model (none is loaded)")
    audio = analyse_audio(ctx.audio_model, info, timer, min_seconds=MIN_RECORDING_SECONDS)
    result.duration = audio.duration or info.duration
    result.modalities = [
        ModalityScore(
            modality="audio", score=_round(audio.score), weight=1.0 if audio.score is not None else 0.0, skipped=audio.skipped
        )
    ]
    if audio.score is None:
        result.status, result.reason = "not_applicable", audio.skipped
        return Analysis(result)
    result.segments = audio.segments()
    return Analysis(_finish(result, audio.score, [(ctx.audio_model_name, audio.score, 1.0)]))


def _round(score: float | None) -> float | None:
    return None if score is None else round(score, 6)


def _finish(result: Result, score: float, detectors: list[tuple[str, float, float]]) -> Result:
    """Write the fused P(fake) and the (name, P(fake), weight) of every detector that looked at the file."""
    result.score = round(score, 6)
    result.probabilities = {"real": round(1 - score, 6), "fake": round(score, 6)}
    result.label = "FAKE" if score >= 0.5 else "REAL"
    result.detectors = [DetectorScore(name=n, score=round(s, 6), weight=round(w, 6)) for n, s, w in detectors]
    return result


def _run_image_in_budget(ctx: PipelineContext, info: MediaInfo, result: Result, timer: StageTimer) -> Analysis:
    """`run_image` while the decoded picture's pixels are held from the process's budget (media.budget)."""
    with DECODE_BUDGET.hold((info.width or 0) * (info.height or 0)):
        return run_image(ctx, info, result, timer)


PIPELINES: dict[str, Callable[[PipelineContext, MediaInfo, Result, StageTimer], Analysis]] = {
    "image": _run_image_in_budget,
    "video": run_video,
    "audio": run_audio,
}
