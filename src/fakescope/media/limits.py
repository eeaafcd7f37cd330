"""Size limits checked before any decoding, so a hostile or huge file fails fast, and the bounds
on what decoding may hold in memory, so a tiny file cannot make a worker huge."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class MediaLimits:
    """Upper bounds on what `probe`, `load_image` and `sample_frames` accept and hold.

    `max_video_seconds` bounds every time-based file (video and audio). A video is also refused
    when its frames are larger than `max_video_pixels_per_frame` (checked on the stream header
    and enforced in the decoder, so a frame growing mid-stream is refused too), when it shows
    more than `max_video_pixel_rate` pixels a second, or when decoding all of it means more than
    `max_video_decoded_pixels` pixels: a few hundred kilobytes of 8K video are minutes of decoding.

    What is accepted is decoded small: sampled frames keep their long side at most
    `max_decode_side` (scaled in the decoder, so a huge frame never exists in RGB), enough for the
    face crops of any face worth classifying; videos up to that size decode to the very same
    pixels as without a bound. `decoded_pixel_budget` bounds the decoded pixels one analysis keeps
    at once (its frames are scaled further when they would not fit) and, through
    `media.budget.DECODE_BUDGET`, those all the analyses of a process keep together.

    `max_audio_seconds` bounds the sound one analysis decodes (of an audio file or a video): the
    recording is held whole at the model's rate as mono float32, 4 bytes a sample (the default,
    three hours at 16 kHz, is about 690 MB), the only full-length copy decoding and scoring keep.
    It is checked on the stream's stated length before decoding and on the samples as they
    arrive, so a stream that states no length, or understates it, stops at the limit; the held
    samples count against `DECODE_BUDGET` too, so concurrent analyses share one bound.
    """

    max_file_bytes: int = 4 * GIB
    max_image_pixels: int = 100_000_000
    max_video_seconds: float = 3 * 3600.0
    max_video_pixels_per_frame: int = 8192 * 8192
    max_video_pixel_rate: float = 7680 * 4320 * 60.0
    max_video_decoded_pixels: int = 1920 * 1080 * 60 * 3 * 3600
    max_decode_side: int = 1920
    decoded_pixel_budget: int = 200_000_000
    max_audio_seconds: float = 3 * 3600.0


DEFAULT_LIMITS = MediaLimits()
