"""How `load_audio` and `decode_audio` decode: the first audio stream, chunk by chunk, into one mono array.

A few megabytes of compressed silence are hours of sound. Decoding all of it at the file's own
rate and channel count, then averaging the channels, then resampling, held several full-length
copies at once (gigabytes for a small upload). Here each chunk (a libsndfile block or an FFmpeg
frame) is sanitised (`finite`), averaged to mono and fed to a streaming resampler at once, so the
only full-length array is the output (`_MonoSink`). soxr keeps its filter state between chunks,
so the streamed output is the very same samples as resampling the whole signal in one call.

The output is bounded too: `max_seconds` is checked on the stream's stated length before
decoding, and on the samples as they arrive, so a stream that states no length, or understates
it, is stopped at the limit instead of filling memory.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from fakescope.constants import MediaKind
from fakescope.errors import CorruptMediaError, EmptyFileError, MediaTooLargeError, NoAudioError, UnsupportedMediaError
from fakescope.media.container import stream_duration
from fakescope.media.messages import error_reason, fmt_seconds
from fakescope.media.probe import check_file
from fakescope.media.sniff import HEAD_BYTES, sniff_kind

log = logging.getLogger(__name__)

RESAMPLE_QUALITY = "HQ"
# Float samples beyond this (120 dB over full scale) are no recording's values, and sums of them
# overflow float32 to Inf: they are read as zero like NaN and Inf.
_MAX_SAMPLE = 1e6
_MAX_BAD_PACKETS = 100
# Source frames per libsndfile read: small next to any recording worth holding, large enough that
# the per-call cost does not show.
_BLOCK_FRAMES = 1 << 16
# Output samples reserved before the length is known; the array grows from there.
_INITIAL_SAMPLES = 1 << 20
# The most reserved up front when no limit bounds the length (decode_audio); beyond it the array grows.
_MAX_RESERVE_SECONDS = 3 * 3600.0
SOUNDFILE_FORMATS = {"wav", "flac", "ogg", "aiff"}
_INT_SCALE = {"u8": 128.0, "s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}

Decoded = tuple[np.ndarray, int, int]
"""(mono float32 samples at the rate asked for, the file's own rate, invalid samples read as zero)."""


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality (soxr HQ) resampling to float32; the same array when the rates match."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or len(samples) == 0:
        return samples
    return soxr.resample(samples, source_rate, target_rate, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)


def read_source(
    source: str | Path | bytes | BinaryIO, name: str | None, sample_rate: int | None, max_seconds: float | None
) -> Decoded:
    """Decode a path, bytes or a binary stream, whichever decoder its content calls for."""
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
    return decode(src, name, kind, fmt, sample_rate, max_seconds)


def decode(
    src: str | Path | BinaryIO, name: str, kind: MediaKind, fmt: str, sample_rate: int | None, max_seconds: float | None
) -> Decoded:
    """libsndfile for the formats it reads, else (or if it fails) FFmpeg; `sample_rate=None` keeps the file's rate."""
    decoded = None
    if fmt in SOUNDFILE_FORMATS:
        decoded = _read_soundfile(src, name, sample_rate, max_seconds)
        if decoded is None and isinstance(src, io.BytesIO):
            src.seek(0)
    samples, rate, invalid = decoded or _read_av(src, name, kind, sample_rate, max_seconds)
    if invalid:
        log.warning("%s: %d invalid (NaN/Inf) audio samples read as zero", name, invalid)
    return samples, rate, invalid


def finite(samples: np.ndarray) -> tuple[np.ndarray, int]:
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


def check_length(name: str, seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise MediaTooLargeError(f"{name}: audio is too long (over {fmt_seconds(max_seconds)}, the limit)")


class _MonoSink:
    """Mono chunks at the source rate in, one array at the target rate out, never past `max_seconds`.

    The output lives in one array, reserved up front for the length the header states (at most
    the limit) and grown by realloc beyond it, which for a large array remaps its pages: holding
    it never needs a second full-length copy.
    """

    def __init__(
        self, name: str, source_rate: int, target_rate: int | None, max_seconds: float | None, expected_frames: int | None
    ) -> None:
        self.name, self.source_rate, self.max_seconds = name, source_rate, max_seconds
        self.rate = target_rate or source_rate
        self.frames = 0
        self._stream = None
        if self.rate != source_rate:
            self._stream = soxr.ResampleStream(source_rate, self.rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        if expected_frames is not None:  # a header may state anything: reserve no more than the limit allows
            expected_frames = min(expected_frames, round((max_seconds or _MAX_RESERVE_SECONDS) * source_rate))
        # Reserved memory is not touched until written: a generous reserve costs nothing.
        reserve = _INITIAL_SAMPLES if expected_frames is None else round(expected_frames * self.rate / source_rate * 1.02) + 4096
        self._out = np.empty(reserve, np.float32)
        self._used = 0

    def add(self, mono: np.ndarray) -> None:
        """Take the next chunk (float32, at the source rate); MediaTooLargeError past the limit."""
        self.frames += len(mono)
        check_length(self.name, self.frames / self.source_rate, self.max_seconds)
        self._append(mono if self._stream is None else self._stream.resample_chunk(mono))

    def finish(self) -> np.ndarray:
        """All the output: the resampler's tail flushed, the reserve beyond it given back."""
        if self._stream is not None:
            self._append(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
            self._stream = None
        self._out.resize(self._used, refcheck=False)
        return self._out

    def _append(self, chunk: np.ndarray) -> None:
        end = self._used + len(chunk)
        if end > len(self._out):
            self._out.resize(max(end, len(self._out) * 9 // 8), refcheck=False)
        self._out[self._used : end] = chunk
        self._used = end


def _read_soundfile(src: str | Path | BinaryIO, name: str, sample_rate: int | None, max_seconds: float | None) -> Decoded | None:
    """libsndfile's decode in blocks, or None when it cannot read this file (FFmpeg gets a try then)."""
    invalid = 0
    try:
        with sf.SoundFile(src if not isinstance(src, Path) else str(src)) as f:
            rate = f.samplerate
            check_length(name, f.frames / rate if rate > 0 else 0.0, max_seconds)
            sink = _MonoSink(name, rate, sample_rate, max_seconds, f.frames)
            while len(block := f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)):
                block, zeroed = finite(block)
                invalid += zeroed
                sink.add(block.mean(axis=1, dtype=np.float32))
    except MediaTooLargeError:
        raise
    except Exception as err:  # noqa: BLE001 - libsndfile refuses many valid files (odd codecs, Opus on old builds)
        log.debug("%s: soundfile could not read it (%s), trying FFmpeg", name, error_reason(err))
        return None
    if sink.frames == 0:
        raise CorruptMediaError(f"{name}: corrupt or truncated audio (no decodable samples)")
    return sink.finish(), rate, invalid


def _read_av(src: str | Path | BinaryIO, name: str, kind: str, sample_rate: int | None, max_seconds: float | None) -> Decoded:
    """FFmpeg's decode of the first audio stream, frame by frame; damaged packets are skipped, as in video.

    A rate change mid-stream is resampled to the first rate, frame by frame, before the stream's
    own resampling to `sample_rate`.
    """
    try:
        container = av.open(str(src) if isinstance(src, (str, Path)) else src, metadata_errors="ignore")
    except Exception as err:  # PyAV raises FFmpegError subclasses, but also UnicodeError or ValueError
        raise CorruptMediaError(f"{name}: corrupt or truncated {kind} ({error_reason(err)})") from err
    sink: _MonoSink | None = None
    bad, invalid = 0, 0
    with container:
        if not container.streams.audio:
            if kind == "audio":
                raise CorruptMediaError(f"{name}: corrupt or truncated audio (no audio stream)")
            raise NoAudioError(f"{name}: no audio track")
        stream = container.streams.audio[0]
        stated = stream_duration(container, stream)
        check_length(name, stated or 0.0, max_seconds)
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except (av.FFmpegError, ValueError) as err:
                    bad += 1
                    log.debug("%s: skipped a damaged audio packet (%s)", name, error_reason(err))
                    if bad > _MAX_BAD_PACKETS:
                        break
                    continue
                for frame in frames:
                    if sink is None:
                        if frame.sample_rate <= 0:
                            raise CorruptMediaError(f"{name}: corrupt or truncated audio (no sample rate)")
                        expected = None if stated is None else round(stated * frame.sample_rate)
                        sink = _MonoSink(name, frame.sample_rate, sample_rate, max_seconds, expected)
                    mono, zeroed = _mono(frame)
                    invalid += zeroed
                    sink.add(resample(mono, frame.sample_rate, sink.source_rate))
        except (av.FFmpegError, OSError, ValueError, EOFError) as err:
            log.warning("%s: audio stream is damaged, stopped decoding (%s)", name, error_reason(err))
    if bad:
        log.warning("%s: skipped %d damaged audio packets", name, bad)
    if sink is None or sink.frames == 0:
        raise CorruptMediaError(f"{name}: corrupt or truncated audio (no decodable samples)")
    return sink.finish(), sink.source_rate, invalid


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
    data, invalid = finite(data)
    return data.mean(axis=0).astype(np.float32), invalid
