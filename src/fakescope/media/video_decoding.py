"""How `sample_frames` decodes the frames it takes: two strategies feeding one `_Picker`.

For each target time the frame shown nearest to it is chosen (by real timestamps, so
variable frame rates are fine; ties go to the earlier frame). Both strategies feed the same
`_Picker`, so they return the same frames:

- "sequential" decodes the stream once (frame-threaded) and converts to RGB only the
  chosen ones. Frames no other frame refers to (most B-frames) are not even decoded unless
  they lie within two frame durations of a target (`skip_frame` "NONREF" per packet, by its
  time): they cannot be chosen and nothing needs them, so fewer frames are decoded for the
  same frames returned. Cost ~ frame count.
- "seek" jumps to the keyframe before each target and decodes forward from it. Cost ~
  num_frames x (seek + half a keyframe interval). It never seeks to a keyframe it has
  already passed, so with sparse keyframes it degrades into one forward pass; a seek that
  lands after its target (MPEG-TS, files without an index) is retried further back; once
  a seek needs more than `max(250, 2 x keyframe interval)` frames to reach its target
  (a lying index) it stops seeking and goes on forward.

A plain seek per target, going back to the keyframe every time, is far slower on the
DFDC/FF++ files (one keyframe every 150-250 frames), which is why seeking never goes
backwards here (see docs/RESULTS.md, frame sampling). Damaged packets are skipped; a broken
container ends decoding with the frames taken so far.

Memory: frames are converted to RGB at their bounded size straight from the decoder's YUV
(`max_side`, `max_pixels`), so no full-size RGB copy of a large frame ever exists, and frame
threads, each of which holds frames of its own, are fewer for large frames (slice threads only
for the largest).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from fakescope.errors import CorruptMediaError
from fakescope.media.container import display_rotation
from fakescope.media.messages import error_reason

log = logging.getLogger(__name__)

_MIN_DECODE_CAP = 250
_SEEK_MIN_GAP_SECONDS = 2.0
_SEEK_MARGIN_FRAMES = 3
_SEEK_THREAD_TYPE = "SLICE"
_TIE_SECONDS = 1e-6
_MAX_BAD_PACKETS = 100
_SEEK_TRIES = 4
# Frame threads each hold decoded frames of their own: beyond this many pixels in all, fewer threads.
_FRAME_THREAD_PIXELS = 64_000_000
# FFmpeg's automatic thread count: one more than the cores, at most 16.
_AUTO_THREADS = min((os.cpu_count() or 1) + 1, 16)


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
class SampledStream:
    """What both strategies need to know about the opened stream, and the RGB size wanted.

    `max_side` bounds the long side of the RGB frames; `max_pixels` their area, so a frame larger
    than the stream said (a size change mid-stream) is scaled down to what was planned for.
    `frame_pixels` is the stream's frame size, which decides the decoder's threads.
    """

    name: str
    stream: VideoStream
    start: float
    fps: float
    max_side: int | None
    max_pixels: int | None = None
    frame_pixels: int = 0


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

    def __init__(self, clip: SampledStream, targets: list[float]) -> None:
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


def sample_sequential(container: InputContainer, clip: SampledStream, targets: list[float]) -> list[Frame]:
    """The frames nearest to `targets` (sorted, seconds from the stream start) in one forward pass."""
    _frame_threads(clip)
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


def sample_seek(
    container: InputContainer,
    clip: SampledStream,
    targets: list[float],
    keyframes: list[float] | None,
    interval: float | None,
) -> list[Frame]:
    """The frames nearest to `targets`, seeking ahead to the keyframe before each one where that skips decoding."""
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


def _frame_threads(clip: SampledStream) -> None:
    """Frame and slice threads, as many frame threads as keep their frames within `_FRAME_THREAD_PIXELS`.

    Threads change how fast frames decode, never their pixels.
    """
    context = clip.stream.codec_context
    if context.is_open:
        return
    pixels = max(clip.frame_pixels, context.width * context.height)
    threads = _FRAME_THREAD_PIXELS // pixels if pixels else _AUTO_THREADS
    if threads >= _AUTO_THREADS:
        clip.stream.thread_type = "AUTO"
    elif threads >= 2:
        clip.stream.thread_type = "AUTO"
        clip.stream.thread_count = threads
    else:
        clip.stream.thread_type = _SEEK_THREAD_TYPE


def _worth_seeking(position: float, seek_to: float, keyframes: list[float] | None) -> bool:
    """Seek only when it skips decoding: the keyframe before the target lies ahead of us."""
    if keyframes is None:
        return seek_to - position > _SEEK_MIN_GAP_SECONDS
    at = bisect.bisect_right(keyframes, seek_to) - 1
    return at >= 0 and keyframes[at] > position


def _seek_before(container: InputContainer, clip: SampledStream, seek_to: float, target: float) -> Iterator[av.VideoFrame] | None:
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


def _from_start(container: InputContainer, clip: SampledStream) -> Iterator[av.VideoFrame]:
    """Decode from the start again (or, if even that seek fails, from where the demuxer is)."""
    _seek(container, clip, 0.0)
    return _decode(container, clip)


def _seek(container: InputContainer, clip: SampledStream, seconds: float) -> bool:
    """Seek to the keyframe at or before `seconds`; False if the file cannot seek."""
    offset = int((seconds + clip.start) / clip.stream.time_base)
    try:
        container.seek(offset, stream=clip.stream, backward=True, any_frame=False)
    except Exception as err:  # noqa: BLE001 - unseekable input: the caller decodes forward instead
        log.debug("%s: seek failed (%s)", clip.name, error_reason(err))
        return False
    return True


class _NearTargets:
    """Whether a packet's frame may be chosen for a target: within two frame durations of one.

    The chosen frame is the last one at or before a target or the first one after it, both
    less than a frame duration away at a constant rate; two durations (the packet's own or
    1/fps, whichever is longer) leave room for variable frame rates.
    """

    def __init__(self, targets: list[float], clip: SampledStream) -> None:
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
    container: InputContainer, clip: SampledStream, needed: Callable[[av.Packet], bool] | None = None
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


def _timestamp(frame: av.VideoFrame, clip: SampledStream, previous: float | None) -> float:
    """Seconds from the stream start; frames without a timestamp follow the previous one."""
    if frame.time is not None:
        return float(frame.time) - clip.start
    return 0.0 if previous is None else previous + 1.0 / clip.fps


def _to_frame(clip: SampledStream, index: int, ts: float, frame: av.VideoFrame) -> Frame:
    try:
        image = _to_rgb(frame, clip.max_side, clip.max_pixels)
    except Exception as err:  # an unconvertible pixel format or size is a property of the file
        raise CorruptMediaError(f"{clip.name}: cannot convert frame {index} to RGB ({error_reason(err)})") from err
    return Frame(index=index, timestamp=ts, image=image)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so the long side is at most `max_side`, never enlarged."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(frame: av.VideoFrame, max_side: int | None, max_pixels: int | None = None) -> np.ndarray:
    """RGB at most `max_side` long and `max_pixels` large, scaled during the conversion from YUV."""
    width, height = frame.width, frame.height
    size = scaled_size(width, height, max_side)
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        side = math.floor(max(size) * math.sqrt(max_pixels / (size[0] * size[1])))
        size = scaled_size(width, height, max(1, side))
    if size != (width, height):
        rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="BILINEAR")
    else:
        rgb = frame.to_ndarray(format="rgb24")
    return rotate_upright(rgb, display_rotation(frame.rotation))


def rotate_upright(image: np.ndarray, clockwise: int) -> np.ndarray:
    """Turn an (H, W, C) array clockwise by a multiple of 90 degrees, C-contiguous."""
    turns = (clockwise // 90) % 4
    rotated = np.rot90(image, k=-turns) if turns else image
    return np.ascontiguousarray(rotated)
