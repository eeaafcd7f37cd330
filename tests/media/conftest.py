"""Small media made on the fly: every frame shows where it sits in the clip.

Video frames carry an 8x8 white square on black at a position that encodes the frame
number (`frame_number` reads it back), so a test can check that the picture returned for
a timestamp really is that frame, whatever the container or the strategy.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared

W, H, FPS = 64, 48, 30
_COLS = 14
# The display matrix an iPhone writes for a portrait clip (legacy rotate tag 90).
PORTRAIT_PHONE_MATRIX = (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)


def numbered_frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Black RGB frame with the white square at the position that encodes `i`."""
    image = np.zeros((height, width, 3), np.uint8)
    x, y = 4 * (i % _COLS), 4 * (i // _COLS)
    image[y : y + 8, x : x + 8] = 255
    return image


def read_frame_number(image: np.ndarray) -> int:
    ys, xs = np.nonzero(image.mean(axis=2) > 128)
    assert len(xs) > 20, "no square found in frame"
    return int(round((ys.mean() - 3.5) / 4)) * _COLS + int(round((xs.mean() - 3.5) / 4))


def write_video(
    path: Path,
    n: int = 30,
    *,
    codec: str = "libx264",
    fmt: str | None = None,
    gop: int | None = None,
    pts_ms: Sequence[int] | None = None,
    matrix: Sequence[int] | None = None,
    rotation: float | None = None,
    options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
    fps: int = FPS,
) -> Path:
    """Encode `n` numbered frames; `pts_ms` gives variable frame times in milliseconds."""
    if codec_options is None:
        defaults = {"libx264": {"crf": "12", "preset": "ultrafast"}, "libvpx": {"crf": "4", "b": "2M"}}
        codec_options = defaults.get(codec, {})
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=codec_options)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if codec == "mpeg4":
            stream.codec_context.bit_rate = 2_000_000
        if gop is not None:
            stream.codec_context.gop_size = gop
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if matrix is not None:
            stream.set_display_matrix(list(matrix))
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio(path: Path, codec: str, rate: int = 16000, seconds: float = 0.5, fmt: str | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        sample_format = stream.codec_context.codec.audio_formats[0].name
        dtype = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}[sample_format.rstrip("p")]
        chunk = 1152
        for i in range(int(seconds * rate) // chunk + 1):
            wave = 0.3 * np.sin(2 * np.pi * 440 * (np.arange(chunk) + i * chunk) / rate)
            if dtype in (np.int16, np.int32):
                wave = wave * np.iinfo(dtype).max
            frame = av.AudioFrame.from_ndarray(wave.astype(dtype)[None], format=sample_format, layout="mono")
            frame.sample_rate, frame.pts = rate, i * chunk
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, *, bit_depth: int = 8, color_type: int = 2, idat: bytes | None = None) -> bytes:
    """A hand-written PNG: IHDR with any size, optional pixel data (omitted: header only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = png_chunk(b"IHDR", ihdr) + (png_chunk(b"IDAT", idat) if idat is not None else b"")
    return b"\x89PNG\r\n\x1a\n" + body + png_chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each kind of file, made once per session (about a second in all)."""
    d = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}

    files["mp4"] = write_video(d / "clip.mp4", 90)
    files["mp4_gop10"] = write_video(  # veryfast keeps B-frames, so decode order != display order
        d / "gop10.mp4", 150, gop=10, codec_options={"crf": "12", "preset": "veryfast"}
    )
    files["webm"] = write_video(d / "clip.webm", 30, codec="libvpx")
    files["mkv"] = write_video(d / "clip.mkv", 30)
    files["mkv_live"] = write_video(d / "live.mkv", 30, options={"live": "1"})
    files["avi"] = write_video(d / "clip.avi", 30, codec="mpeg4")
    files["mov"] = write_video(d / "clip.mov", 30, codec="mpeg4")
    files["ts"] = write_video(d / "clip.ts", 30, fmt="mpegts")
    files["ts_10fps"] = write_video(d / "slow.ts", 150, fmt="mpegts", gop=10, fps=10)
    files["avi_10fps"] = write_video(d / "slow.avi", 150, codec="mpeg4", gop=10, fps=10)
    files["short"] = write_video(d / "short.mp4", 10)
    files["portrait_phone"] = write_video(d / "portrait.mp4", 10, matrix=PORTRAIT_PHONE_MATRIX)
    files["upside_down"] = write_video(d / "upside.mp4", 10, rotation=180)
    gaps = [60 if i % 2 == 0 else 20 for i in range(29)]
    files["vfr"] = write_video(d / "vfr.mkv", 30, pts_ms=[0, *np.cumsum(gaps).tolist()])
    files["faststart"] = write_video(d / "faststart.mp4", 150, options={"movflags": "faststart"})

    files["wav"] = write_audio(d / "tone.wav", "pcm_s16le")
    files["flac"] = write_audio(d / "tone.flac", "flac")
    files["mp3"] = write_audio(d / "tone.mp3", "libmp3lame", rate=22050)
    files["ogg"] = write_audio(d / "tone.ogg", "libopus", rate=48000)
    files["m4a"] = write_audio(d / "tone.m4a", "aac")
    files["aac_in_mp4"] = write_audio(d / "voice.mp4", "aac")

    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:10, :10] = (255, 0, 0)
    for ext in ("png", "bmp", "gif", "tiff", "webp"):
        files[ext] = d / f"picture.{ext}"
        Image.fromarray(rgb).save(files[ext])
    files["jpeg"] = d / "picture.jpg"
    Image.fromarray(rgb).save(files["jpeg"], quality=95)
    files["jpeg_exif6"] = d / "rotated.jpg"
    Image.fromarray(rgb).save(files["jpeg_exif6"], quality=95, exif=_exif(6))
    files["png_exif8"] = d / "rotated.png"
    Image.fromarray(rgb).save(files["png_exif8"], exif=_exif(8))
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[0, 1] = (0, 0, 0, 128)
    files["png_alpha"] = d / "alpha.png"
    Image.fromarray(rgba).save(files["png_alpha"])
    files["png16"] = d / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(files["png16"])
    files["cmyk"] = d / "print.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(files["cmyk"], quality=95)
    files["palette"] = d / "palette.gif"
    Image.new("P", (8, 8), 3).save(files["palette"])
    files["gray"] = d / "gray.png"
    Image.new("L", (8, 6), 77).save(files["gray"])
    return files


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.fixture
def frame_number() -> Callable[[np.ndarray], int]:
    """Reads the frame number drawn by `numbered_frame` back from an RGB image."""
    return read_frame_number


@pytest.fixture
def make_png() -> Callable[..., bytes]:
    return png_bytes


@pytest.fixture
def real_videos() -> Path:
    """The shared labelled clips, read in place (a missing ../shared/data fails the test)."""
    return shared("videos")


@pytest.fixture
def real_videos_more() -> Path:
    return shared("videos_more")
