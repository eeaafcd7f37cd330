from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from fakescope.errors import CorruptMediaError, MediaTooLargeError, UnsupportedMediaError
from fakescope.media import MediaLimits, probe, sample_frames, sample_timestamps, video_duration
from fakescope.media.video import choose_strategy, decode_side, decoded_pixels
from fakescope.media.video_decoding import rotate_upright

FrameNumber = Callable[[np.ndarray], int]


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_sample_timestamps_are_bin_centres() -> None:
    assert sample_timestamps(3.0, 3) == pytest.approx([0.5, 1.5, 2.5])
    assert sample_timestamps(1.0, 1) == pytest.approx([0.5])


@pytest.mark.parametrize("strategy", ["sequential", "seek", "auto"])
def test_uniform_sampling_order_count_and_content(media: dict[str, Path], frame_number: FrameNumber, strategy: str) -> None:
    frames = sample_frames(media["mp4"], 9, strategy=strategy)  # type: ignore[arg-type]
    # 90 frames at 30 fps: bin centres at (i + 0.5) / 3 s are frames 10 i + 5.
    assert [f.index for f in frames] == [10 * i + 5 for i in range(9)]
    assert [f.timestamp for f in frames] == pytest.approx([(10 * i + 5) / 30 for i in range(9)])
    assert [frame_number(f.image) for f in frames] == [f.index for f in frames]
    for frame in frames:
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags["C_CONTIGUOUS"]


def test_seek_and_sequential_agree_with_b_frames(media: dict[str, Path], frame_number: FrameNumber) -> None:
    sequential = sample_frames(media["mp4_gop10"], 16, strategy="sequential")
    seek = sample_frames(media["mp4_gop10"], 16, strategy="seek")
    assert len(sequential) == len(seek) == 16
    for a, b in zip(sequential, seek, strict=True):
        assert abs(a.index - b.index) <= 1
        assert abs(a.timestamp - b.timestamp) <= 1 / 30 + 1e-6
        assert frame_number(b.image) == b.index
    assert [f.index for f in sequential] == [math.ceil((i + 0.5) * 150 / 16 - 0.5) for i in range(16)]


@pytest.mark.parametrize("name", ["ts_10fps", "avi_10fps"])
def test_seek_lands_before_targets_without_a_keyframe_index(media: dict[str, Path], frame_number: FrameNumber, name: str) -> None:
    # 15 s at 10 fps: targets more than 2 s apart, so "seek" really seeks (MPEG-TS has no
    # index and its seeks can land after the target, which must be corrected).
    expected = [12, 37, 62, 87, 112, 137]
    for strategy in ("sequential", "seek"):
        frames = sample_frames(media[name], 6, strategy=strategy)  # type: ignore[arg-type]
        assert [frame_number(f.image) for f in frames] == expected
        assert [f.index for f in frames] == expected


def test_fewer_frames_than_requested_are_deduplicated(media: dict[str, Path], frame_number: FrameNumber) -> None:
    for strategy in ("sequential", "seek"):
        frames = sample_frames(media["short"], 32, strategy=strategy)  # type: ignore[arg-type]
        assert [f.index for f in frames] == list(range(10))
        assert [frame_number(f.image) for f in frames] == list(range(10))


@pytest.mark.parametrize("name", ["webm", "avi", "mkv", "mov", "ts", "mkv_live"])
def test_containers(media: dict[str, Path], frame_number: FrameNumber, name: str) -> None:
    frames = sample_frames(media[name], 5)
    # 30 frames, 5 bins of 6 frames: centres at frames 3, 9, 15, 21, 27.
    assert [frame_number(f.image) for f in frames] == [3, 9, 15, 21, 27]
    assert [f.index for f in frames] == [3, 9, 15, 21, 27]


def test_variable_frame_rate_takes_nearest_frames(media: dict[str, Path], frame_number: FrameNumber) -> None:
    times = _frame_times(media["vfr"])
    assert len(set(np.round(np.diff(times), 3))) == 2
    duration = video_duration(media["vfr"])
    for strategy in ("sequential", "seek"):
        frames = sample_frames(media["vfr"], 6, strategy=strategy)  # type: ignore[arg-type]
        targets = sample_timestamps(duration, 6)
        assert len(frames) == 6
        for frame, target in zip(frames, targets, strict=True):
            nearest = min(range(len(times)), key=lambda k: (abs(times[k] - target), k))
            assert frame_number(frame.image) == nearest
            assert frame.timestamp == pytest.approx(times[nearest], abs=1e-3)


