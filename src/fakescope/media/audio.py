"""Audio input: any audio file (or a video's sound track) as 16 kHz mono float32, ready for a detector.

Decoding goes through libsndfile for WAV/FLAC/Ogg (fast, exact) and FFmpeg for everything
else; the content decides which, never the extension. `prepare_speech` is the one
preprocessing shared by training and inference (trim silence, then normalise loudness), and
`speech_windows` cuts the result into overlapping fixed-length windows whose times are
file times, so a score can be shown against the recording. `encode_audio` writes the same
formats back, for tests and for codec augmentation of training data.

Hostile samples are defused here, once, for every caller: NaN, ±Inf and absurdly large values
(a float file can hold them) are read as zero right after decoding, and the level that silence and loudness are
measured from ignores transients (`loudness_reference`), so neither one bad sample nor one
click can make real speech count as silence.

Memory: a small file can hold hours of sound, so the only full-length array is the decoded
recording at the model's rate, bounded by `MediaLimits.max_audio_seconds`. Decoding streams
(media.audio_decoding), levels are measured block by block, and `plan_speech` keeps the
preparation lazy (a view of the trimmed samples and the gain to apply) so that the model's
windows are normalised batch by batch (`speech_window_batches`), to the very values
`prepare_speech` gives.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf

from fakescope.constants import SAMPLE_RATE
from fakescope.errors import NoAudioError
from fakescope.media.audio_decoding import decode, read_source, resample
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.probe import MediaInfo, probe

FRAME_SECONDS = 0.02
SILENCE_FLOOR_DBFS = -60.0
# A frame this far above the level of the loudest 5% of the sound (counted as 0.1 to 0.5 s) is a
# transient (a click, a pop, a corrupt sample), not the loudness of the speech; see loudness_reference.
TRANSIENT_DB = 30.0
_LOUDEST_SHARE = 0.05
_LOUDEST_SECONDS = (0.1, 0.5)
_ACTIVE_RANGE_DB = 40.0
# 20 ms frames measured or normalised at once: bounds the float64 temporaries of a long recording.
_BLOCK_FRAMES = 4096
_SAMPLE_BYTES = np.dtype(np.float32).itemsize
# fmt -> (PyAV container format, codec, default bit rate); "wav" and "flac" go through soundfile.
_LOSSY = {"mp3": ("mp3", "libmp3lame", 128_000), "opus": ("ogg", "libopus", 64_000), "aac": ("ipod", "aac", 128_000)}
_ALIASES = {"ogg": "opus", "m4a": "aac"}


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples; `start` is the file time of samples[0], kept through trimming.

    `invalid_samples`: how many decoded samples were NaN, ±Inf or absurdly large and now read as
    zero, so a caller can say so when that leaves nothing to score.
    """

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    start: float = 0.0
    invalid_samples: int = 0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str, *, bitrate: int | None = None) -> bytes:
    """A complete file in memory: "wav" (PCM16), "flac", "mp3", "opus"/"ogg" (Ogg Opus) or "aac"/"m4a" (MP4).

    Rates a lossy codec cannot take (Opus: 8/12/16/24/48 kHz only) are resampled to the
    nearest higher rate it supports. `bitrate` (bits/s) applies to the lossy codecs.
    """
    fmt = _ALIASES.get(fmt.lower(), fmt.lower())
    data = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if data.ndim != 1 or len(data) == 0:
        raise ValueError(f"encode_audio takes non-empty mono samples (1-D), got shape {data.shape}")
    buffer = io.BytesIO()
    if fmt in ("wav", "flac"):
        sf.write(buffer, data, sample_rate, format=fmt.upper(), subtype="PCM_16")
        return buffer.getvalue()
    if fmt not in _LOSSY:
        raise ValueError(f"unknown audio format {fmt!r}; use wav, flac, mp3, opus, ogg, aac or m4a")
    container_format, codec, default_bitrate = _LOSSY[fmt]
    rates = av.Codec(codec, "w").audio_rates or [sample_rate]
    rate = sample_rate if sample_rate in rates else min((r for r in rates if r > sample_rate), default=max(rates))
    data = resample(data, sample_rate, rate)
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bitrate or default_bitrate
        frame = av.AudioFrame.from_ndarray(data[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def decode_audio(
    source: str | Path | bytes | BinaryIO, *, sample_rate: int | None = SAMPLE_RATE, name: str | None = None
) -> tuple[np.ndarray, int]:
    """The first audio stream as (mono float32 samples, their rate); `sample_rate=None` keeps the file's rate.

    `name` heads error messages (default: the path, or "audio" for bytes and streams).
    Raises NoAudioError for a file without audio, CorruptMediaError when nothing decodes.
    NaN, ±Inf and absurdly large samples read as zero (a warning counts them).
    """
    samples, rate, _ = read_source(source, name, sample_rate, max_seconds=None)
    return samples, sample_rate or rate


def load_audio(
    path: str | Path, *, sample_rate: int = SAMPLE_RATE, limits: MediaLimits = DEFAULT_LIMITS, info: MediaInfo | None = None
) -> Audio:
    """The checked entry for files: an audio file or a video's sound track, within `limits`.

    `probe` refuses missing, empty, oversized, unknown and over-long files first (pass `info`
    when the file was probed already, as the Detector does, so it is not checked and sniffed
    twice); its kind and format pick the decoder. Sound longer than `max_audio_seconds` (or
    `max_video_seconds`) is refused with MediaTooLargeError: on the stream's stated length
    before decoding, and while decoding once the samples pass it.
    """
    info = info or probe(path, limits)
    if not info.has_audio:
        raise NoAudioError(f"{path}: no audio track" + (" (image file)" if info.kind == "image" else ""))
    samples, rate, invalid = decode(path, str(path), info.kind, info.format, sample_rate, max_audio_seconds(limits))
    return Audio(samples, sample_rate, rate, invalid_samples=invalid)


def max_audio_seconds(limits: MediaLimits = DEFAULT_LIMITS) -> float:
    """The most sound `load_audio` decodes: every time-based file is bounded by max_video_seconds too."""
    return min(limits.max_audio_seconds, limits.max_video_seconds)


def decoded_audio_bytes(seconds: float | None, sample_rate: int = SAMPLE_RATE, limits: MediaLimits = DEFAULT_LIMITS) -> int:
    """What `load_audio` holds for `seconds` of sound (unknown: the most it may decode), for a memory budget."""
    bound = max_audio_seconds(limits)
    return round(min(bound, bound if seconds is None else seconds) * sample_rate) * _SAMPLE_BYTES


def frame_dbfs(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS level (dB re full scale) of each 20 ms frame; a short last frame counts its own samples.

    Measured a block of whole frames at a time, so the float64 squares never cover a long
    recording at once; each frame's sum is the same either way.
    """
    size = max(1, round(FRAME_SECONDS * sample_rate))
    block = size * _BLOCK_FRAMES
    power = []
    for i in range(0, len(samples), block):
        chunk = samples[i : i + block]
        starts = np.arange(0, len(chunk), size)
        power.append(np.add.reduceat(np.square(chunk, dtype=np.float64), starts) / np.diff(np.append(starts, len(chunk))))
    if not power:
        return np.zeros(0)
    return 10.0 * np.log10(np.maximum(np.concatenate(power), 1e-20))


def loudness_reference(levels: np.ndarray, *, floor_dbfs: float = SILENCE_FLOOR_DBFS) -> tuple[float, np.ndarray]:
    """The level silence and loudness are measured from, and which frames are transients.

    The robust level is that of the loudest 5% of the frames above `floor_dbfs` (the 95th
    percentile), counted as no less than 0.1 s, so that a click cannot be a share of a short or
    quiet recording's few loud frames, and no more than 0.5 s, so that speech filling a small
    part of a long noisy recording still sets it. Frames more than TRANSIENT_DB above it are
    transients: a click, a pop or a corrupt sample, which must not set the level the speech is
    judged against (one full-scale click would otherwise make the speech count as silence).
    The reference is the loudest frame that is not a transient, which without transients is
    the loudest frame. Returns (-inf, no transients) when there are no frames.
    """
    transient = np.zeros(len(levels), dtype=bool)
    sound = np.sort(levels[levels > floor_dbfs])
    if len(sound):
        low, high = (round(s / FRAME_SECONDS) for s in _LOUDEST_SECONDS)
        rank = min(len(sound), max(low, min(high, round(_LOUDEST_SHARE * len(sound)))))
        transient = levels > sound[-rank] + TRANSIENT_DB
    return float(levels[~transient].max(initial=-np.inf)), transient


def is_silent(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE, floor_dbfs: float = -55.0) -> bool:
    """True when no 20 ms frame rises above `floor_dbfs` (an empty clip is silent too)."""
    return not bool(np.any(frame_dbfs(samples, sample_rate) > floor_dbfs))


def trim_silence(audio: Audio, *, top_db: float = 40.0, floor_dbfs: float = SILENCE_FLOOR_DBFS, margin: float = 0.05) -> Audio:
    """Drop quiet leading/trailing frames, keeping `margin` seconds around the sound; `start` follows.

    A frame is quiet below max(reference - top_db, floor_dbfs), the reference being the loudest
    frame that is not a transient (`loudness_reference`); transients count as quiet. All quiet
    gives empty samples, so a caller can report "silence only" instead of scoring noise.
    """
    levels = frame_dbfs(audio.samples, audio.sample_rate)
    reference, transient = loudness_reference(levels, floor_dbfs=floor_dbfs)
    loud = np.flatnonzero((levels > max(reference - top_db, floor_dbfs)) & ~transient)
    if len(loud) == 0:
        return replace(audio, samples=audio.samples[:0])
    size, pad = max(1, round(FRAME_SECONDS * audio.sample_rate)), round(margin * audio.sample_rate)
    begin = max(0, loud[0] * size - pad)
    end = min(len(audio.samples), (loud[-1] + 1) * size + pad)
    return replace(audio, samples=audio.samples[begin:end], start=audio.start + begin / audio.sample_rate)


@dataclass(frozen=True)
class Loudness:
    """The gain `normalize_loudness` applies and the 20 ms frames it mutes, measured on whole samples
    so that any stretch of them can be normalised alone, to the very values of normalising all."""

    gain: np.float64
    muted: np.ndarray | None
    sample_rate: int

    def apply(self, samples: np.ndarray, offset: int = 0) -> np.ndarray:
        """The stretch `samples`, starting `offset` samples into those measured, normalised (float32)."""
        if self.muted is not None:
            samples = np.where(_frame_mask(self.muted, offset, len(samples), self.sample_rate), 0.0, samples).astype(np.float32)
        # float32 x float64 gain in float64, rounded once to float32, as numpy promotes the whole-array product
        return np.multiply(samples, self.gain, dtype=np.float64).astype(np.float32)

    def apply_all(self, samples: np.ndarray) -> np.ndarray:
        """All of `samples` normalised, a block at a time (no full-length float64 temporary)."""
        out = np.empty(len(samples), np.float32)
        block = _frame_size(self.sample_rate) * _BLOCK_FRAMES
        for i in range(0, len(samples), block):
            out[i : i + block] = self.apply(samples[i : i + block], i)
        return out


def measure_loudness(
    samples: np.ndarray, *, target_dbfs: float = -23.0, peak: float = 0.99, sample_rate: int = SAMPLE_RATE
) -> Loudness | None:
    """What `normalize_loudness` does to `samples`, without doing it; None for silent input."""
    levels = frame_dbfs(samples, sample_rate)
    if not np.any(levels > SILENCE_FLOOR_DBFS):
        return None
    reference, transient = loudness_reference(levels)
    active = (levels >= reference - _ACTIVE_RANGE_DB) & ~transient
    power = np.mean(np.power(10.0, levels[active] / 10.0))
    gain = 10.0 ** ((target_dbfs - 10.0 * np.log10(power)) / 20.0)
    muted = transient if transient.any() else None
    block = _frame_size(sample_rate) * _BLOCK_FRAMES
    top = 0.0
    for i in range(0, len(samples), block):
        chunk = samples[i : i + block]
        if muted is not None:
            chunk = np.where(_frame_mask(muted, i, len(chunk), sample_rate), 0.0, chunk).astype(np.float32)
        top = max(top, float(np.max(np.abs(chunk))))
    top *= gain
    if top > peak:
        gain *= peak / top
    return Loudness(gain, muted, sample_rate)


def normalize_loudness(
    samples: np.ndarray, *, target_dbfs: float = -23.0, peak: float = 0.99, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Scale so the RMS of the active frames (within 40 dB of the loudest) is `target_dbfs`, peaks at most `peak`.

    Pauses do not count, so speech with long gaps is not over-amplified. Too loud after
    scaling means a lower gain, never clipping. Silent input (nothing above -60 dBFS) is returned as is.
    Transient frames (`loudness_reference`) neither set the gain nor the peak, and are muted:
    they are not speech, and a click left at full scale would be what the model hears.
    """
    loudness = measure_loudness(samples, target_dbfs=target_dbfs, peak=peak, sample_rate=sample_rate)
    return samples if loudness is None else loudness.apply_all(samples)


def _frame_size(sample_rate: int) -> int:
    return max(1, round(FRAME_SECONDS * sample_rate))


def _frame_mask(frames: np.ndarray, start: int, length: int, sample_rate: int) -> np.ndarray:
    """Per-sample mask, for samples start..start+length, of the 20 ms frames flagged in `frames` (frame_dbfs's framing)."""
    size = _frame_size(sample_rate)
    first = start // size
    last = -(-(start + length) // size)
    return np.repeat(frames[first:last], size)[start - first * size : start - first * size + length]


@dataclass(frozen=True)
class PreparedSpeech:
    """`prepare_speech`'s result before its samples are made: the trimmed audio (a view of the decoded
    samples) and the loudness normalisation to apply, so that the model's windows of a long
    recording are made a batch at a time instead of from a second full-length copy."""

    trimmed: Audio
    loudness: Loudness | None

    @property
    def duration(self) -> float:
        return self.trimmed.duration

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Prepared samples start..stop (indices into the trimmed audio)."""
        stretch = self.trimmed.samples[start:stop]
        return stretch if self.loudness is None else self.loudness.apply(stretch, start)

    def audio(self) -> Audio:
        """All of it, as `prepare_speech` returns it."""
        if self.loudness is None:
            return self.trimmed
        return replace(self.trimmed, samples=self.loudness.apply_all(self.trimmed.samples))


def plan_speech(audio: Audio) -> PreparedSpeech:
    """Trim silence, and measure the loudness normalisation without applying it (see PreparedSpeech)."""
    trimmed = trim_silence(audio)
    if len(trimmed.samples) == 0:
        return PreparedSpeech(trimmed, None)
    return PreparedSpeech(trimmed, measure_loudness(trimmed.samples, sample_rate=trimmed.sample_rate))


def prepare_speech(audio: Audio) -> Audio:
    """Trim silence, then normalise loudness: the preprocessing training and inference share."""
    return plan_speech(audio).audio()


def window_starts(total: int, sample_rate: int, *, window: float, hop: float) -> tuple[int, list[int]]:
    """(window length, start of each window) in samples, for `speech_windows`'s cut of `total` samples."""
    if total == 0:
        raise ValueError("speech_windows: audio is empty")
    size, step = min(total, round(window * sample_rate)), max(1, round(hop * sample_rate))
    starts = list(range(0, total - size + 1, step))
    if starts[-1] != total - size:
        starts.append(total - size)
    return size, starts


def speech_windows(audio: Audio, *, window: float = 4.0, hop: float = 2.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Fixed windows (n, window_samples) and their (start, end) in file seconds, never padded.

    A clip no longer than `window` is one window of its own length. Longer ones start every
    `hop` seconds and the last window ends at the clip's end, so the whole recording is covered.
    """
    return next(speech_window_batches(PreparedSpeech(audio, None), window=window, hop=hop))


def speech_window_batches(
    speech: PreparedSpeech, *, window: float = 4.0, hop: float = 2.0, batch_size: int | None = None
) -> Iterator[tuple[np.ndarray, list[tuple[float, float]]]]:
    """`speech_windows` of the prepared speech, `batch_size` windows at a time (None: all at once),
    each made from the trimmed samples when its batch is taken: only a batch is ever held."""
    audio, rate = speech.trimmed, speech.trimmed.sample_rate
    size, starts = window_starts(len(audio.samples), rate, window=window, hop=hop)
    step = batch_size or len(starts)
    for i in range(0, len(starts), step):
        batch = starts[i : i + step]
        windows = np.stack([speech.samples(s, s + size) for s in batch]).astype(np.float32, copy=False)
        yield windows, [(audio.start + s / rate, audio.start + (s + size) / rate) for s in batch]
