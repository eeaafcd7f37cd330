"""RawBoost distortions: what each stage does to a waveform, and that they keep length and loudness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakescope.errors import FakescopeError
from fakescope.train.config import load_config
from fakescope.train.speech.rawboost import RawBoostAugment, apply_fir, coloured, convolutive, impulsive, random_notch_filter

SR = 16_000


def speech_like(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(120 * (1 + 0.1 * np.sin(2 * np.pi * 2 * t))) / SR
    return (0.1 * sum(np.sin(k * phase) / k for k in range(1, 20))).astype(np.float32)


def test_notch_filter_stops_its_band_and_peaks_at_the_asked_gain():
    rng = np.random.default_rng(0)
    b = random_notch_filter(rng, SR, gain_db=(-6.0, -6.0), bands=1, centre_hz=(2000, 2000), width_hz=(400, 400), taps=(99, 99))
    response = np.abs(np.fft.rfft(b, 8192))
    freqs = np.fft.rfftfreq(8192, 1 / SR)
    assert response.max() == pytest.approx(10 ** (-6 / 20), rel=0.01)
    assert response[np.argmin(np.abs(freqs - 2000))] < 0.1 * response.max(), "the notch"
    assert response[(freqs > 4000) & (freqs < 7000)].min() > 0.9 * response.max(), "far from it, passed"


def test_fir_output_is_aligned_with_its_input():
    x = np.zeros(1000)
    x[500] = 1.0
    b = random_notch_filter(np.random.default_rng(1), SR)
    y = apply_fir(x, b)
    assert y.size == x.size and np.argmax(np.abs(y)) == 500, "linear-phase filter, delay removed"


def test_impulsive_moves_at_most_a_tenth_of_the_samples():
    rng = np.random.default_rng(2)
    x = speech_like().astype(np.float64)
    for _ in range(20):
        changed = np.mean(impulsive(x, rng) != x)
        assert changed <= 0.10


def test_coloured_noise_lands_between_10_and_40_db_snr():
    rng = np.random.default_rng(3)
    x = speech_like().astype(np.float64)
    for _ in range(20):
        noise = coloured(x, rng, SR) - x
        snr = 10 * np.log10(np.sum(x**2) / np.sum(noise**2))
        assert 10 - 1e-6 <= snr <= 40 + 1e-6


def test_convolutive_recolours_the_spectrum_but_keeps_the_timing():
    x = speech_like().astype(np.float64)
    y = convolutive(x, np.random.default_rng(4), SR)
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() <= 1
    gated = x.copy()
    gated[SR // 2 :] = 0
    y_gated = convolutive(gated, np.random.default_rng(4), SR)
    tail = y_gated[SR // 2 + 800 :]
    assert np.ptp(tail) < 1e-3 * np.ptp(y_gated), "nothing but a DC offset after the input stops"
    spectrum = lambda s: np.log(np.abs(np.fft.rfft(s)) + 1e-9)  # noqa: E731
    assert np.std(spectrum(y) - spectrum(x)) > 1.0, "a new colour, not a copy"


def test_augment_keeps_length_and_loudness_is_seeded_and_respects_p():
    x = speech_like()
    assert RawBoostAugment(p=0.0)(x, np.random.default_rng(0), SR) is x
    every = RawBoostAugment(p=1.0, stages=("convolutive", "impulsive", "coloured"))
    a, b = every(x, np.random.default_rng(5), SR), every(x, np.random.default_rng(5), SR)
    assert a.dtype == np.float32 and a.shape == x.shape and np.array_equal(a, b)
    assert np.sqrt(np.mean(a**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-4), "level gives no class away"
    assert not np.allclose(a, x, atol=1e-3)
    rng = np.random.default_rng(6)
    drawn = [RawBoostAugment(p=0.3)(x, rng, SR) is not x for _ in range(300)]
    assert np.mean(drawn) == pytest.approx(0.3, abs=0.08)


def test_config_takes_rawboost_stages_and_rejects_unknown_ones(tmp_path):
    cfg = load_config(Path("configs/audio-spec-cnn.yaml"), ["augment.rawboost.p=0.5", "augment.rawboost.stages=[coloured]"])
    assert cfg.augment.rawboost.p == 0.5 and cfg.augment.rawboost.stages == ("coloured",)
    with pytest.raises(FakescopeError):
        load_config(Path("configs/audio-spec-cnn.yaml"), ["augment.rawboost.stages=[reverb]"])