def test_max_side_downscales_during_conversion(media: dict[str, Path]) -> None:
    frames = sample_frames(media["mp4"], 3, max_side=32)
    assert {f.image.shape for f in frames} == {(24, 32, 3)}
    assert sample_frames(media["mp4"], 1, max_side=500)[0].image.shape == (48, 64, 3)


def _write_wide_clip(path: Path, width: int, height: int, n: int = 6) -> Path:
    """`n` frames, frame i with a white bar at x = i * width / 8 (an eighth of the width wide)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            image = np.zeros((height, width, 3), np.uint8)
            image[:, i * width // 8 : (i + 1) * width // 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_frames_longer_than_the_decode_bound_are_scaled_in_the_decoder(tmp_path: Path) -> None:
    path = _write_wide_clip(tmp_path / "wide.mp4", 3840, 64)
    frames = sample_frames(path, 6)
    assert {f.image.shape for f in frames} == {(32, 1920, 3)}
    for i, frame in enumerate(frames):  # the picture is the frame's, halved
        xs = np.nonzero(frame.image[16].mean(axis=1) > 128)[0]
        assert abs(xs.min() - i * 240) <= 2 and abs(xs.max() - (i + 1) * 240) <= 2
    assert {f.image.shape for f in sample_frames(path, 2, limits=MediaLimits(max_decode_side=4000))} == {(64, 3840, 3)}


def test_frames_within_the_decode_bound_are_decoded_exactly(media: dict[str, Path]) -> None:
    from tests.conftest import EXAMPLES

    clip = EXAMPLES / "real_ffpp_866.mp4"  # 1920x1080: at the bound, so no scaling at all
    frames = sample_frames(clip, 3)
    wanted = {f.index for f in frames}
    with av.open(str(clip)) as container:
        plain = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted}
    assert [f.image.shape for f in frames] == [(1080, 1920, 3)] * 3
    assert all(np.array_equal(f.image, plain[f.index]) for f in frames)
    small = sample_frames(media["mp4"], 4)
    unbounded = MediaLimits(max_decode_side=100_000, decoded_pixel_budget=10**15)
    assert all(
        np.array_equal(a.image, b.image) for a, b in zip(small, sample_frames(media["mp4"], 4, limits=unbounded), strict=True)
    )


def test_frames_shrink_to_fit_the_decoded_pixel_budget(tmp_path: Path) -> None:
    path = _write_wide_clip(tmp_path / "clip.mp4", 512, 384)
    frames = sample_frames(path, 6, limits=MediaLimits(decoded_pixel_budget=6 * 256 * 192))
    assert {f.image.shape for f in frames} == {(192, 256, 3)}
    assert {f.image.shape for f in sample_frames(path, 6)} == {(384, 512, 3)}


def test_decode_side_bounds_the_pixels_of_the_frames_kept() -> None:
    assert decode_side(7680, 4320, 32) == 1920 and decoded_pixels(7680, 4320, 32, 1920) == 32 * 1920 * 1080
    assert decode_side(1920, 1080, 32) is None and decode_side(1080, 1920, 32) is None
    side = decode_side(3840, 2160, 256)  # 256 frames: scaled below 1920 to fit the budget
    assert side is not None and side < 1920
    assert decoded_pixels(3840, 2160, 256, side) <= MediaLimits().decoded_pixel_budget
    assert decoded_pixels(3840, 2160, 256, side + 8) > MediaLimits().decoded_pixel_budget
    assert decode_side(100_000, 100, 1, limits=MediaLimits(decoded_pixel_budget=1)) == 64


def _write_ts(path: Path, width: int, height: int, n: int, first_pts: int) -> bytes:
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 100, np.uint8), format="rgb24")
            frame.pts = first_pts + i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


def test_a_stream_growing_mid_way_is_held_to_its_announced_size(tmp_path: Path) -> None:
    # Two MPEG-TS streams back to back: 64x48 (what probe sees), then 640x480.
    path = tmp_path / "grows.ts"
    path.write_bytes(_write_ts(tmp_path / "a.ts", 64, 48, 20, 0) + _write_ts(tmp_path / "b.ts", 640, 480, 20, 20))
    info = probe(path)
    assert (info.width, info.height) == (64, 48)
    frames = sample_frames(info, 8)
    assert len(frames) == 8 and all(f.image.shape[0] * f.image.shape[1] <= 64 * 48 for f in frames)
    # Frames past the per-frame limit are refused by the decoder itself: only the small ones come back.
    small = sample_frames(info, 8, limits=MediaLimits(max_video_pixels_per_frame=64 * 48))
    assert 1 <= len(small) < 8 and all(f.timestamp < 2.0 for f in small)


def test_portrait_phone_clip_comes_back_upright(media: dict[str, Path]) -> None:
    frame = sample_frames(media["portrait_phone"], 1)[0]
    assert frame.image.shape == (64, 48, 3)
    # Frame 5 has its square at stored x=20..27, y=0..7; turned 90 degrees clockwise that
    # lands at rows 20..27 of the right-hand column band x=40..47.
    bright = frame.image.mean(axis=2) > 128
    ys, xs = np.nonzero(bright)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (20, 27, 40, 47)


def test_upside_down_clip_is_turned_half_way(media: dict[str, Path]) -> None:
    frame = sample_frames(media["upside_down"], 1, max_side=32)[0]
    assert frame.image.shape == (24, 32, 3)
    ys, xs = np.nonzero(frame.image.mean(axis=2) > 128)
    # Stored square of frame 5 at x=20..27, y=0..7 (scaled by 1/2): bottom, mirrored in x.
    assert ys.min() >= 18 and 32 - 14 <= xs.mean() <= 32 - 10


def test_rotate_upright_on_arrays() -> None:
    image = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    assert rotate_upright(image, 0) is image
    assert rotate_upright(image, 90)[:, :, 0].tolist() == [[3, 0], [4, 1], [5, 2]]
    assert rotate_upright(image, 180)[:, :, 0].tolist() == [[5, 4, 3], [2, 1, 0]]
    assert rotate_upright(image, 270)[:, :, 0].tolist() == [[2, 5], [1, 4], [0, 3]]
    assert rotate_upright(image, 90).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    ("frame_count", "interval", "expected"),
    [
        (None, 30, "sequential"),
        (300, 10, "sequential"),  # DFDC-length clip: 300 <= 12 x 32, decode it all
        (1800, None, "sequential"),  # no keyframe index
        (1800, 250, "sequential"),  # keyframes sparser than the samples
        (1800, 30, "seek"),
    ],
)
def test_choose_strategy(frame_count: int | None, interval: float | None, expected: str) -> None:
    assert choose_strategy(frame_count, 32, interval) == expected


def test_real_c40_clip(real_videos_more: Path) -> None:
    path = real_videos_more / "ff_original_720.mp4"
    frames = sample_frames(path, 8, max_side=160)
    assert len(frames) == 8
    assert {f.image.shape for f in frames} == {(117, 160, 3)}
    # 564 frames at 30 fps: bin centres at frames 35.25 + 70.5 i.
    assert [f.index for f in frames] == [round(35.25 + 70.5 * i) for i in range(8)]
    assert all(f.image.std() > 10 for f in frames)


def test_real_portrait_dfdc_clip_stays_portrait(real_videos: Path) -> None:
    frames = sample_frames(real_videos / "yhffcuhhjy.mp4", 2, max_side=128)
    assert {f.image.shape for f in frames} == {(128, 72, 3)}


def test_truncated_mp4_keeps_decoded_frames(tmp_path: Path, media: dict[str, Path], frame_number: FrameNumber) -> None:
    path = tmp_path / "cut.mp4"
    data = media["faststart"].read_bytes()
    path.write_bytes(data[: len(data) * 7 // 10])
    for strategy in ("sequential", "seek"):
        frames = sample_frames(path, 10, strategy=strategy)  # type: ignore[arg-type]
        assert 2 <= len(frames) < 10
        assert [frame_number(f.image) for f in frames] == [f.index for f in frames]
        assert [f.timestamp for f in frames] == sorted(f.timestamp for f in frames)


def test_damaged_middle_keeps_going_or_stops_cleanly(tmp_path: Path, media: dict[str, Path]) -> None:
    data = bytearray(media["faststart"].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8).tobytes()
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    frames = sample_frames(path, 10)
    assert len(frames) >= 4
    assert frames[0].index == 7


def test_truncated_real_clip_is_corrupt_not_a_traceback(tmp_path: Path, real_videos: Path) -> None:
    path = tmp_path / "cut.mp4"
    data = (real_videos / "004.mp4").read_bytes()
    path.write_bytes(data[: len(data) * 3 // 10])
    with pytest.raises(CorruptMediaError):
        sample_frames(path, 4)


def test_probe_result_can_be_passed_instead_of_a_path(media: dict[str, Path], frame_number: FrameNumber) -> None:
    info = probe(media["mp4"])
    frames = sample_frames(info, 3)
    assert [frame_number(f.image) for f in frames] == [15, 45, 75]
    with pytest.raises(UnsupportedMediaError, match="not a video"):
        sample_frames(probe(media["png"]), 3)


def test_image_is_not_a_video(media: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedMediaError, match=r"picture\.png: not a video \(image file\)"):
        sample_frames(media["png"])


def test_limits_apply_to_sampling(media: dict[str, Path]) -> None:
    with pytest.raises(MediaTooLargeError):
        sample_frames(media["mp4"], 4, limits=MediaLimits(max_video_seconds=1.0))


def test_bad_arguments(media: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="num_frames"):
        sample_frames(media["mp4"], 0)
    with pytest.raises(ValueError, match="strategy"):
        sample_frames(media["mp4"], 4, strategy="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_side"):
        sample_frames(media["mp4"], 4, max_side=0)


def test_video_duration(media: dict[str, Path]) -> None:
    assert video_duration(media["mp4"]) == pytest.approx(3.0, abs=0.01)
    assert video_duration(media["mkv_live"]) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("num_frames", [7, 16])
def test_sequential_skips_unneeded_frames_and_still_takes_the_nearest(
    media: dict[str, Path], frame_number: FrameNumber, caplog: pytest.LogCaptureFixture, num_frames: int
) -> None:
    # x264 "veryfast" makes B-frames nothing refers to: sequential sampling leaves them undecoded
    # unless they are near a target, and must still return exactly the frames nearest the targets.
    path = media["mp4_gop10"]
    times = _frame_times(path)
    targets = sample_timestamps(video_duration(path), num_frames)
    expected = sorted({min(range(len(times)), key=lambda k: (abs(times[k] - t), k)) for t in targets})
    with caplog.at_level(logging.DEBUG, logger="fakescope.media.video_decoding"):
        frames = sample_frames(path, num_frames, strategy="sequential")
    assert [frame_number(f.image) for f in frames] == expected
    assert [f.index for f in frames] == expected
    assert [f.timestamp for f in frames] == pytest.approx([times[k] for k in expected], abs=1e-3)
    (message,) = [r.getMessage() for r in caplog.records if "decoded" in r.getMessage()]
    decoded, up_to = int(message.split("decoded ")[1].split()[0]), float(message.split("up to ")[1].split()[0])
    assert decoded < sum(t <= up_to + 1e-6 for t in times)
    with av.open(str(path)) as container:  # the clip has frames a decoder may drop
        container.streams.video[0].codec_context.skip_frame = "NONREF"
        assert sum(1 for _ in container.decode(video=0)) < len(times)


@pytest.mark.parametrize("seconds", [1.0, 40.0])
def test_copy_clip_cuts_or_loops_real_footage_to_a_length(tmp_path: Path, seconds: float) -> None:
    from fakescope.media.clips import copy_clip
    from tests.conftest import EXAMPLES

    source = EXAMPLES / "real_ffpp_866.mp4"  # 17 s: cut at 1 s, looped past its end for 40 s
    out = copy_clip(source, tmp_path / "clip.mp4", seconds)
    info = probe(out)
    assert info.kind == "video" and not info.has_audio
    assert info.duration == pytest.approx(seconds, abs=0.2)
    frames = sample_frames(info, 4)
    assert len(frames) == 4 and frames[0].image.shape == sample_frames(probe(source), 1)[0].image.shape


def test_copy_clip_of_a_file_without_video_is_a_clear_error(tmp_path: Path) -> None:
    from fakescope.media.clips import copy_clip
    from tests.conftest import EXAMPLES

    with pytest.raises(UnsupportedMediaError, match="no video stream to copy"):
        copy_clip(EXAMPLES / "speech_real_fsdd_theo.wav", tmp_path / "x.mp4", 1.0)
