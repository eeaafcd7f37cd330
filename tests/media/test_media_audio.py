from __future__ import annotations

import io
import sys
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from fakescope.errors import (
    CorruptMediaError,
    EmptyFileError,
    FakescopeError,
    MediaTooLargeError,
    MissingFileError,
    NoAudioError,
    UnsupportedMediaError,
)
from fakescope.media import (
    SAMPLE_RATE,
    Audio,
    MediaLimits,
    decode_audio,
    encode_audio,
    is_silent,
    load_audio,
    normalize_loudness,
    prepare_speech,
    probe,
    resample,
    speech_windows,
    trim_silence,
)
from fakescope.media.audio import FRAME_SECONDS, frame_dbfs, loudness_reference, plan_speech, speech_window_batches
from fakescope.media.audio_decoding import read_source
from tests.conftest import EXAMPLES, shared
from tests.media.conftest import numbered_frame

TONE_HZ = 440.0


def signal(rate: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    """A 440 Hz tone of amplitude `amp` with a 6x quieter 200 Hz - 3 kHz chirp on top: one clear spectral peak."""
    t = np.arange(round(seconds * rate)) / rate
    chirp = np.sin(2 * np.pi * (200 * t + (2800 / (2 * seconds)) * t**2))
    return (amp * (np.sin(2 * np.pi * TONE_HZ * t) + chirp / 6)).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


def rms_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64))))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_av_audio(path: Path, channels: np.ndarray, rate: int, codec: str, sample_format: str) -> Path:
    """A file written by FFmpeg from (channels, n) float samples, in the codec's own sample format."""
    layout = {1: "mono", 2: "stereo"}[len(channels)]
    scale = 32767 if sample_format.startswith("s16") else 1.0
    dtype = np.int16 if sample_format.startswith("s16") else np.float32
    data = (channels * scale).astype(dtype)
    if not sample_format.endswith("p"):
        data = data.T.reshape(1, -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def write_video(path: Path, *, with_audio: bool, seconds: float = 1.0) -> Path:
    """A 64x64 h264 clip at 10 fps, with a 440 Hz AAC track when asked."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        packets = []
        for i in range(round(10 * seconds)):
            frame = av.VideoFrame.from_ndarray(numbered_frame(i, 64, 64), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            packets += video.encode(frame)
        packets += video.encode(None)
        if with_audio:
            audio = container.add_stream("aac", rate=44100)
            audio.layout = "mono"
            frame = av.AudioFrame.from_ndarray(signal(44100, seconds)[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            packets += [*audio.encode(frame), *audio.encode(None)]
        for packet in packets:
            container.mux(packet)
    return path


# Encoder padding that survives decoding: AAC keeps up to one 1024-sample frame at the end.
TOLERANCE = {"wav": 0.001, "flac": 0.001, "mp3": 0.01, "opus": 0.01, "aac": 0.05}


@pytest.mark.parametrize(
    ("fmt", "rate", "suffix"),
    [
        ("wav", 8000, ".wav"),
        ("wav", 44100, ".wav"),
        ("flac", 22050, ".flac"),
        ("flac", 48000, ".flac"),
        ("mp3", 44100, ".mp3"),
        ("mp3", 8000, ".mp3"),
        ("opus", 48000, ".ogg"),
        ("opus", 22050, ".opus"),
        ("opus", 16000, ".ogg"),
        ("aac", 44100, ".m4a"),
        ("aac", 22050, ".m4a"),
    ],
)
def test_every_format_decodes_to_16k_mono_with_the_tone(tmp_path: Path, fmt: str, rate: int, suffix: str) -> None:
    path = write(tmp_path / f"tone{suffix}", encode_audio(signal(rate, 1.5), rate, fmt))
    assert probe(path).kind == "audio"
    audio = load_audio(path)
    assert audio.sample_rate == SAMPLE_RATE and audio.start == 0.0
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(1.5, abs=TOLERANCE[fmt])
    assert dominant_hz(audio.samples, SAMPLE_RATE) == pytest.approx(TONE_HZ, abs=2)
    assert rms_db(audio.samples[1600:-1600]) == pytest.approx(rms_db(signal(rate, 1.5)), abs=1.0)
    if fmt != "opus":  # Opus always decodes at one of its own rates
        assert audio.source_rate == rate


def test_float_stereo_wav_is_averaged_to_mono(tmp_path: Path) -> None:
    tone = signal(44100, 1.0, amp=0.5)
    path = tmp_path / "float.wav"
    sf.write(path, np.stack([tone, 0.2 * tone], axis=1), 44100, subtype="FLOAT")
    samples, rate = decode_audio(path, sample_rate=None)
    assert rate == 44100
    np.testing.assert_allclose(samples, 0.6 * tone, atol=1e-6)


@pytest.mark.parametrize(("codec", "sample_format", "suffix"), [("pcm_s16le", "s16", ".mkv"), ("libmp3lame", "fltp", ".mp3")])
def test_ffmpeg_packed_int_and_planar_float_stereo_average_to_mono(
    tmp_path: Path, codec: str, sample_format: str, suffix: str
) -> None:
    tone = signal(22050, 1.0, amp=0.4)
    path = write_av_audio(tmp_path / f"stereo{suffix}", np.stack([tone, -0.5 * tone]), 22050, codec, sample_format)
    samples, rate = decode_audio(path, sample_rate=None)
    assert rate == 22050 and len(samples) == pytest.approx(22050, abs=30)
    if codec == "pcm_s16le":  # lossless: exactly (L + R) / 2
        np.testing.assert_allclose(samples, 0.25 * tone, atol=2e-4)
    assert np.abs(samples).max() == pytest.approx(0.25 * np.abs(tone).max(), rel=0.1)
    assert dominant_hz(samples, rate) == pytest.approx(TONE_HZ, abs=2)


def test_a_rate_change_mid_stream_is_resampled_to_the_first_rate() -> None:
    joined = encode_audio(signal(16000, 1.0), 16000, "mp3") + encode_audio(signal(22050, 1.0), 22050, "mp3")
    samples, rate = decode_audio(joined, sample_rate=None)
    assert rate == 16000 and 32000 <= len(samples) < 34000  # plus the second file's header frame and padding
    assert dominant_hz(samples[-16000:], rate) == pytest.approx(TONE_HZ, abs=2)  # not 606 Hz


def test_kind_comes_from_content_not_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "actually_mp3.wav", encode_audio(signal(22050, 1.0), 22050, "mp3"))
    info = probe(path)
    assert (info.kind, info.format) == ("audio", "mp3")
    audio = load_audio(path)
    assert audio.duration == pytest.approx(1.0, abs=0.01)
    assert dominant_hz(audio.samples, SAMPLE_RATE) == pytest.approx(TONE_HZ, abs=2)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_decode_audio_takes_bytes_and_streams(fmt: str) -> None:
    data = encode_audio(signal(16000, 1.0), 16000, fmt)
    from_bytes, rate = decode_audio(data)
    assert rate == SAMPLE_RATE and len(from_bytes) == pytest.approx(16000, abs=10)
    from_stream, _ = decode_audio(io.BytesIO(data))
    np.testing.assert_array_equal(from_bytes, from_stream)


def test_encode_audio_opus_at_16k_and_its_aliases() -> None:
    tone = signal(16000, 1.0)
    for fmt in ("opus", "ogg", "OGG"):
        data = encode_audio(tone, 16000, fmt, bitrate=24_000)
        assert data.startswith(b"OggS") and b"OpusHead" in data[:200]
        samples, rate = decode_audio(data)
        assert rate == 16000 and dominant_hz(samples, rate) == pytest.approx(TONE_HZ, abs=2)
    assert encode_audio(tone, 16000, "m4a")[4:12] == b"ftypM4A "


def test_lower_bitrate_gives_a_smaller_file() -> None:
    tone = signal(16000, 2.0)
    assert len(encode_audio(tone, 16000, "mp3", bitrate=32_000)) < len(encode_audio(tone, 16000, "mp3", bitrate=128_000))


def test_encode_audio_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        encode_audio(signal(16000, 0.1), 16000, "wma")
    for bad in (np.zeros((100, 2), np.float32), np.zeros(0, np.float32)):
        with pytest.raises(ValueError, match="non-empty mono"):
            encode_audio(bad, 16000, "mp3")


def test_video_audio_track_is_loaded(tmp_path: Path) -> None:
    path = write_video(tmp_path / "talk.mp4", with_audio=True)
    assert probe(path).kind == "video"
    audio = load_audio(path)
    assert audio.source_rate == 44100 and audio.sample_rate == SAMPLE_RATE
    assert audio.duration == pytest.approx(1.0, abs=0.05)
    assert dominant_hz(audio.samples, SAMPLE_RATE) == pytest.approx(TONE_HZ, abs=2)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "m4a", "video"])
def test_probed_file_is_decoded_without_sniffing_it_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    # The Detector probes first and hands the MediaInfo on: loading must pick the decoder from it,
    # never check or sniff the file again, and give exactly the samples a fresh load gives.
    if fmt == "video":
        path = write_video(tmp_path / "talk.mp4", with_audio=True)
    else:
        path = write(tmp_path / f"tone.{fmt}", encode_audio(signal(22050, 1.0), 22050, fmt))
    info = probe(path)
    fresh, decoded = load_audio(path), decode_audio(path)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a probed file was checked or sniffed again")

    for name in (
        "fakescope.media.audio_decoding",
        "fakescope.media.probe",
    ):  # by module: `fakescope.media.probe` is also the function
        monkeypatch.setattr(sys.modules[name], "sniff_kind", refuse)
        monkeypatch.setattr(sys.modules[name], "check_file", refuse)
    audio = load_audio(path, info=info)
    np.testing.assert_array_equal(audio.samples, fresh.samples)
    np.testing.assert_array_equal(audio.samples, decoded[0])
    assert (audio.sample_rate, audio.source_rate) == (fresh.sample_rate, fresh.source_rate)


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    path = write_video(tmp_path / "mute.mp4", with_audio=False)
    with pytest.raises(NoAudioError, match=r"^.*mute\.mp4: no audio track$"):
        load_audio(path)
    with pytest.raises(NoAudioError, match="mute.mp4: no audio track"):
        decode_audio(path)
    with pytest.raises(NoAudioError, match="real_ffpp_866.mp4: no audio track"):
        load_audio(EXAMPLES / "real_ffpp_866.mp4")


def test_image_has_no_audio(tmp_path: Path, make_png) -> None:
    path = write(tmp_path / "still.png", make_png(4, 4, idat=b"x"))
    for call in (load_audio, decode_audio):
        with pytest.raises(NoAudioError, match=r"still\.png: no audio track \(image file\)$"):
            call(path)


def _corrupt_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    mp3 = encode_audio(signal(22050, 1.0), 22050, "mp3")
    return {
        "wav_header": write(tmp_path / "noise.wav", b"RIFF\x24\x4e\x00\x00WAVE" + noise),
        "id3_header": write(tmp_path / "noise.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + noise),
        "ogg_header": write(tmp_path / "noise.ogg", b"OggS" + noise),
        "truncated_mp3": write(tmp_path / "cut.mp3", mp3[:60]),
        "truncated_m4a": write(tmp_path / "cut.m4a", encode_audio(signal(22050, 1.0), 22050, "aac")[:300]),
        "truncated_flac": write(tmp_path / "cut.flac", encode_audio(signal(22050, 1.0), 22050, "flac")[:50]),
    }


@pytest.mark.parametrize("case", ["wav_header", "id3_header", "ogg_header", "truncated_mp3", "truncated_m4a", "truncated_flac"])
def test_corrupt_audio_is_a_clear_error(tmp_path: Path, case: str) -> None:
    path = _corrupt_files(tmp_path)[case]
    for call in (load_audio, decode_audio):
        with pytest.raises(CorruptMediaError) as info:
            call(path)
        assert str(info.value).startswith(f"{path}: corrupt or truncated")
        assert "\n" not in str(info.value)
    with pytest.raises(CorruptMediaError, match=r"^clip\.bin: corrupt or truncated"):
        decode_audio(path.read_bytes(), name="clip.bin")


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_a_cut_off_tail_still_gives_the_audio_before_it(tmp_path: Path, fmt: str) -> None:
    data = encode_audio(signal(16000, 2.0), 16000, fmt)
    audio = load_audio(write(tmp_path / f"half.{fmt}", data[: len(data) // 2]))
    assert 0.5 < audio.duration < 1.2
    assert dominant_hz(audio.samples, SAMPLE_RATE) == pytest.approx(TONE_HZ, abs=3)


def test_a_file_without_samples_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    for call in (load_audio, decode_audio):
        with pytest.raises(CorruptMediaError, match=r"nothing\.wav: corrupt or truncated audio \(no decodable samples\)$"):
            call(path)


def test_missing_empty_unsupported_and_too_big(tmp_path: Path) -> None:
    cases: list[tuple[Path | bytes, type[FakescopeError], str]] = [
        (tmp_path / "gone.wav", MissingFileError, "gone.wav: no such file"),
        (write(tmp_path / "empty.mp3", b""), EmptyFileError, "empty.mp3: file is empty"),
        (write(tmp_path / "notes.wav", b"just some text\n" * 20), UnsupportedMediaError, "notes.wav: unsupported file type"),
    ]
    for source, error, message in cases:
        for call in (load_audio, decode_audio):
            with pytest.raises(error, match=message):
                call(source)
    with pytest.raises(EmptyFileError, match="^audio: file is empty$"):
        decode_audio(b"")
    big = write(tmp_path / "big.wav", encode_audio(signal(16000, 1.0), 16000, "wav"))
    with pytest.raises(MediaTooLargeError, match="big.wav: file is too large"):
        load_audio(big, limits=MediaLimits(max_file_bytes=1000))


def test_too_long_audio_is_refused_before_and_while_decoding(tmp_path: Path) -> None:
    wav = write(tmp_path / "long.wav", encode_audio(signal(8000, 3.0), 8000, "wav"))
    mp3 = write(tmp_path / "long.mp3", encode_audio(signal(8000, 3.0), 8000, "mp3"))
    for path in (wav, mp3):
        with pytest.raises(MediaTooLargeError, match=rf"{path.name}: audio is too long"):
            load_audio(path, limits=MediaLimits(max_video_seconds=2.0))
        # The guard inside the decoders, for streams that state no duration up front.
        with pytest.raises(MediaTooLargeError, match=rf"{path.name}: audio is too long"):
            read_source(path, None, SAMPLE_RATE, max_seconds=2.0)
        assert load_audio(path, limits=MediaLimits(max_video_seconds=4.0)).duration == pytest.approx(3.0, abs=0.01)


def _audio(samples: np.ndarray, start: float = 0.0) -> Audio:
    return Audio(samples.astype(np.float32), SAMPLE_RATE, SAMPLE_RATE, start)


def test_silence_only_trims_to_nothing() -> None:
    zeros = np.zeros(SAMPLE_RATE, np.float32)
    hiss = np.random.default_rng(1).normal(0, 10 ** (-80 / 20), SAMPLE_RATE).astype(np.float32)
    for samples in (zeros, hiss, zeros[:0]):
        assert is_silent(samples)
        trimmed = trim_silence(_audio(samples, start=2.0))
        assert len(trimmed.samples) == 0 and trimmed.duration == 0.0
        assert len(prepare_speech(_audio(samples)).samples) == 0
    assert not is_silent(signal(SAMPLE_RATE, 0.1))


def test_trim_silence_keeps_the_sound_and_its_file_time() -> None:
    tone = signal(SAMPLE_RATE, 1.5)
    gap = np.zeros(SAMPLE_RATE, np.float32)
    trimmed = trim_silence(_audio(np.concatenate([gap, tone, gap]), start=10.0), margin=0.05)
    assert trimmed.start == pytest.approx(10.0 + 1.0 - 0.05, abs=0.021)
    assert trimmed.duration == pytest.approx(1.5 + 2 * 0.05, abs=0.041)
    offset = round((trimmed.start - 10.0) * SAMPLE_RATE)
    np.testing.assert_array_equal(trimmed.samples, np.concatenate([gap, tone, gap])[offset : offset + len(trimmed.samples)])
    untouched = trim_silence(_audio(tone))
    assert untouched.start == 0.0 and len(untouched.samples) == len(tone)


def test_trim_silence_threshold_follows_the_loudest_frame() -> None:
    faint_then_loud = np.concatenate([signal(SAMPLE_RATE, 1.0, amp=0.01), signal(SAMPLE_RATE, 1.0)])  # 30 dB apart
    trimmed = trim_silence(_audio(faint_then_loud), top_db=20.0, margin=0.0)
    assert trimmed.start == pytest.approx(1.0, abs=0.021)
    assert len(trim_silence(_audio(faint_then_loud), top_db=40.0).samples) == 2 * SAMPLE_RATE


def test_normalize_loudness_hits_target_and_respects_peak() -> None:
    for amp in (0.01, 0.3, 0.9):
        out = normalize_loudness(signal(SAMPLE_RATE, 1.0, amp=amp), target_dbfs=-23.0)
        assert out.dtype == np.float32
        assert rms_db(out) == pytest.approx(-23.0, abs=0.5)
    speech_with_pause = np.concatenate([signal(SAMPLE_RATE, 1.0), np.zeros(3 * SAMPLE_RATE, np.float32)])
    out = normalize_loudness(speech_with_pause, target_dbfs=-20.0)
    assert rms_db(out[:SAMPLE_RATE]) == pytest.approx(-20.0, abs=0.5)  # the pause does not count
    clicks = np.zeros(SAMPLE_RATE, np.float32)
    clicks[::1000] = 0.05
    limited = normalize_loudness(clicks, target_dbfs=-10.0, peak=0.9)
    assert np.abs(limited).max() == pytest.approx(0.9, abs=1e-6)
    silent = np.zeros(100, np.float32)
    assert normalize_loudness(silent) is silent


def test_prepare_speech_trims_then_normalizes() -> None:
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    prepared = prepare_speech(_audio(np.concatenate([gap, signal(SAMPLE_RATE, 1.0, amp=0.02), gap])))
    assert prepared.start == pytest.approx(0.45, abs=0.021)
    assert rms_db(prepared.samples[1000:-1000]) == pytest.approx(-23.0, abs=0.5)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1.0, [(0.0, 1.0)]),
        (4.0, [(0.0, 4.0)]),
        (5.0, [(0.0, 4.0), (1.0, 5.0)]),
        (10.0, [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]),
        (11.0, [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0), (7.0, 11.0)]),
    ],
)
def test_speech_windows_cover_the_clip_without_padding(seconds: float, expected: list[tuple[float, float]]) -> None:
    samples = np.arange(round(seconds * SAMPLE_RATE), dtype=np.float32)
    windows, times = speech_windows(_audio(samples, start=3.0))
    assert len(times) == len(expected)
    assert np.array(times) == pytest.approx(np.array(expected) + 3.0)
    assert windows.shape == (len(expected), round(min(seconds, 4.0) * SAMPLE_RATE))
    assert windows.dtype == np.float32
    for window, (a, _) in zip(windows, expected, strict=True):
        assert window[0] == a * SAMPLE_RATE  # each window holds the samples its times say


def test_speech_windows_refuse_empty_audio() -> None:
    with pytest.raises(ValueError, match="empty"):
        speech_windows(_audio(np.zeros(0, np.float32)))


def test_resample_round_trip_keeps_the_tone() -> None:
    tone = signal(44100, 1.0)
    down = resample(tone, 44100, 16000)
    assert down.dtype == np.float32 and len(down) == 16000
    back = resample(down, 16000, 44100)
    assert len(back) == 44100
    assert dominant_hz(back, 44100) == pytest.approx(TONE_HZ, abs=2)
    assert np.abs(back[2000:-2000] - tone[2000:-2000]).max() < 0.02  # the chirp stays below 8 kHz
    assert resample(tone, 16000, 16000) is tone


@pytest.mark.parametrize("decoder", ["soundfile", "ffmpeg"])
def test_nan_and_inf_samples_are_read_as_zero_and_counted(tmp_path: Path, decoder: str) -> None:
    """Was: one NaN made every frame level NaN (and soxr smeared it), so the recording was "silence only"."""
    tone = signal(44100, 1.0)
    where = [100, 20000, 30000, 40000]
    bad = np.stack([tone, tone])
    bad[0, where] = [np.nan, np.inf, -np.inf, 3e38]  # one bad channel must not poison the average
    bad[1, 40000] = 3e38  # near the largest float32: the channel sum would overflow to Inf
    zeroed = np.where(np.isfinite(bad) & (np.abs(bad) < 1e30), bad, 0.0).astype(np.float32)
    paths = {}
    for name, stereo in (("bad", bad), ("zeroed", zeroed)):
        if decoder == "soundfile":
            paths[name] = tmp_path / f"{name}.wav"
            sf.write(paths[name], stereo.T, 44100, subtype="FLOAT")
        else:
            paths[name] = write_av_audio(tmp_path / f"{name}.mka", stereo, 44100, "pcm_f32le", "flt")
    audio, reference = load_audio(paths["bad"]), load_audio(paths["zeroed"])
    assert audio.invalid_samples == 5 and reference.invalid_samples == 0
    assert np.isfinite(audio.samples).all()
    np.testing.assert_array_equal(audio.samples, reference.samples)
    samples, rate = decode_audio(paths["bad"], sample_rate=None)
    assert rate == 44100 and np.isfinite(samples).all()


def speech_like(seconds: float, amp: float) -> np.ndarray:
    """Half a second of silence, tone bursts of 0.3 s with 0.1 s gaps, half a second of silence."""
    body = signal(SAMPLE_RATE, seconds, amp=amp)
    body[(np.arange(len(body)) // (SAMPLE_RATE // 10)) % 4 == 3] = 0.0
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    return np.concatenate([gap, body, gap])


def with_click(samples: np.ndarray, at: float, seconds: float = 0.02) -> np.ndarray:
    out = samples.copy()
    start, n = round(at * SAMPLE_RATE), round(seconds * SAMPLE_RATE)
    out[start : start + n] = np.where(np.arange(n) % 2, 1.0, -1.0)  # full scale
    return out


def test_a_full_scale_click_does_not_make_quiet_speech_count_as_silence() -> None:
    """Was: the loudest frame set the floor, so one 20 ms click 40 dB over quiet speech left only the click."""
    clean = speech_like(3.0, 0.003)
    clicked = with_click(clean, at=1.93)  # inside a burst, across two frames
    reference, transient = loudness_reference(frame_dbfs(clicked))
    assert transient.sum() == 2 and reference == pytest.approx(frame_dbfs(clean).max(), abs=0.5)
    trimmed, expected = trim_silence(_audio(clicked)), trim_silence(_audio(clean))
    assert (trimmed.start, trimmed.duration) == (expected.start, expected.duration)
    prepared, reference_speech = prepare_speech(_audio(clicked)), prepare_speech(_audio(clean))
    assert prepared.duration == reference_speech.duration > 2.9
    assert np.abs(prepared.samples).max() <= 0.99  # the click is muted, and does not set the gain
    click = slice(round((1.93 - prepared.start) * SAMPLE_RATE), round((1.95 - prepared.start) * SAMPLE_RATE))
    assert not prepared.samples[click].any()
    frame = round(FRAME_SECONDS * SAMPLE_RATE)
    rest = np.ones(len(prepared.samples), bool)
    rest[click.start - frame : click.stop + frame] = False
    np.testing.assert_allclose(prepared.samples[rest], reference_speech.samples[rest], rtol=0.05, atol=1e-4)


def test_a_click_on_loud_speech_is_sound_like_any_other() -> None:
    """Not a transient when the speech is loud too: nothing is muted and nothing is trimmed away."""
    clean = speech_like(3.0, 0.3)
    clicked = with_click(clean, at=1.93)
    assert not loudness_reference(frame_dbfs(clicked))[1].any()
    prepared = prepare_speech(_audio(clicked))
    assert prepared.duration == prepare_speech(_audio(clean)).duration > 2.9


def test_a_click_at_the_edge_is_trimmed_like_silence() -> None:
    clean = speech_like(2.0, 0.003)
    trimmed = trim_silence(_audio(with_click(clean, at=0.1)))
    expected = trim_silence(_audio(clean))
    assert (trimmed.start, trimmed.duration) == (expected.start, expected.duration)


def test_clean_recordings_have_no_transients() -> None:
    """The robust level changes nothing for real speech: without transients the loudest frame is the reference."""
    files = [EXAMPLES / "speech_fake_world_theo.wav", EXAMPLES / "speech_real_fsdd_theo.wav"]
    for folder in ("speech_synth/real", "speech_synth/fake", "speech_tts/real", "speech_tts/fake"):
        files += sorted(p for p in shared(*folder.split("/")).iterdir() if p.suffix in (".wav", ".flac"))[:20]
    for path in files:
        levels = frame_dbfs(load_audio(path).samples)
        reference, transient = loudness_reference(levels)
        assert not transient.any() and reference == levels.max(), path.name
    reference, transient = loudness_reference(np.zeros(0))
    assert reference == -np.inf and transient.shape == (0,)


# Decoding in chunks (issue 19, item 3): only the output recording is ever held whole, and it is
# the very same samples as decoding, averaging and resampling the whole file in one go.


def test_chunked_decoding_equals_whole_file_decoding(tmp_path: Path) -> None:
    """Many libsndfile blocks and FFmpeg frames, streamed through soxr: bit-identical to one-shot soxr."""
    rng = np.random.default_rng(5)
    stereo = np.stack([signal(44100, 5.0), 0.3 * rng.standard_normal(5 * 44100).astype(np.float32)], axis=1)
    wav = tmp_path / "long.wav"
    sf.write(wav, stereo, 44100, subtype="FLOAT")
    whole = sf.read(wav, dtype="float32", always_2d=True)[0].mean(axis=1, dtype=np.float32)
    np.testing.assert_array_equal(load_audio(wav).samples, soxr.resample(whole, 44100, SAMPLE_RATE, quality="HQ"))
    np.testing.assert_array_equal(decode_audio(wav, sample_rate=None)[0], whole)
    mp3 = write(tmp_path / "long.mp3", encode_audio(stereo[:, 0], 44100, "mp3"))
    native, rate = decode_audio(mp3, sample_rate=None)
    np.testing.assert_array_equal(load_audio(mp3).samples, soxr.resample(native, rate, SAMPLE_RATE, quality="HQ"))


def test_decoding_holds_no_full_length_copy_but_its_output(tmp_path: Path) -> None:
    """Was: the whole file at its own rate and channels as float32, a mono copy, then the resampled one."""
    path = tmp_path / "quiet.flac"
    with sf.SoundFile(path, "w", samplerate=48000, channels=2, format="FLAC", subtype="PCM_16") as f:
        for _ in range(60):
            f.write(np.zeros((48000, 2), np.int16))
    output = 60 * SAMPLE_RATE * 4
    tracemalloc.start()
    try:
        audio = load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(audio.samples) == 60 * SAMPLE_RATE
    assert peak < output + 4_000_000, f"{peak / 1e6:.1f} MB held to decode {output / 1e6:.1f} MB"  # was 52 MB


@pytest.mark.parametrize("limit", ["max_audio_seconds", "max_video_seconds"])
def test_audio_over_the_audio_limit_is_refused_in_one_line(tmp_path: Path, limit: str) -> None:
    flac = tmp_path / "long.flac"
    sf.write(flac, signal(8000, 3.0), 8000)
    mp3 = write(tmp_path / "long.mp3", encode_audio(signal(8000, 3.0), 8000, "mp3"))
    for path in (flac, mp3):
        with pytest.raises(MediaTooLargeError) as err:
            load_audio(path, limits=MediaLimits(**{limit: 2.0}))
        message = str(err.value)  # from the header, by probe or by the decoder: one line either way
        assert message.startswith(f"{path}: audio is too long (") and "2.0s" in message and "\n" not in message
        assert load_audio(path, limits=MediaLimits(**{limit: 4.0})).duration == pytest.approx(3.0, abs=0.01)


def test_a_stream_stating_no_length_is_stopped_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fakescope.media.audio_decoding as decoding

    path = write(tmp_path / "long.mp3", encode_audio(signal(8000, 3.0), 8000, "mp3"))
    info = probe(path)
    monkeypatch.setattr(decoding, "stream_duration", lambda container, stream: None)
    with pytest.raises(MediaTooLargeError, match=r"long.mp3: audio is too long \(over 2.0s, the limit\)"):
        load_audio(path, limits=MediaLimits(max_audio_seconds=2.0), info=info)


def test_levels_are_measured_in_blocks_to_the_same_values() -> None:
    """frame_dbfs sums whole frames block by block: the same levels as squaring everything at once."""
    samples = np.random.default_rng(2).standard_normal(SAMPLE_RATE * 200 + 123).astype(np.float32) * 0.1
    size = round(FRAME_SECONDS * SAMPLE_RATE)
    starts = np.arange(0, len(samples), size)
    power = np.add.reduceat(np.square(samples, dtype=np.float64), starts) / np.diff(np.append(starts, len(samples)))
    np.testing.assert_array_equal(frame_dbfs(samples), 10.0 * np.log10(np.maximum(power, 1e-20)))


def test_windows_made_batch_by_batch_equal_the_prepared_speech_windows() -> None:
    """What the detector scores (lazy, a batch at a time) is exactly prepare_speech then speech_windows."""
    speech = np.tile(speech_like(3.0, 0.003), 40)  # 2 min of quiet bursts, some of them with clicks
    for at in (7.93, 50.01, 99.5):
        speech = with_click(speech, at=at)
    audio = _audio(speech, start=1.5)
    plan = plan_speech(audio)
    assert plan.loudness is not None and plan.loudness.muted is not None
    prepared = prepare_speech(audio)
    windows, spans = speech_windows(prepared)
    batches = list(speech_window_batches(plan, batch_size=16))
    assert [len(b) for b, _ in batches[:-1]] == [16] * (len(batches) - 1)
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]), windows)
    assert [s for _, batch in batches for s in batch] == spans
    np.testing.assert_array_equal(plan.samples(), prepared.samples)
    assert plan.trimmed.samples.base is audio.samples.base or plan.trimmed.samples.base is audio.samples  # a view
