"""Media input: identify files, load images, sample video frames. No ML here."""

from fakescope.media.files import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    MEDIA_EXTENSIONS,
    VIDEO_EXTENSIONS,
    collect_media_files,
)
from fakescope.media.image import load_image
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.probe import MediaInfo, MediaKind, probe, sniff_kind
from fakescope.media.video import Frame, Strategy, sample_frames, sample_timestamps, video_duration

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_LIMITS",
    "Frame",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "MediaInfo",
    "MediaKind",
    "MediaLimits",
    "Strategy",
    "VIDEO_EXTENSIONS",
    "collect_media_files",
    "load_image",
    "probe",
    "sample_frames",
    "sample_timestamps",
    "sniff_kind",
    "video_duration",
]
