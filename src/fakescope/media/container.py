"""PyAV (FFmpeg) helpers shared by probing, frame sampling and audio decoding.

Each turns PyAV's many exception types into the one media error a person expects, naming
the file as the caller wrote it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream

from fakescope.errors import CorruptMediaError
from fakescope.media.messages import error_reason


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


def limit_frame_pixels(stream: VideoStream, max_pixels: int) -> None:
    """Make FFmpeg's decoder refuse any frame above `max_pixels` (its `max_pixels` option).

    The stream header can be silent or lie about the size, and a stream can grow mid-way; the
    decoder's own check stops a huge frame before it is allocated. Takes effect when the decoder
    opens, at the first decode.
    """
    context = stream.codec_context
    if not context.is_open:
        context.options = {**context.options, "max_pixels": str(int(max_pixels))}


def stream_duration(container: InputContainer, stream: av.stream.Stream) -> float | None:
    """Duration in seconds from the stream, else from the container, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def first_decoded(name: str, container: InputContainer, stream: av.stream.Stream, kind: str, unit: str) -> Any:
    """The stream's first decoded frame; any decoder failure there means the media is unusable."""
    try:
        decoded = next(container.decode(stream), None)
    except Exception as err:  # PyAV raises many types; all mean "corrupt" here
        raise CorruptMediaError(f"{name}: corrupt or truncated {kind} ({error_reason(err)})") from err
    if decoded is None:
        raise CorruptMediaError(f"{name}: corrupt or truncated {kind} (no decodable {unit})")
    return decoded


def display_rotation(ccw_degrees: float) -> int:
    """Clockwise degrees (0/90/180/270) that make a frame upright, from a display-matrix angle.

    FFmpeg (and `av.VideoFrame.rotation`) give the matrix's counter-clockwise angle; a
    portrait phone clip stores -90 there, i.e. it must be turned 90 degrees clockwise,
    the value its legacy `rotate` tag held.
    """
    if math.isnan(ccw_degrees):  # a degenerate matrix
        return 0
    return (round(-ccw_degrees / 90) % 4) * 90
