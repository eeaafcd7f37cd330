"""Media input: identify files, load images, sample video frames, decode audio. No ML here."""

from fakescope.constants import MediaKind
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
from fakescope.media.probe import MediaInfo, probe
from fakescope.media.sniff import sniff_kind
from fakescope.media.video import Strategy, sample_frames, sample_timestamps, video_duration
from fakescope.media.video_decoding import Frame

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_LIMITS",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "SAMPLE_RATE",
    "VIDEO_EXTENSIONS",
    "Audio",
    "Frame",
    "MediaInfo",
    "MediaKind",
    "MediaLimits",
    "Strategy",
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
