"""Take a fixed number of frames spread evenly over a video, upright and in RGB.

Detectors score a clip from `num_frames` frames taken at the centres of equal time bins
(`sample_timestamps`). For each target time the frame shown nearest to it is chosen (by
real timestamps, so variable frame rates are fine; ties go to the earlier frame). Both ways
of reaching those frames feed the same `_Picker`, so they return the same frames:

- "sequential" decodes the stream once (frame-threaded) and converts to RGB only the
  chosen ones. Frames no other frame refers to (most B-frames) are not even decoded unless
  they lie within two frame durations of a target (`skip_frame` "NONREF" per packet, by its
  time): they cannot be chosen and nothing needs them. On a 10-s 720p x264 clip that left
  215 of 300 frames to decode for 32 targets: 0.32 s instead of 0.35 s (median of 7, idle
  machine; 0.81 s instead of 0.93 s while other jobs kept the 2 cores busy), with the same
  frames on all 34 labelled clips. Cost ~ frame count.
- "seek" jumps to the keyframe before each target and decodes forward from it. Cost ~
  num_frames x (seek + half a keyframe interval). It never seeks to a keyframe it has
  already passed, so with sparse keyframes it degrades into one forward pass; a seek that
  lands after its target (MPEG-TS, files without an index) is retried further back; once
  a seek needs more than `max(250, 2 x keyframe interval)` frames to reach its target
  (a lying index) it stops seeking and goes on forward.
- "auto" picks "sequential" when decoding everything is cheap
  (frame_count <= 12 x num_frames), when the file has no keyframe index, or when its
  keyframes are sparser than the samples (keyframe interval > frame_count / num_frames,
  every seek would decode a whole bin anyway); "seek" otherwise.

Wall time of `sample_frames(path, 32)`, best of 3, on this project's 2-core CPU while a
training job kept it busy (load ~3.5, so +-20%; * = what "auto" picks):

| clip                                              | frames | keyframes | sequential | seek    |
|---------------------------------------------------|--------|-----------|------------|---------|
| videos/brtujopkby.mp4, DFDC 1080x1920, 10 s       | 300    | 2         | 1.6 s *    | 1.6 s   |
| videos_more/ff_original_720.mp4, FF++ c40 656x480 | 564    | 3         | 0.31 s *   | 0.35 s  |
| videos_more/dfd_original_08__podium..., 1080p 46 s| 1094   | 5         | 2.9 s *    | 2.5 s   |
| synthetic 720p 60 s, keyframe every 30 frames     | 1800   | 60        | 2.0 s      | 1.05 s *|
| synthetic 720p 60 s, keyframe every 250 frames    | 1800   | 8         | 1.9 s *    | 1.6 s   |

On sparse keyframes the two read the same packets and decode the same frames; what
differs is threading (frame threads for sequential, which only pay on idle cores) and seek
overhead, hence the near ties. Dense keyframes are where seeking wins (2x above).

A plain seek per target, going back to the keyframe every time, took 18.5 s on
brtujopkby.mp4 and 2.3 s on ff_original_720.mp4: the DFDC/FF++ files hold one keyframe
every 150-250 frames, which is why seeking never goes backwards here. `max_side` saves
little on these (decoding dominates, only 32 frames are converted) but shrinks memory.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from fakescope.errors import CorruptMediaError, UnsupportedMediaError
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.probe import (
    MediaInfo,
    display_rotation,
    error_reason,
    main_video_stream,
    open_container,
    probe,
)

log = logging.getLogger(__name__)

Strategy = Literal["auto", "seek", "sequential"]

SEQUENTIAL_FRAMES_PER_SAMPLE = 12
_MIN_DECODE_CAP = 250
_SEEK_MIN_GAP_SECONDS = 2.0
_SEEK_MARGIN_FRAMES = 3
_AVINDEX_KEYFRAME = 1
_SEEK_THREAD_TYPE = "SLICE"
_TIE_SECONDS = 1e-6
_MAX_BAD_PACKETS = 100
_SEEK_TRIES = 4


@dataclass(frozen=True, eq=False)
class Frame:
    """One sampled frame.

    `timestamp` is seconds from the stream start; `index` is the frame number it implies
    (timestamp x average fps, rounded: exact at a constant frame rate, and unlike a decode
    count it stays right after damaged packets were skipped); `image` is an (H, W, 3)
    uint8 RGB array with the display rotation applied.
    """

    index: int
    timestamp: float
    image: np.ndarray


@dataclass(frozen=True)
class _Clip:
    """What both strategies need to know about the opened stream."""

    name: str
    stream: VideoStream
    start: float
    fps: float
    max_side: int | None


@dataclass(frozen=True)
class _Decoded:
    index: int
    ts: float
    frame: av.VideoFrame


class _Picker:
    """Turns decoded frames, in display order, into the frames nearest to each target.

    A target is settled by the first frame at or after it: that frame or the one before,
    whichever is closer. After a seek the frame before is unknown, hence `restart`.
    """

    def __init__(self, clip: _Clip, targets: list[float]) -> None:
        self.clip, self.targets = clip, targets
        self.next = 0
        self.frames: list[Frame] = []
        self._previous: _Decoded | None = None

    @property
    def done(self) -> bool:
        return self.next >= len(self.targets)

    def restart(self) -> None:
        self._previous = None

    def feed(self, current: _Decoded) -> None:
        while not self.done and current.ts >= self.targets[self.next]:
            target, previous = self.targets[self.next], self._previous
            closer = previous is not None and target - previous.ts <= current.ts - target + _TIE_SECONDS
            self._emit(previous if closer and previous is not None else current)
            self.next += 1
        self._previous = current

    def finish(self) -> None:
        """Targets past the last decodable frame all get that frame, once."""
        if not self.done and self._previous is not None:
            self._emit(self._previous)
        self.next = len(self.targets)

    def _emit(self, chosen: _Decoded) -> None:
        if self.frames and chosen.ts <= self.frames[-1].timestamp:
            return
        self.frames.append(_to_frame(self.clip, chosen.index, chosen.ts, chosen.frame))


def sample_timestamps(duration: float, num_frames: int) -> list[float]:
    """Centres of `num_frames` equal bins over [0, duration): even cover, never the black first frame."""
    return [(i + 0.5) * duration / num_frames for i in range(num_frames)]


def video_duration(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS) -> float:
    """Duration of a video in seconds (stream, container or packet timestamps, in that order)."""
    info = _probe_video(path, limits)
    assert info.duration is not None
    return info.duration


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
    than resizing afterwards. Passing the `MediaInfo` from `probe` skips probing again.
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
    with open_container(str(path), info.path, "video") as container:
        stream = main_video_stream(container)
        if stream is None:
            raise CorruptMediaError(f"{path}: corrupt or truncated video (no video stream)")
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        clip = _Clip(str(path), stream, start, info.fps or 30.0, max_side)
        keyframes = keyframe_times(stream, start)
        interval = info.frame_count / len(keyframes) if keyframes and info.frame_count else None
        chosen = choose_strategy(info.frame_count, num_frames, interval) if strategy == "auto" else strategy
        log.debug("%s: %d frames by %s (frame_count=%s, keyframe interval=%s)",
                  path, num_frames, chosen, info.frame_count, interval)
        if chosen == "seek":
            frames = _sample_seek(container, clip, targets, keyframes, interval)
        else:
            frames = _sample_sequential(container, clip, targets)
    if not frames:
        raise CorruptMediaError(f"{path}: corrupt or truncated video (no decodable frames)")
    return frames


def copy_clip(source: str | Path, out: str | Path, seconds: float) -> Path:
    """A `seconds`-long clip of the video stream, packets copied (no re-encoding), looped when the source is shorter:
    benchmarks and tests get clips of an exact length from real footage."""
    out = Path(out)
    with av.open(str(source)) as src:
        if not src.streams.video:
            raise UnsupportedMediaError(f"{Path(source).name}: no video stream to copy")
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        base = stream.time_base
        offset, last_end = 0, 0
        while True:
            src.seek(0)
            for packet in src.demux(stream):
                if packet.pts is None or packet.dts is None:
                    continue
                pts = packet.pts + offset
                if float(pts * base) >= seconds:
                    return out
                last_end = max(last_end, pts + (packet.duration or 1))
                packet.pts, packet.dts = pts, packet.dts + offset
                packet.stream = copy
                dst.mux(packet)
            if last_end == offset:
                raise CorruptMediaError(f"{Path(source).name}: no video packets to copy")
            offset = last_end


def keyframe_times(stream: VideoStream, start: float = 0.0) -> list[float] | None:
    """Sorted keyframe times (s, from the stream start) from the demuxer's index, None without one."""
    entries = stream.index_entries
    if not entries:
        return None
    base = stream.time_base
    times = sorted(float(e.timestamp * base) - start for e in entries if e.flags & _AVINDEX_KEYFRAME)
    return times or None


