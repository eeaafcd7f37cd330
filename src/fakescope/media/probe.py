"""Identify a media file and read its basic facts without decoding all of it.

The content decides the kind (magic bytes), never the extension, so a renamed file is
still handled and a text file called `.mp4` is refused with a clear message. Every
failure becomes one of the `fakescope.errors` media errors, naming the file.
"""

from __future__ import annotations

import logging
import re
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream
from PIL import Image

from fakescope.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    MediaTooLargeError,
    MissingFileError,
    UnsupportedMediaError,
)
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits

log = logging.getLogger(__name__)

MediaKind = Literal["image", "video", "audio"]

HEAD_BYTES = 4096
EXIF_ORIENTATION = 0x0112
# Clockwise degrees that make the stored pixels upright, per EXIF orientation (mirroring ignored).
_EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_FTYP_AUDIO = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_FTYP_IMAGE = {
    b"avif": "avif", b"avis": "avif", b"heic": "heic", b"heix": "heic", b"mif1": "heif", b"msf1": "heif",
}
# kbit/s by (MPEG-1?, layer bits): layer bits 3 = Layer I, 2 = Layer II, 1 = Layer III.
_MP3_BITRATES = {
    (True, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_PIL_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_QUOTED_PATH = re.compile(r":?\s*'[^']*[/\\][^']*'")
# Packets read at most when a stream states no duration and we have to find its end ourselves.
_MAX_SCAN_PACKETS = 2_000_000


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` learned: enough to pick a pipeline and to refuse bad input early.

    `width`/`height` are the display size (after EXIF orientation or the video's display
    matrix); `rotation` is the clockwise turn, in degrees, that makes stored pixels upright.
    `frame_count` is estimated from duration x fps when the container does not say.
    """

    path: Path
    kind: MediaKind
    format: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    rotation: int = 0
    has_audio: bool = False
    has_video: bool = False
    codec: str | None = None
    sample_rate: int | None = None


def sniff_kind(head: bytes) -> tuple[MediaKind, str] | None:
    """Kind and format name from the first bytes of a file, or None if not recognised.

    `HEAD_BYTES` are enough for every signature here (a bare MP3 needs its second frame).
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image", "tiff"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
        return "image", "bmp"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return _sniff_riff(head[8:12])
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio", "aiff"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head[:64] else "matroska"
    if head.startswith(b"FLV\x01"):
        return "video", "flv"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "video", "mpeg"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "video", "mpegts"
    if head.startswith(b"fLaC"):
        return "audio", "flac"
    if head.startswith(b"OggS"):
        return "audio", "ogg"
    if head.startswith(b"ID3"):
        return "audio", "mp3"
    return _sniff_mpeg_audio(head)


def _sniff_riff(form: bytes) -> tuple[MediaKind, str] | None:
    return {b"WEBP": ("image", "webp"), b"AVI ": ("video", "avi"), b"WAVE": ("audio", "wav")}.get(form)


def _sniff_ftyp(brand: bytes) -> tuple[MediaKind, str]:
    """ISO base media files: the major brand tells audio-only and still-image files apart."""
    if brand in _FTYP_AUDIO:
        return "audio", "m4a"
    if brand in _FTYP_IMAGE:
        return "image", _FTYP_IMAGE[brand]
    if brand == b"qt  ":
        return "video", "mov"
    if brand == b"M4V ":
        return "video", "m4v"
    if brand.startswith((b"3gp", b"3g2")):
        return "video", "3gp"
    return "video", "mp4"


def _sniff_mpeg_audio(head: bytes) -> tuple[MediaKind, str] | None:
    """A bare MP3 or ADTS AAC stream: a frame header whose length leads to a second header.

    One 11-bit sync word alone matches 1 in ~3000 random files, so the next frame is checked.
    """
    if len(head) < 6 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0x06 == 0:
        if head[1] & 0xF6 != 0xF0:
            return None
        length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
        name = "aac"
    else:
        length = _mp3_frame_length(head)
        name = "mp3"
    if length < 7:
        return None
    if length + 2 <= len(head) and not (head[length] == 0xFF and head[length + 1] & 0xE0 == 0xE0):
        return None
    return "audio", name


def _mp3_frame_length(head: bytes) -> int:
    """Bytes in the MPEG audio frame starting at head[0], 0 for an invalid or free-format header."""
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate_index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 0x3, (head[2] >> 1) & 0x1
    if version == 1 or bitrate_index in (0, 0xF) or rate_index == 3:
        return 0
    mpeg1 = version == 3
    table = _MP3_BITRATES[(mpeg1, layer)] if (mpeg1 or layer == 3) else _MP3_BITRATES[(False, 2)]
    bitrate = table[bitrate_index] * 1000
    rate = (44100, 48000, 32000)[rate_index] >> {3: 0, 2: 1, 0: 2}[version]
    if layer == 3:
        return (12 * bitrate // rate + padding) * 4
    return (144 if (mpeg1 or layer == 2) else 72) * bitrate // rate + padding


@dataclass(frozen=True)
class CheckedFile:
    """A readable, non-empty regular file within the size limit, and its first bytes.

    `name` is the path as the caller wrote it: error messages quote what the user typed.
    """

    name: str
    path: Path
    size: int
    head: bytes


def check_file(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> CheckedFile:
    """Stat and read the start of `path`, raising the media error a person would expect."""
    name, p = str(path), Path(path)
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError) as err:
        raise MissingFileError(f"{name}: no such file") from err
    except OSError as err:
        raise MediaError(f"{name}: cannot read file ({err.strerror or err})") from err
    if stat.S_ISDIR(st.st_mode):
        raise UnsupportedMediaError(f"{name}: is a directory, not a media file")
    if not stat.S_ISREG(st.st_mode):
        raise UnsupportedMediaError(f"{name}: not a regular file")
    if st.st_size == 0:
        raise EmptyFileError(f"{name}: file is empty")
    if st.st_size > limits.max_file_bytes:
        raise MediaTooLargeError(
            f"{name}: file is too large ({_fmt_bytes(st.st_size)}, limit {_fmt_bytes(limits.max_file_bytes)})"
        )
    try:
        with p.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as err:
        raise MediaError(f"{name}: cannot read file ({err.strerror or err})") from err
    return CheckedFile(name, p, st.st_size, head)


def probe(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> MediaInfo:
    """Check a file and describe it; raises a `MediaError` subclass for anything unusable.

    Images are read up to their header only; videos have one frame decoded, which proves
    the stream decodes and gives the display rotation.
    """
    file = check_file(path, limits)
    sniffed = sniff_kind(file.head)
    if sniffed is None:
        raise UnsupportedMediaError(f"{file.name}: unsupported file type (not an image, video or audio file)")
    kind, fmt = sniffed
    if kind == "image":
        return _probe_image(file, fmt, limits)
    return _probe_av(file, kind, fmt, limits)


@contextmanager
def open_image(file: CheckedFile, fmt: str, limits: MediaLimits) -> Iterator[Image.Image]:
    """Pillow image with only its header read and the pixel limit checked."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file.path)
    except Image.DecompressionBombError as err:
        raise MediaTooLargeError(
            f"{file.name}: image is too large ({_bomb_size(fmt, file.head, err)}, "
            f"limit {_mpx(limits.max_image_pixels)} Mpx)"
        ) from err
    except Exception as err:  # Pillow raises many types (OSError, SyntaxError, ValueError...) on bad input
        if fmt in ("avif", "heic", "heif"):
            raise UnsupportedMediaError(f"{file.name}: {fmt} images are not supported") from err
        raise CorruptMediaError(f"{file.name}: corrupt or unreadable image ({error_reason(err)})") from err
    with image:
        width, height = image.size
        if width * height > limits.max_image_pixels:
            raise MediaTooLargeError(
                f"{file.name}: image is too large ({width}x{height} = {_mpx(width * height)} Mpx, "
                f"limit {_mpx(limits.max_image_pixels)} Mpx)"
            )
        yield image


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation tag (1-8), read without decoding pixels; 1 when absent or unreadable.

    Pillow's `getexif()` on a PNG decodes the whole image to look for a late eXIf chunk,
    so for PNG only a chunk placed before the pixel data counts.
    """
    try:
        if image.format == "PNG":
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = image.getexif()
        value = int(exif.get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not make a good image unusable
        log.debug("unreadable EXIF block in %s", image.filename, exc_info=True)
        return 1
    return value if value in _EXIF_ROTATION else 1


def _probe_image(file: CheckedFile, fmt: str, limits: MediaLimits) -> MediaInfo:
    with open_image(file, fmt, limits) as image:
        width, height = image.size
        rotation = _EXIF_ROTATION[exif_orientation(image)]
        frames = int(getattr(image, "n_frames", 1) or 1)
    if rotation in (90, 270):
        width, height = height, width
    return MediaInfo(
        path=file.path, kind="image", format=fmt, size_bytes=file.size, width=width, height=height,
        frame_count=frames, rotation=rotation,
    )


def open_container(name: str, path: Path, kind: str) -> InputContainer:
    """PyAV input container; a file FFmpeg cannot parse is reported as corrupt."""
    try:
        return av.open(str(path), metadata_errors="ignore")
    except Exception as err:  # PyAV raises FFmpegError subclasses, but also UnicodeError or ValueError
        raise CorruptMediaError(f"{name}: corrupt or truncated {kind} ({error_reason(err)})") from err


def main_video_stream(container: InputContainer) -> VideoStream | None:
    """The first real video stream; cover art in audio files is not one."""
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    return None


def stream_duration(container: InputContainer, stream: av.stream.Stream) -> float | None:
    """Duration in seconds from the stream, else from the container, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def _probe_av(file: CheckedFile, kind: MediaKind, fmt: str, limits: MediaLimits) -> MediaInfo:
    """Video or audio, decided by the streams found (an mp4 holding only AAC is audio)."""
    with open_container(file.name, file.path, kind) as container:
        video = main_video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is not None:
            return _video_info(file, fmt, container, video, has_audio=audio is not None, limits=limits)
        if audio is not None:
            return _audio_info(file, fmt, container, audio, limits)
        raise CorruptMediaError(f"{file.name}: corrupt or truncated {kind} (no video or audio stream)")


def _video_info(
    file: CheckedFile, fmt: str, container: InputContainer, stream: VideoStream, *, has_audio: bool,
    limits: MediaLimits,
) -> MediaInfo:
    _check_frame_size(file, stream.codec_context.width, stream.codec_context.height, limits)
    first = _first_frame(file, container, stream)
    width, height = first.width, first.height
    _check_frame_size(file, width, height, limits)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else None
    duration = stream_duration(container, stream)
    frame_count = stream.frames or None
    if duration is None:
        frame_count, duration = _scan_packets(file, container, stream, limits)
    _check_duration(file, "video", duration, limits)
    if fps is None and frame_count and duration:
        fps = frame_count / duration
    if frame_count is None and duration and fps:
        frame_count = max(1, round(duration * fps))
    rotation = display_rotation(first.rotation)
    if rotation in (90, 270):
        width, height = height, width
    return MediaInfo(
        path=file.path, kind="video", format=fmt, size_bytes=file.size, width=width, height=height,
        duration=duration, fps=fps, frame_count=frame_count, rotation=rotation, has_audio=has_audio,
        has_video=True, codec=stream.codec_context.name,
    )


def _audio_info(
    file: CheckedFile, fmt: str, container: InputContainer, stream: av.audio.AudioStream, limits: MediaLimits
) -> MediaInfo:
    _first_decoded(file, container, stream, "audio", "samples")
    duration = stream_duration(container, stream)
    _check_duration(file, "audio", duration, limits)
    return MediaInfo(
        path=file.path, kind="audio", format="m4a" if fmt == "mp4" else fmt, size_bytes=file.size,
        duration=duration, has_audio=True, codec=stream.codec_context.name,
        sample_rate=stream.codec_context.sample_rate or None,
    )


def _first_frame(file: CheckedFile, container: InputContainer, stream: VideoStream) -> av.VideoFrame:
    return _first_decoded(file, container, stream, "video", "frames")


def _first_decoded(file: CheckedFile, container: InputContainer, stream: av.stream.Stream, kind: str, unit: str):
    """The stream's first decoded frame; any decoder failure there means the media is unusable."""
    try:
        decoded = next(container.decode(stream), None)
    except Exception as err:  # noqa: BLE001 - PyAV raises many types; all mean "corrupt" here
        raise CorruptMediaError(f"{file.name}: corrupt or truncated {kind} ({error_reason(err)})") from err
    if decoded is None:
        raise CorruptMediaError(f"{file.name}: corrupt or truncated {kind} (no decodable {unit})")
    return decoded


def _scan_packets(
    file: CheckedFile, container: InputContainer, stream: VideoStream, limits: MediaLimits
) -> tuple[int | None, float | None]:
    """Frame count and duration from packet timestamps, for streams that state neither."""
    count, first, last = 0, None, None
    try:
        container.seek(0)
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
            count += 1
            if count > _MAX_SCAN_PACKETS or last - first > limits.max_video_seconds:
                break
    except Exception:  # a damaged tail still leaves a usable estimate of what came before it
        log.debug("packet scan of %s stopped early", file.name, exc_info=True)
    if first is None or last is None:
        return None, None
    return count, last - first


def _check_frame_size(file: CheckedFile, width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_video_pixels_per_frame:
        raise MediaTooLargeError(
            f"{file.name}: video frame is too large ({width}x{height} = {_mpx(width * height)} Mpx, "
            f"limit {_mpx(limits.max_video_pixels_per_frame)} Mpx)"
        )


def display_rotation(ccw_degrees: float) -> int:
    """Clockwise degrees (0/90/180/270) that make a frame upright, from a display-matrix angle.

    FFmpeg (and `av.VideoFrame.rotation`) give the matrix's counter-clockwise angle; a
    portrait phone clip stores -90 there, i.e. it must be turned 90 degrees clockwise,
    the value its legacy `rotate` tag held.
    """
    if ccw_degrees != ccw_degrees:  # NaN from a degenerate matrix
        return 0
    return (round(-ccw_degrees / 90) % 4) * 90


def _check_duration(file: CheckedFile, kind: str, duration: float | None, limits: MediaLimits) -> None:
    if duration is not None and duration > limits.max_video_seconds:
        raise MediaTooLargeError(
            f"{file.name}: {kind} is too long ({fmt_seconds(duration)}, "
            f"limit {fmt_seconds(limits.max_video_seconds)})"
        )


def _bomb_size(fmt: str, head: bytes, err: Exception) -> str:
    """Declared size of an image Pillow refused as a decompression bomb."""
    dims = None
    if fmt == "png" and len(head) >= 24:
        dims = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif fmt == "gif" and len(head) >= 10:
        dims = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if dims is not None:
        return f"{dims[0]}x{dims[1]} = {_mpx(dims[0] * dims[1])} Mpx"
    match = _PIL_BOMB_PIXELS.search(str(err))
    return f"{_mpx(int(match.group(1)))} Mpx" if match else "decompression bomb"


def error_reason(err: BaseException) -> str:
    """A short lower-case cause from an exception, without file paths repeated."""
    text = getattr(err, "strerror", None) or _QUOTED_PATH.sub("", str(err)) or type(err).__name__
    text = str(text).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.3g}"


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def fmt_seconds(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
