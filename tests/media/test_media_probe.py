from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fakescope.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaTooLargeError,
    MissingFileError,
    UnsupportedMediaError,
)
from fakescope.media import MediaLimits, probe, sniff_kind
from fakescope.media.container import display_rotation


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("jpeg", ("image", "jpeg")),
        ("png", ("image", "png")),
        ("gif", ("image", "gif")),
        ("bmp", ("image", "bmp")),
        ("tiff", ("image", "tiff")),
        ("webp", ("image", "webp")),
        ("mp4", ("video", "mp4")),
        ("mov", ("video", "mov")),
        ("avi", ("video", "avi")),
        ("mkv", ("video", "matroska")),
        ("webm", ("video", "webm")),
        ("ts", ("video", "mpegts")),
        ("wav", ("audio", "wav")),
        ("flac", ("audio", "flac")),
        ("ogg", ("audio", "ogg")),
        ("mp3", ("audio", "mp3")),
        ("m4a", ("audio", "m4a")),
    ],
)
def test_sniff_kind_recognises_generated_files(media: dict[str, Path], name: str, expected: tuple[str, str]) -> None:
    assert sniff_kind(media[name].read_bytes()[:4096]) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", ("video", "mov")),
        (b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x00\x00", ("video", "3gp")),
        (b"\x00\x00\x00\x14ftypM4V \x00\x00\x00\x00", ("video", "m4v")),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00", ("audio", "m4a")),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", ("image", "avif")),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", ("audio", "mp3")),
        (b"FORM\x00\x00\x10\x00AIFF", ("audio", "aiff")),
        (b"FLV\x01\x05\x00\x00\x00\x09", ("video", "flv")),
        (b"MM\x00*\x00\x00\x00\x08", ("image", "tiff")),
        (b"hello world, this is text", None),
        (b"BM but just text that starts with BM", None),
        (b"", None),
        (b"\xff", None),
    ],
)
def test_sniff_kind_headers(head: bytes, expected: tuple[str, str] | None) -> None:
    assert sniff_kind(head) == expected


def test_sniff_kind_ignores_random_bytes() -> None:
    rng = np.random.default_rng(0)
    hits = [sniff_kind(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()) for _ in range(300)]
    assert hits == [None] * 300
    # This prefix looks like an MP3 frame header; no second frame follows it.
    assert sniff_kind(b"\xff\xe4\x22\x79" + bytes(600)) is None


def test_probe_image_fields(media: dict[str, Path]) -> None:
    info = probe(media["png"])
    assert (info.kind, info.format, info.width, info.height) == ("image", "png", 40, 20)
    assert info.duration is None and info.fps is None and info.rotation == 0
    assert info.size_bytes == media["png"].stat().st_size
    assert not info.has_video and not info.has_audio


@pytest.mark.parametrize(("name", "rotation"), [("jpeg_exif6", 90), ("png_exif8", 270)])
def test_probe_image_reports_display_size_after_exif(media: dict[str, Path], name: str, rotation: int) -> None:
    info = probe(media[name])
    assert (info.width, info.height, info.rotation) == (20, 40, rotation)


@pytest.mark.parametrize("name", ["mp4", "webm", "avi", "mkv", "mov", "ts"])
def test_probe_video_fields(media: dict[str, Path], name: str) -> None:
    info = probe(media[name])
    frames = 90 if name == "mp4" else 30
    assert info.kind == "video" and info.has_video and not info.has_audio
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(frames / 30, abs=0.05)
    assert info.frame_count == pytest.approx(frames, abs=1)


def test_probe_finds_duration_without_stream_or_container_duration(media: dict[str, Path]) -> None:
    import av

    with av.open(str(media["mkv_live"])) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    info = probe(media["mkv_live"])
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.frame_count == 30


def test_probe_portrait_phone_clip_is_reported_upright(media: dict[str, Path]) -> None:
    info = probe(media["portrait_phone"])
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    assert probe(media["upside_down"]).rotation == 180