def rotate_upright(image: np.ndarray, clockwise: int) -> np.ndarray:
    """Turn an (H, W, C) array clockwise by a multiple of 90 degrees, C-contiguous."""
    turns = (clockwise // 90) % 4
    rotated = np.rot90(image, k=-turns) if turns else image
    return np.ascontiguousarray(rotated)


def _probe_video(path: str | Path, limits: MediaLimits) -> MediaInfo:
    info = probe(path, limits)
    if info.kind != "video":
        raise UnsupportedMediaError(f"{path}: not a video ({info.kind} file)")
    if info.duration is None or info.duration <= 0:
        raise CorruptMediaError(f"{path}: corrupt video (no duration or timestamps)")
    return info


def _sample_sequential(container: InputContainer, clip: _Clip, targets: list[float]) -> list[Frame]:
    clip.stream.thread_type = "AUTO"
    picker = _Picker(clip, targets)
    ts = None
    decoded = 0
    for frame in _decode(container, clip, _NearTargets(targets, clip)):
        decoded += 1
        ts = _timestamp(frame, clip, ts)
        picker.feed(_Decoded(round(ts * clip.fps), ts, frame))
        if picker.done:
            break
    picker.finish()
    log.debug("%s: decoded %d frames up to %.3f s", clip.name, decoded, ts or 0.0)
    return picker.frames


def _sample_seek(
    container: InputContainer,
    clip: _Clip,
    targets: list[float],
    keyframes: list[float] | None,
    interval: float | None,
) -> list[Frame]:
    clip.stream.thread_type = _SEEK_THREAD_TYPE
    cap = max(_MIN_DECODE_CAP, 2 * int(interval or 0))
    picker = _Picker(clip, targets)
    decoder: Iterator[av.VideoFrame] | None = None
    seeking, position, ts = True, 0.0, None
    since_seek: int | None = None  # frames decoded since a seek, until its target is settled
    while not picker.done:
        target = targets[picker.next]
        seek_to = max(0.0, target - _SEEK_MARGIN_FRAMES / clip.fps)
        if seeking and _worth_seeking(position, seek_to, keyframes):
            landed = _seek_before(container, clip, seek_to, target)
            if landed is None:  # the demuxer cannot land before targets: one forward pass
                seeking = False
                landed = _from_start(container, clip)
            decoder, since_seek, ts = landed, 0, None
            picker.restart()
        if decoder is None:
            decoder = _decode(container, clip)
        settled = picker.next
        for frame in decoder:
            ts = _timestamp(frame, clip, ts)
            position = ts
            picker.feed(_Decoded(round(ts * clip.fps), ts, frame))
            if picker.next != settled:
                since_seek = None
                break
            if since_seek is not None:
                since_seek += 1
                if since_seek > cap and seeking:
                    log.debug("%s: seeks land far from their targets; decoding forward", clip.name)
                    seeking = False
        else:
            break
    picker.finish()
    return picker.frames


def _worth_seeking(position: float, seek_to: float, keyframes: list[float] | None) -> bool:
    """Seek only when it skips decoding: the keyframe before the target lies ahead of us."""
    if keyframes is None:
        return seek_to - position > _SEEK_MIN_GAP_SECONDS
    at = bisect.bisect_right(keyframes, seek_to) - 1
    return at >= 0 and keyframes[at] > position


def _seek_before(
    container: InputContainer, clip: _Clip, seek_to: float, target: float
) -> Iterator[av.VideoFrame] | None:
    """Frames from a keyframe at or before `target`, stepping back when the demuxer overshoots.

    Seeking MPEG-TS, or any file without an index, can land after the requested time; a
    frame past the target would then be taken for it. None when no landing works.
    """
    step = 1.0
    for _ in range(_SEEK_TRIES):
        if not _seek(container, clip, seek_to):
            return None
        decoder = _decode(container, clip)
        first = next(decoder, None)
        if first is None:
            return None
        if _timestamp(first, clip, None) <= target or seek_to <= 0.0:
            return itertools.chain([first], decoder)
        seek_to, step = max(0.0, seek_to - step), step * 2
    return None


def _from_start(container: InputContainer, clip: _Clip) -> Iterator[av.VideoFrame]:
    """Decode from the start again (or, if even that seek fails, from where the demuxer is)."""
    _seek(container, clip, 0.0)
    return _decode(container, clip)


def _seek(container: InputContainer, clip: _Clip, seconds: float) -> bool:
    """Seek to the keyframe at or before `seconds`; False if the file cannot seek."""
    offset = int((seconds + clip.start) / clip.stream.time_base)
    try:
        container.seek(offset, stream=clip.stream, backward=True, any_frame=False)
    except Exception as err:  # unseekable input: the caller decodes forward instead
        log.debug("%s: seek failed (%s)", clip.name, error_reason(err))
        return False
    return True


class _NearTargets:
    """Whether a packet's frame may be chosen for a target: within two frame durations of one.

    The chosen frame is the last one at or before a target or the first one after it, both
    less than a frame duration away at a constant rate; two durations (the packet's own or
    1/fps, whichever is longer) leave room for variable frame rates.
    """

    def __init__(self, targets: list[float], clip: _Clip) -> None:
        self.targets = targets
        self.base = clip.stream.time_base
        self.start = clip.start
        self.frame_seconds = 1.0 / clip.fps

    def __call__(self, packet: av.Packet) -> bool:
        if packet.pts is None or self.base is None:
            return True
        ts = float(packet.pts * self.base) - self.start
        duration = float(packet.duration * self.base) if packet.duration else 0.0
        window = 2.0 * max(duration, self.frame_seconds)
        at = bisect.bisect_left(self.targets, ts - window)
        return at < len(self.targets) and self.targets[at] <= ts + window


def _decode(
    container: InputContainer, clip: _Clip, needed: Callable[[av.Packet], bool] | None = None
) -> Iterator[av.VideoFrame]:
    """Decoded frames in display order; damaged packets are skipped, a broken container ends it.

    With `needed`, packets it rejects are decoded only if other frames refer to them.
    """
    bad = 0
    skipping = False
    context = clip.stream.codec_context
    try:
        for packet in container.demux(clip.stream):
            if needed is not None and skipping == needed(packet):
                skipping = not skipping
                context.skip_frame = "NONREF" if skipping else "DEFAULT"
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as err:
                bad += 1
                log.debug("%s: skipped a damaged packet (%s)", clip.name, error_reason(err))
                if bad > _MAX_BAD_PACKETS:
                    log.warning("%s: too many damaged packets, stopped decoding", clip.name)
                    return
                continue
            yield from frames
    except (av.FFmpegError, OSError, ValueError, EOFError) as err:
        log.warning("%s: video stream is damaged, stopped decoding (%s)", clip.name, error_reason(err))
    if bad:
        log.warning("%s: skipped %d damaged packets", clip.name, bad)


def _timestamp(frame: av.VideoFrame, clip: _Clip, previous: float | None) -> float:
    """Seconds from the stream start; frames without a timestamp follow the previous one."""
    if frame.time is not None:
        return float(frame.time) - clip.start
    return 0.0 if previous is None else previous + 1.0 / clip.fps


def _to_frame(clip: _Clip, index: int, ts: float, frame: av.VideoFrame) -> Frame:
    try:
        image = _to_rgb(frame, clip.max_side)
    except Exception as err:  # an unconvertible pixel format or size is a property of the file
        raise CorruptMediaError(f"{clip.name}: cannot convert frame {index} to RGB ({error_reason(err)})") from err
    return Frame(index=index, timestamp=ts, image=image)


def _to_rgb(frame: av.VideoFrame, max_side: int | None) -> np.ndarray:
    width, height = frame.width, frame.height
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        rgb = frame.to_ndarray(
            format="rgb24",
            width=max(1, round(width * scale)),
            height=max(1, round(height * scale)),
            interpolation="BILINEAR",
        )
    else:
        rgb = frame.to_ndarray(format="rgb24")
    return rotate_upright(rgb, display_rotation(frame.rotation))
