"""Take a fixed number of frames spread evenly over a video, upright and in RGB.

The Detector scores a clip from `num_frames` frames taken at the centres of equal time bins
(`sample_timestamps`), each the frame shown nearest to its target time. This module decides
which frames and which way to reach them; `media.video_decoding` decodes them:

- "sequential" decodes the stream once. Cost ~ frame count.
- "seek" jumps to the keyframe before each target. Cost ~ num_frames x (seek + half a
  keyframe interval).
- "auto" picks "sequential" when decoding everything is cheap
  (frame_count <= 12 x num_frames), when the file has no keyframe index, or when its
  keyframes are sparser than the samples (keyframe interval > frame_count / num_frames,
  every seek would decode a whole bin anyway); "seek" otherwise.

On sparse keyframes the two read the same packets and decode the same frames; what
differs is threading (frame threads for sequential, which only pay on idle cores) and seek
overhead, hence near ties. Dense keyframes are where seeking wins. `max_side` saves little
(decoding dominates, only `num_frames` frames are converted) but shrinks memory. Timings:
see docs/RESULTS.md, frame sampling.

Memory is bounded whatever the file: frames come back at most `MediaLimits.max_decode_side`
long, and smaller still when `num_frames` of them would pass `MediaLimits.decoded_pixel_budget`
(`decode_side`); frames within both come back exactly as decoded.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal

from av.video.stream import VideoStream

from fakescope.errors import CorruptMediaError, UnsupportedMediaError
from fakescope.media.container import limit_frame_pixels, main_video_stream, open_container
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.probe import MediaInfo, probe
from fakescope.media.video_decoding import Frame, SampledStream, sample_seek, sample_sequential, scaled_size

log = logging.getLogger(__name__)

Strategy = Literal["auto", "seek", "sequential"]

SEQUENTIAL_FRAMES_PER_SAMPLE = 12
_AVINDEX_KEYFRAME = 1
# Frames are never scaled below this long side to fit the pixel budget (faces would vanish).
MIN_DECODE_SIDE = 64


def sample_timestamps(duration: float, num_frames: int) -> list[float]:
    """Centres of `num_frames` equal bins over [0, duration): even cover, never the black first frame."""
    return [(i + 0.5) * duration / num_frames for i in range(num_frames)]


def video_duration(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> float:
    """Duration of a video in seconds (stream, container or packet timestamps, in that order)."""
    info = _probe_video(path, limits)
    assert info.duration is not None
    return info.duration


def decode_side(
    width: int, height: int, num_frames: int, *, max_side: int | None = None, limits: MediaLimits = DEFAULT_LIMITS
) -> int | None:
    """The long side `num_frames` frames of width x height are decoded at; None: their own size.

    At most `max_side` and `limits.max_decode_side`, and small enough that the frames together
    stay within `limits.decoded_pixel_budget` (down to `MIN_DECODE_SIDE`).
    """
    long = max(width, height)
    side = min(long, limits.max_decode_side, max_side or long)
    per_frame = limits.decoded_pixel_budget // max(1, num_frames)
    while side > MIN_DECODE_SIDE and _area(width, height, side) > per_frame:
        shrink = math.sqrt(per_frame / _area(width, height, side))
        side = max(MIN_DECODE_SIDE, min(side - 1, math.floor(side * shrink)))
    return None if side >= long else side


def decoded_pixels(width: int, height: int, num_frames: int, side: int | None) -> int:
    """Pixels `num_frames` frames of width x height hold once decoded at long side `side` (None: full size)."""
    return num_frames * _area(width, height, side)


def _area(width: int, height: int, side: int | None) -> int:
    w, h = scaled_size(width, height, side)
    return w * h


def choose_strategy(frame_count: int | None, num_frames: int, keyframe_interval: float | None) -> Strategy:
    """The cheaper way to get `num_frames` frames; see the module docstring for the rule."""
    if not frame_count or frame_count <= SEQUENTIAL_FRAMES_PER_SAMPLE * num_frames:
        return "sequential"
    if keyframe_interval is None or keyframe_interval > frame_count / num_frames:
        return "sequential"
    return "seek"


def sample_frames(
    path: str | Path | MediaInfo,
    num_frames: int = 32,
    *,
    strategy: Strategy = "auto",
    max_side: int | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> list[Frame]:
    """Up to `num_frames` frames at evenly spread times, in time order.

    Fewer come back when the clip has fewer distinct frames than asked, or when the stream
    breaks off (damage keeps the frames decoded before it). `max_side` shrinks frames so
    their long side is at most that many pixels during the RGB conversion, which is faster
    than resizing afterwards; `limits` may shrink them further (`decode_side`). Passing the
    `MediaInfo` from `probe` skips probing again.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    if strategy not in ("auto", "seek", "sequential"):
        raise ValueError(f"unknown strategy {strategy!r}; use 'auto', 'seek' or 'sequential'")
    info = path if isinstance(path, MediaInfo) else _probe_video(path, limits)
    if info.kind != "video" or not info.duration:
        raise UnsupportedMediaError(f"{info.path}: not a video with a known duration ({info.kind} file)")
    path = info.path if isinstance(path, MediaInfo) else path
    targets = sample_timestamps(info.duration, num_frames)
    width, height = info.width or 0, info.height or 0
    if width and height:
        side = decode_side(width, height, num_frames, max_side=max_side, limits=limits)
    else:
        side = min(max_side or limits.max_decode_side, limits.max_decode_side)
    with open_container(str(path), info.path, "video") as container:
        stream = main_video_stream(container)
        if stream is None:
            raise CorruptMediaError(f"{path}: corrupt or truncated video (no video stream)")
        limit_frame_pixels(stream, limits.max_video_pixels_per_frame)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        planned = _area(width, height, side) if width and height else None
        clip = SampledStream(str(path), stream, start, info.fps or 30.0, side, planned, width * height)
        keyframes = keyframe_times(stream, start)
        interval = info.frame_count / len(keyframes) if keyframes and info.frame_count else None
        chosen = choose_strategy(info.frame_count, num_frames, interval) if strategy == "auto" else strategy
        log.debug(
            "%s: %d frames by %s (frame_count=%s, keyframe interval=%s)", path, num_frames, chosen, info.frame_count, interval
        )
        if chosen == "seek":
            frames = sample_seek(container, clip, targets, keyframes, interval)
        else:
            frames = sample_sequential(container, clip, targets)
    if not frames:
        raise CorruptMediaError(f"{path}: corrupt or truncated video (no decodable frames)")
    return frames


def keyframe_times(stream: VideoStream, start: float = 0.0) -> list[float] | None:
    """Sorted keyframe times (s, from the stream start) from the demuxer's index, None without one."""
    entries = stream.index_entries
    if not entries:
        return None
    base = stream.time_base
    times = sorted(float(e.timestamp * base) - start for e in entries if e.flags & _AVINDEX_KEYFRAME)
    return times or None


def _probe_video(path: str | Path, limits: MediaLimits) -> MediaInfo:
    info = probe(path, limits)
    if info.kind != "video":
        raise UnsupportedMediaError(f"{path}: not a video ({info.kind} file)")
    if info.duration is None or info.duration <= 0:
        raise CorruptMediaError(f"{path}: corrupt video (no duration or timestamps)")
    return info
