"""Media input: identify files, load images, sample video frames, decode audio. No ML here."""

from fakescope.media.audio import (
    SAMPLE_RATE,
    Audio,
    decode_audio,
    encode_audio,
    is_silent,
    load_audio,
    normalize_loudness,
    prepare_speech,
    resample,
    speech_windows,
    trim_silence,
)
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
    "Audio",
    "DEFAULT_LIMITS",
    "Frame",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "MediaInfo",
    "MediaKind",
    "MediaLimits",
    "SAMPLE_RATE",
    "Strategy",
    "VIDEO_EXTENSIONS",
    "collect_media_files",
    "decode_audio",
    "encode_audio",
    "is_silent",
    "load_audio",
    "load_image",
    "normalize_loudness",
    "prepare_speech",
    "probe",
    "resample",
    "sample_frames",
    "sample_timestamps",
    "sniff_kind",
    "speech_windows",
    "trim_silence",
    "video_duration",
]
