"""Check a media file and read its basic facts without decoding all of it.

`sniff_kind` decides the kind from the content; this module refuses what is missing, empty,
too large, too long or undecodable before any pipeline starts. Every failure becomes one of
the `fakescope.errors` media errors, naming the file.
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

import av
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from fakescope.constants import MediaKind
from fakescope.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaError,
    MediaTooLargeError,
    MissingFileError,
    UnsupportedMediaError,
)
from fakescope.media.container import (
    display_rotation,
    first_decoded,
    limit_frame_pixels,
    main_video_stream,
    open_container,
    stream_duration,
)
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.messages import error_reason, fmt_bytes, fmt_mpx, fmt_seconds
from fakescope.media.sniff import HEAD_BYTES, sniff_kind

log = logging.getLogger(__name__)

EXIF_ORIENTATION = 0x0112
# Clockwise degrees that make the stored pixels upright, per EXIF orientation (mirroring ignored).
_EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}
_PIL_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
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
        raise MediaTooLargeError(f"{name}: file is too large ({fmt_bytes(st.st_size)}, limit {fmt_bytes(limits.max_file_bytes)})")
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
            f"{file.name}: image is too large ({_bomb_size(fmt, file.head, err)}, limit {fmt_mpx(limits.max_image_pixels)} Mpx)"
        ) from err
    except Exception as err:  # Pillow raises many types (OSError, SyntaxError, ValueError...) on bad input
        if fmt in ("avif", "heic", "heif"):
            raise UnsupportedMediaError(f"{file.name}: {fmt} images are not supported") from err
        raise CorruptMediaError(f"{file.name}: corrupt or unreadable image ({error_reason(err)})") from err
    with image:
        width, height = image.size
        if width * height > limits.max_image_pixels:
            raise MediaTooLargeError(
                f"{file.name}: image is too large ({width}x{height} = {fmt_mpx(width * height)} Mpx, "
                f"limit {fmt_mpx(limits.max_image_pixels)} Mpx)"
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
        path=file.path,
        kind="image",
        format=fmt,
        size_bytes=file.size,
        width=width,
        height=height,
        frame_count=frames,
        rotation=rotation,
    )


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
    file: CheckedFile,
    fmt: str,
    container: InputContainer,
    stream: VideoStream,
    *,
    has_audio: bool,
    limits: MediaLimits,
) -> MediaInfo:
    _check_frame_size(file, stream.codec_context.width, stream.codec_context.height, limits)
    limit_frame_pixels(stream, limits.max_video_pixels_per_frame)
    first: av.VideoFrame = first_decoded(file.name, container, stream, "video", "frames")
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
    _check_pixel_rate(file, width, height, fps, frame_count, limits)
    rotation = display_rotation(first.rotation)
    if rotation in (90, 270):
        width, height = height, width
    return MediaInfo(
        path=file.path,
        kind="video",
        format=fmt,
        size_bytes=file.size,
        width=width,
        height=height,
        duration=duration,
        fps=fps,
        frame_count=frame_count,
        rotation=rotation,
        has_audio=has_audio,
        has_video=True,
        codec=stream.codec_context.name,
    )


def _audio_info(
    file: CheckedFile, fmt: str, container: InputContainer, stream: av.audio.AudioStream, limits: MediaLimits
) -> MediaInfo:
    first_decoded(file.name, container, stream, "audio", "samples")
    duration = stream_duration(container, stream)
    _check_duration(file, "audio", duration, limits)
    return MediaInfo(
        path=file.path,
        kind="audio",
        format="m4a" if fmt == "mp4" else fmt,
        size_bytes=file.size,
        duration=duration,
        has_audio=True,
        codec=stream.codec_context.name,
        sample_rate=stream.codec_context.sample_rate or None,
    )


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
            f"{file.name}: video frame is too large ({width}x{height} = {fmt_mpx(width * height)} Mpx, "
            f"limit {fmt_mpx(limits.max_video_pixels_per_frame)} Mpx)"
        )


def _check_pixel_rate(
    file: CheckedFile, width: int, height: int, fps: float | None, frame_count: int | None, limits: MediaLimits
) -> None:
    """Refuse what would take too long to decode: too many pixels a second, or in all."""
    if fps and width * height * fps > limits.max_video_pixel_rate:
        raise MediaTooLargeError(
            f"{file.name}: video has too many pixels per second ({width}x{height} at {fps:g} fps = "
            f"{_fmt_pixels(width * height * fps)}/s, limit {_fmt_pixels(limits.max_video_pixel_rate)}/s)"
        )
    if frame_count and width * height * frame_count > limits.max_video_decoded_pixels:
        raise MediaTooLargeError(
            f"{file.name}: video has too many pixels to decode ({width}x{height} x {frame_count} frames = "
            f"{_fmt_pixels(width * height * frame_count)}, limit {_fmt_pixels(limits.max_video_decoded_pixels)})"
        )


def _fmt_pixels(pixels: float) -> str:
    """Megapixels, or gigapixels from a thousand megapixels on."""
    return f"{pixels / 1e9:.3g} Gpx" if pixels >= 1e9 else f"{pixels / 1e6:.3g} Mpx"


def _check_duration(file: CheckedFile, kind: str, duration: float | None, limits: MediaLimits) -> None:
    if duration is not None and duration > limits.max_video_seconds:
        raise MediaTooLargeError(
            f"{file.name}: {kind} is too long ({fmt_seconds(duration)}, limit {fmt_seconds(limits.max_video_seconds)})"
        )


def _bomb_size(fmt: str, head: bytes, err: Exception) -> str:
    """Declared size of an image Pillow refused as a decompression bomb."""
    dims = None
    if fmt == "png" and len(head) >= 24:
        dims = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif fmt == "gif" and len(head) >= 10:
        dims = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if dims is not None:
        return f"{dims[0]}x{dims[1]} = {fmt_mpx(dims[0] * dims[1])} Mpx"
    match = _PIL_BOMB_PIXELS.search(str(err))
    return f"{fmt_mpx(int(match.group(1)))} Mpx" if match else "decompression bomb"