@pytest.mark.parametrize(
    ("name", "fmt", "rate"),
    [
        ("wav", "wav", 16000),
        ("flac", "flac", 16000),
        ("mp3", "mp3", 22050),
        ("ogg", "ogg", 48000),
        ("m4a", "m4a", 16000),
    ],
)
def test_probe_audio_fields(media: dict[str, Path], name: str, fmt: str, rate: int) -> None:
    info = probe(media[name])
    assert (info.kind, info.format, info.sample_rate) == ("audio", fmt, rate)
    assert info.has_audio and not info.has_video and info.width is None
    assert info.duration is not None and 0.3 < info.duration < 0.8


def test_probe_mp4_with_only_audio_is_audio(media: dict[str, Path]) -> None:
    assert sniff_kind(media["aac_in_mp4"].read_bytes()[:64]) == ("video", "mp4")
    info = probe(media["aac_in_mp4"])
    assert (info.kind, info.format, info.has_video) == ("audio", "m4a", False)


def test_probe_real_dfdc_clip(real_videos: Path) -> None:
    info = probe(real_videos / "brtujopkby.mp4")
    assert (info.kind, info.format, info.codec) == ("video", "mp4", "h264")
    assert (info.width, info.height, info.rotation) == (1080, 1920, 0)
    assert info.frame_count == 300 and info.has_audio
    assert info.duration == pytest.approx(10.01, abs=0.01)
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.jpg"
    with pytest.raises(MissingFileError) as err:
        probe(path)
    assert str(err.value) == f"{path}: no such file"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaError, match="is a directory"):
        probe(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.touch()
    with pytest.raises(EmptyFileError) as err:
        probe(path)
    assert str(err.value) == f"{path}: file is empty"


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("shopping list\n" * 20)
    with pytest.raises(UnsupportedMediaError) as err:
        probe(path)
    assert str(err.value) == f"{path}: unsupported file type (not an image, video or audio file)"


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    with pytest.raises(UnsupportedMediaError):
        probe(path)


def test_mp4_header_then_garbage(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    with pytest.raises(CorruptMediaError, match=r"broken\.mp4: corrupt or truncated video"):
        probe(path)


def test_file_over_size_limit(media: dict[str, Path]) -> None:
    size = media["mp4"].stat().st_size
    assert size > 2048
    with pytest.raises(MediaTooLargeError, match=rf"file is too large \({size / 1024:.1f} KiB, limit 2.0 KiB\)"):
        probe(media["mp4"], MediaLimits(max_file_bytes=2048))


def test_video_over_duration_limit(media: dict[str, Path]) -> None:
    with pytest.raises(MediaTooLargeError, match=r"video is too long \(3.0s, limit 2.0s\)"):
        probe(media["mp4"], MediaLimits(max_video_seconds=2.0))


def test_video_over_frame_size_limit(media: dict[str, Path]) -> None:
    with pytest.raises(MediaTooLargeError, match=r"video frame is too large \(64x48"):
        probe(media["mp4"], MediaLimits(max_video_pixels_per_frame=1000))


def test_video_over_pixel_rate_limit(media: dict[str, Path]) -> None:
    # 64x48 at 30 fps = 92,160 pixels a second.
    with pytest.raises(
        MediaTooLargeError, match=r"too many pixels per second \(64x48 at 30 fps = 0.0922 Mpx/s, limit 0.05 Mpx/s\)"
    ):
        probe(media["mp4"], MediaLimits(max_video_pixel_rate=50_000))
    assert probe(media["mp4"], MediaLimits(max_video_pixel_rate=92_160)).fps == 30


def test_video_over_decoded_pixels_limit(media: dict[str, Path]) -> None:
    # 90 frames of 64x48 = 276,480 pixels to decode.
    with pytest.raises(MediaTooLargeError, match=r"too many pixels to decode \(64x48 x 90 frames = 0.276 Mpx, limit 0.2 Mpx\)"):
        probe(media["mp4"], MediaLimits(max_video_decoded_pixels=200_000))
    assert probe(media["mp4"], MediaLimits(max_video_decoded_pixels=276_480)).frame_count == 90


def test_default_limits_take_phone_8k_and_refuse_8k_at_120_fps() -> None:
    from fakescope.media.probe import CheckedFile, _check_pixel_rate

    file = CheckedFile("clip.mp4", Path("clip.mp4"), 1, b"")
    _check_pixel_rate(file, 7680, 4320, 30.0, 30 * 600, MediaLimits())  # ten minutes of phone 8K
    _check_pixel_rate(file, 1920, 1080, 60.0, 60 * 3 * 3600, MediaLimits())  # the longest 1080p60
    with pytest.raises(MediaTooLargeError, match="too many pixels per second"):
        _check_pixel_rate(file, 7680, 4320, 120.0, 240, MediaLimits())
    with pytest.raises(MediaTooLargeError, match="too many pixels to decode"):
        _check_pixel_rate(file, 3840, 2160, 60.0, 60 * 3600, MediaLimits())


def test_image_header_claiming_huge_size(tmp_path: Path, make_png: Callable[..., bytes]) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(make_png(30000, 30000))
    with pytest.raises(MediaTooLargeError) as err:
        probe(path)
    assert str(err.value) == f"{path}: image is too large (30000x30000 = 900 Mpx, limit 100 Mpx)"


def test_image_over_own_pixel_limit(media: dict[str, Path]) -> None:
    with pytest.raises(MediaTooLargeError, match=r"\(40x20 = 0.0008 Mpx, limit 0.0005 Mpx\)"):
        probe(media["png"], MediaLimits(max_image_pixels=500))


@pytest.fixture
def bomb(tmp_path: Path, make_png: Callable[..., bytes]) -> Path:
    """17 KB PNG that inflates to 12000x12000 pixels (144 Mpx, 432 MB as RGB)."""
    side = 12000
    rows = (b"\x00" + bytes(side // 8)) * side
    path = tmp_path / "bomb.png"
    path.write_bytes(make_png(side, side, bit_depth=1, color_type=0, idat=zlib.compress(rows, 9)))
    return path


def test_decompression_bomb_is_refused_before_decoding(bomb: Path) -> None:
    assert bomb.stat().st_size < 50_000
    with pytest.raises(MediaTooLargeError, match=r"12000x12000 = 144 Mpx, limit 100 Mpx"):
        probe(bomb)


def test_decompression_bomb_warning_does_not_escape_when_limit_allows(bomb: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = probe(bomb, MediaLimits(max_image_pixels=150_000_000))
    assert (info.width, info.height) == (12000, 12000)


def test_truncated_real_mp4_is_corrupt(tmp_path: Path, real_videos: Path) -> None:
    source = real_videos / "004.mp4"
    path = tmp_path / "cut.mp4"
    data = source.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 10])
    with pytest.raises(CorruptMediaError, match=r"cut\.mp4: corrupt or truncated video"):
        probe(path)


def test_corrupt_image(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"junk" * 10)
    with pytest.raises(CorruptMediaError) as err:
        probe(path)
    assert str(err.value).startswith(f"{path}: corrupt or unreadable image (")
    assert str(tmp_path) not in str(err.value)[len(str(path)) :]


def test_truncated_generated_mp4_is_corrupt(tmp_path: Path, media: dict[str, Path]) -> None:
    path = tmp_path / "cut.mp4"
    data = media["mp4"].read_bytes()
    path.write_bytes(data[: len(data) * 3 // 10])
    with pytest.raises(CorruptMediaError):
        probe(path)


@pytest.mark.parametrize(
    ("ccw", "clockwise"),
    [(0, 0), (-90, 90), (90, 270), (180, 180), (-180, 180), (-89.6, 90), (math.nan, 0)],
)
def test_display_rotation(ccw: float, clockwise: int) -> None:
    assert display_rotation(ccw) == clockwise
