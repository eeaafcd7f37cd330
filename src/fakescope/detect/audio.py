"""Speech → P(fake): decode, check there is something to score, window, score, fuse windows.

Used for audio files and for the sound of videos. A recording that cannot be scored is not an
error but a skipped modality with a reason a person understands ("no audio track", "audio
shorter than 1.5 s", "silence only"); a video then falls back to its faces alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fakescope.detect.fusion import track_score
from fakescope.detect.result import Segment
from fakescope.detect.timing import StageTimer
from fakescope.errors import MediaTooLargeError, NoAudioError
from fakescope.media import MediaInfo
from fakescope.media.audio import Audio, decoded_audio_bytes, load_audio, plan_speech, speech_window_batches
from fakescope.media.budget import DECODE_BUDGET
from fakescope.models.base import ClassifierModel

# A video's sound counts from 1.5 s; an audio file, which is all the evidence there is, from 1 s.
MIN_AUDIO_SECONDS = 1.5
MIN_RECORDING_SECONDS = 1.0
# Below this much speech left after trimming silence, a score would rest on a syllable or two.
MIN_SPEECH_SECONDS = 0.5
# Windows scored at once: all of the prepared speech that is ever made at a time.
WINDOW_BATCH = 16


@dataclass
class AudioEvidence:
    """The score of a recording and its windows, or why it was not scored (`skipped`)."""

    duration: float = 0.0
    score: float | None = None
    windows: list[tuple[float, float, float]] = field(default_factory=list)
    skipped: str | None = None

    def segments(self) -> list[Segment]:
        """The scored windows as Result segments (file times)."""
        return [Segment(start=a, end=b, score=p, modality="audio") for a, b, p in self.windows]


@torch.inference_mode()
def score_windows(model: ClassifierModel, windows: np.ndarray, *, batch_size: int = WINDOW_BATCH) -> np.ndarray:
    """P(fake) per window (equal-length rows, as speech_windows makes them)."""
    device = next(model.parameters()).device
    probs = [
        model(torch.from_numpy(windows[i : i + batch_size]).to(device))["prob"].float().cpu().numpy()
        for i in range(0, len(windows), batch_size)
    ]
    return np.concatenate(probs).astype(np.float64)


def score_speech(model: ClassifierModel, audio: Audio, *, min_seconds: float = MIN_RECORDING_SECONDS) -> AudioEvidence:
    """Score decoded audio: windows of the model's length and hop, fused like the frames of a face
    track (mean of the most suspicious half), so a cloned stretch inside real speech still counts.

    Invalid samples (NaN/Inf, read as zero by the decoder) are named in the skip reason only when the
    recording is skipped: a few of them in scored speech change nothing worth saying.

    The prepared speech is never made whole: each batch of windows is cut from the trimmed samples
    and normalised when it is scored (media.audio.speech_window_batches), to the same values.
    """
    evidence = AudioEvidence(duration=round(audio.duration, 3))
    if audio.duration < min_seconds:
        evidence.skipped = f"audio shorter than {min_seconds:g} s ({audio.duration:.2f} s)"
        return evidence
    speech = plan_speech(audio)
    if speech.duration < MIN_SPEECH_SECONDS:
        evidence.skipped = (
            "silence only" if speech.duration == 0 else f"only {speech.duration:.2f} s of sound above the silence floor"
        )
        if audio.invalid_samples:  # said only here, where the zeroed samples may be why nothing is left
            evidence.skipped += f" ({audio.invalid_samples} invalid (NaN/Inf) samples read as zero)"
        return evidence
    cfg = model.pretrained_cfg
    spans: list[tuple[float, float]] = []
    batches = []
    for windows, batch_spans in speech_window_batches(
        speech, window=cfg.window_seconds, hop=cfg.hop_seconds, batch_size=WINDOW_BATCH
    ):
        batches.append(score_windows(model, windows, batch_size=WINDOW_BATCH))
        spans += batch_spans
    probs = np.concatenate(batches)
    evidence.windows = [(round(a, 3), round(b, 3), float(p)) for (a, b), p in zip(spans, probs, strict=True)]
    evidence.score = track_score(probs.tolist())
    return evidence


def analyse_audio(model: ClassifierModel, info: MediaInfo, timer: StageTimer, *, min_seconds: float) -> AudioEvidence:
    """Decode the first audio stream of a probed file (an audio file or a video) and score it.

    The decoded samples are held from decoding to scoring, so they count against the process's
    budget (media.budget) like a video's frames. A video's sound longer than the audio limit is
    skipped (its faces still count); an audio file that long is refused (MediaTooLargeError).
    """
    rate = model.pretrained_cfg.sample_rate
    with DECODE_BUDGET.hold_bytes(decoded_audio_bytes(info.duration, rate)):
        with timer.stage("audio decode"):
            try:
                audio = load_audio(info.path, sample_rate=rate, info=info)
            except NoAudioError:
                return AudioEvidence(skipped="no audio track")
            except MediaTooLargeError as err:
                if info.kind != "video":
                    raise
                return AudioEvidence(skipped=str(err).removeprefix(f"{info.path}: "))
        with timer.stage("audio model"):
            return score_speech(model, audio, min_seconds=min_seconds)
