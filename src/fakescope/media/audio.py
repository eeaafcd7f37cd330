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
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from fakescope.constants import MediaKind
from fakescope.errors import CorruptMediaError, EmptyFileError, MediaTooLargeError, NoAudioError, UnsupportedMediaError
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.messages import error_reason, fmt_seconds
from fakescope.media.probe import MediaInfo, check_file, probe
from fakescope.media.sniff import HEAD_BYTES, sniff_kind

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.02
SILENCE_FLOOR_DBFS = -60.0
# A frame this far above the level of the loudest 5% of the sound (counted as 0.1 to 0.5 s) is a
# transient (a click, a pop, a corrupt sample), not the loudness of the speech; see loudness_reference.
TRANSIENT_DB = 30.0
_LOUDEST_SHARE = 0.05
_LOUDEST_SECONDS = (0.1, 0.5)
_ACTIVE_RANGE_DB = 40.0
# Float samples beyond this (120 dB over full scale) are no recording's values, and sums of them
# overflow float32 to Inf: they are read as zero like NaN and Inf.
_MAX_SAMPLE = 1e6
_MAX_BAD_PACKETS = 100
_SOUNDFILE_FORMATS = {"wav", "flac", "ogg", "aiff"}
# fmt -> (PyAV container format, codec, default bit rate); "wav" and "flac" go through soundfile.
_LOSSY = {"mp3": ("mp3", "libmp3lame", 128_000), "opus": ("ogg", "libopus", 64_000), "aac": ("ipod", "aac", 128_000)}
_ALIASES = {"ogg": "opus", "m4a": "aac"}
_INT_SCALE = {"u8": 128.0, "s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}


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
    samples, rate, _ = _read(source, name, max_seconds=None)
    if sample_rate is None:
        return samples, rate
    return resample(samples, rate, sample_rate), sample_rate


def load_audio(
    path: str | Path, *, sample_rate: int = SAMPLE_RATE, limits: MediaLimits = DEFAULT_LIMITS, info: MediaInfo | None = None
) -> Audio:
    """The checked entry for files: an audio file or a video's sound track, within `limits`.

    `probe` refuses missing, empty, oversized, unknown and over-long files first (pass `info`
    when the file was probed already, as the Detector does, so it is not checked and sniffed
    twice); its kind and format pick the decoder. A stream that states no duration is stopped
    while decoding once it passes `max_video_seconds`.
    """
    info = info or probe(path, limits)
    if not info.has_audio:
        raise NoAudioError(f"{path}: no audio track" + (" (image file)" if info.kind == "image" else ""))
    samples, rate, invalid = _decode(path, str(path), info.kind, info.format, max_seconds=limits.max_video_seconds)
    return Audio(resample(samples, rate, sample_rate), sample_rate, rate, invalid_samples=invalid)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality (soxr HQ) resampling to float32; the same array when the rates match."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or len(samples) == 0:
        return samples
    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def frame_dbfs(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS level (dB re full scale) of each 20 ms frame; a short last frame counts its own samples."""
    size = max(1, round(FRAME_SECONDS * sample_rate))
    starts = np.arange(0, len(samples), size)
    if len(starts) == 0:
        return np.zeros(0)
    power = np.add.reduceat(np.square(samples, dtype=np.float64), starts) / np.diff(np.append(starts, len(samples)))
    return 10.0 * np.log10(np.maximum(power, 1e-20))


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


def normalize_loudness(
    samples: np.ndarray, *, target_dbfs: float = -23.0, peak: float = 0.99, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Scale so the RMS of the active frames (within 40 dB of the loudest) is `target_dbfs`, peaks at most `peak`.

    Pauses do not count, so speech with long gaps is not over-amplified. Too loud after
    scaling means a lower gain, never clipping. Silent input (nothing above -60 dBFS) is returned as is.
    Transient frames (`loudness_reference`) neither set the gain nor the peak, and are muted:
    they are not speech, and a click left at full scale would be what the model hears.
    """
    levels = frame_dbfs(samples, sample_rate)
    if not np.any(levels > SILENCE_FLOOR_DBFS):
        return samples
    reference, transient = loudness_reference(levels)
    active = (levels >= reference - _ACTIVE_RANGE_DB) & ~transient
    power = np.mean(np.power(10.0, levels[active] / 10.0))
    gain = 10.0 ** ((target_dbfs - 10.0 * np.log10(power)) / 20.0)
    if transient.any():
        samples = np.where(_frame_mask(transient, len(samples), sample_rate), 0.0, samples).astype(np.float32)
    top = float(np.max(np.abs(samples))) * gain
    if top > peak:
        gain *= peak / top
    return (samples * gain).astype(np.float32)


def _frame_mask(frames: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Per-sample mask of the 20 ms frames flagged in `frames` (frame_dbfs's framing)."""
    size = max(1, round(FRAME_SECONDS * sample_rate))
    return np.repeat(frames, size)[:length]


def prepare_speech(audio: Audio) -> Audio:
    """Trim silence, then normalise loudness: the preprocessing training and inference share."""
    trimmed = trim_silence(audio)
    if len(trimmed.samples) == 0:
        return trimmed
    return replace(trimmed, samples=normalize_loudness(trimmed.samples, sample_rate=trimmed.sample_rate))


def speech_windows(audio: Audio, *, window: float = 4.0, hop: float = 2.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Fixed windows (n, window_samples) and their (start, end) in file seconds, never padded.

    A clip no longer than `window` is one window of its own length. Longer ones start every
    `hop` seconds and the last window ends at the clip's end, so the whole recording is covered.
    """
    total, rate = len(audio.samples), audio.sample_rate
    if total == 0:
        raise ValueError("speech_windows: audio is empty")
    size, step = min(total, round(window * rate)), max(1, round(hop * rate))
    starts = list(range(0, total - size + 1, step))
    if starts[-1] != total - size:
        starts.append(total - size)
    windows = np.stack([audio.samples[s : s + size] for s in starts]).astype(np.float32, copy=False)
    return windows, [(audio.start + s / rate, audio.start + (s + size) / rate) for s in starts]


def _read(source: str | Path | bytes | BinaryIO, name: str | None, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    """(mono samples at the file's own rate, rate, invalid samples zeroed), from whichever decoder the content calls for."""
    if isinstance(source, (str, Path)):
        name = name or str(source)
        head, src = check_file(source).head, source
    else:
        name = name or "audio"
        src = io.BytesIO(source if isinstance(source, (bytes, bytearray, memoryview)) else source.read())
        head = src.getvalue()[:HEAD_BYTES]
        if not head:
            raise EmptyFileError(f"{name}: file is empty")
    sniffed = sniff_kind(head)
    if sniffed is None:
        raise UnsupportedMediaError(f"{name}: unsupported file type (not an image, video or audio file)")
    kind, fmt = sniffed
    if kind == "image":
        raise NoAudioError(f"{name}: no audio track (image file)")
    return _decode(src, name, kind, fmt, max_seconds)


def _decode(
    src: str | Path | BinaryIO, name: str, kind: MediaKind, fmt: str, max_seconds: float | None
) -> tuple[np.ndarray, int, int]:
    """(mono samples at the file's own rate, rate, invalid samples zeroed): libsndfile for the
    formats it reads, else (or if it fails) FFmpeg."""
    decoded = None
    if fmt in _SOUNDFILE_FORMATS:
        decoded = _read_soundfile(src, name, max_seconds)
        if decoded is None and isinstance(src, io.BytesIO):
            src.seek(0)
    samples, rate, invalid = decoded or _read_av(src, name, kind, max_seconds)
    if invalid:
        log.warning("%s: %d invalid (NaN/Inf) audio samples read as zero", name, invalid)
    return samples, rate, invalid


def _finite(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """The samples with NaN, ±Inf and values beyond ±_MAX_SAMPLE set to zero, and how many there were.

    Zero, not full scale, for ±Inf too: a non-finite value carries no amplitude, and a full-scale
    sample would add a click that was never recorded. Done before the channel average (NaN + x is
    NaN, Inf - Inf too) and any resampling, which would smear one NaN over the filter's length.
    """
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(samples) <= _MAX_SAMPLE)  # NaN compares false
    count = int(np.count_nonzero(bad))
    if count:
        samples = np.where(bad, 0.0, samples).astype(samples.dtype)
    return samples, count


def _read_soundfile(src: str | Path | BinaryIO, name: str, max_seconds: float | None) -> tuple[np.ndarray, int, int] | None:
    """libsndfile's decode, or None when it cannot read this file (FFmpeg gets a try then)."""
    try:
        with sf.SoundFile(src if not isinstance(src, Path) else str(src)) as f:
            rate, frames = f.samplerate, f.frames
            _check_length(name, frames, rate, max_seconds)
            data = f.read(dtype="float32", always_2d=True)
    except MediaTooLargeError:
        raise
    except Exception as err:  # noqa: BLE001 - libsndfile refuses many valid files (odd codecs, Opus on old builds)
        log.debug("%s: soundfile could not read it (%s), trying FFmpeg", name, error_reason(err))
        return None
    if len(data) == 0:
        raise CorruptMediaError(f"{name}: corrupt or truncated audio (no decodable samples)")
    data, invalid = _finite(data)
    return data.mean(axis=1, dtype=np.float32), rate, invalid


def _read_av(src: str | Path | BinaryIO, name: str, kind: str, max_seconds: float | None) -> tuple[np.ndarray, int, int]:
    """FFmpeg's decode of the first audio stream; damaged packets are skipped, as in video."""
    try:
        container = av.open(str(src) if isinstance(src, (str, Path)) else src, metadata_errors="ignore")
    except Exception as err:  # PyAV raises FFmpegError subclasses, but also UnicodeError or ValueError
        raise CorruptMediaError(f"{name}: corrupt or truncated {kind} ({error_reason(err)})") from err
    chunks: list[np.ndarray] = []
    rate, total, bad, invalid = 0, 0, 0, 0
    with container:
        if not container.streams.audio:
            if kind == "audio":
                raise CorruptMediaError(f"{name}: corrupt or truncated audio (no audio stream)")
            raise NoAudioError(f"{name}: no audio track")
        try:
            for packet in container.demux(container.streams.audio[0]):
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError) as err:
                    bad += 1
                    log.debug("%s: skipped a damaged audio packet (%s)", name, error_reason(err))
                    if bad > _MAX_BAD_PACKETS:
                        break
                    continue
                for frame in frames:  # a rate change mid-stream is resampled to the first rate
                    rate = rate or frame.sample_rate
                    mono, zeroed = _mono(frame)
                    invalid += zeroed
                    chunks.append(resample(mono, frame.sample_rate, rate))
                    total += len(chunks[-1])
                    _check_length(name, total, rate, max_seconds)
        except (av.FFmpegError, OSError, ValueError, EOFError) as err:
            log.warning("%s: audio stream is damaged, stopped decoding (%s)", name, error_reason(err))
    if bad:
        log.warning("%s: skipped %d damaged audio packets", name, bad)
    if total == 0:
        raise CorruptMediaError(f"{name}: corrupt or truncated audio (no decodable samples)")
    return np.concatenate(chunks), rate, invalid


def _mono(frame: av.AudioFrame) -> tuple[np.ndarray, int]:
    """(channel average as float32, invalid samples zeroed), from any planar/packed, integer/float
    sample format; integer formats come out in [-1, 1]."""
    data = frame.to_ndarray()
    channels = max(1, frame.layout.nb_channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    base = frame.format.name.rstrip("p")
    data = data.astype(np.float64 if base in ("s32", "s64", "dbl") else np.float32)
    if base == "u8":
        data -= 128.0
    if base in _INT_SCALE:
        data /= _INT_SCALE[base]
    data, invalid = _finite(data)
    return data.mean(axis=0).astype(np.float32), invalid


def _check_length(name: str, frames: int, rate: int, max_seconds: float | None) -> None:
    if max_seconds is not None and rate > 0 and frames / rate > max_seconds:
        raise MediaTooLargeError(f"{name}: audio is too long (over {fmt_seconds(max_seconds)}, the limit)")
