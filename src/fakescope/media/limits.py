"""Size limits checked before any decoding, so a hostile or huge file fails fast."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class MediaLimits:
    """Upper bounds on what `probe`, `load_image` and `sample_frames` accept.

    `max_video_seconds` bounds every time-based file (video and audio).
    """

    max_file_bytes: int = 4 * GIB
    max_image_pixels: int = 100_000_000
    max_video_seconds: float = 3 * 3600.0
    max_video_pixels_per_frame: int = 8192 * 8192


DEFAULT_LIMITS = MediaLimits()
