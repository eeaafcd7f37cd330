"""RawBoost: random channel and device distortions of the waveform, drawn for both classes alike
(Tak et al., "RawBoost: a raw data boosting and augmentation method applied to automatic
speaker verification anti-spoofing", ICASSP 2022; defaults from their code).

A detector trained on a few recording chains learns those chains, and a fake whose chain is
cleaner (a good GAN vocoder) scores as real. Three distortions break that shortcut:
- `convolutive`: linear and non-linear convolutive noise: the waveform and its powers up to 5,
  each through a random multi-notch FIR filter, summed (a microphone, amplifier or codec's colour
  and harmonic distortion);
- `impulsive`: up to 10% of the samples get signal-dependent impulses (clipping, quantisation);
- `coloured`: stationary noise shaped by a random filter at 10-40 dB SNR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import signal

Stage = Literal["convolutive", "impulsive", "coloured"]
STAGES: tuple[Stage, ...] = ("convolutive", "impulsive", "coloured")


def random_notch_filter(
    rng: np.random.Generator,
    sample_rate: int,
    *,
    gain_db: tuple[float, float] = (0.0, 0.0),
    bands: int = 5,
    centre_hz: tuple[float, float] = (20.0, 8000.0),
    width_hz: tuple[float, float] = (100.0, 1000.0),
    taps: tuple[int, int] = (10, 100),
) -> np.ndarray:
    """A cascade of `bands` random band-stop (notch) FIR filters of odd lengths, as RawBoost's
    `genNotchCoeffs`; the cascade's peak gain is set to `gain_db`."""
    nyquist = sample_rate / 2
    b = np.ones(1)
    for _ in range(bands):
        centre, width = rng.uniform(*centre_hz), rng.uniform(*width_hz)
        n = int(rng.uniform(*taps)) | 1
        low, high = max(centre - width / 2, 1e-3), min(centre + width / 2, nyquist - 1e-3)
        if high <= low:
            continue
        b = np.convolve(signal.firwin(n, [low, high], window="hamming", pass_zero="bandstop", fs=sample_rate), b)
    _, response = signal.freqz(b, 1, fs=sample_rate)
    return 10 ** (rng.uniform(*gain_db) / 20) * b / max(float(np.abs(response).max()), 1e-12)


def apply_fir(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Filter without a delay: the output is aligned with `x` and as long."""
    delay = (b.size - 1) // 2
    return signal.fftconvolve(x, b)[delay : delay + x.size]


def peak_limit(x: np.ndarray) -> np.ndarray:
    peak = float(np.abs(x).max()) if x.size else 0.0
    return x / peak if peak > 1 else x


def convolutive(x: np.ndarray, rng: np.random.Generator, sample_rate: int, orders: int = 5) -> np.ndarray:
    """Σ_k filter_k(x^k): order 1 at 0 dB, the higher orders 5-20 dB down (RawBoost algorithm 1)."""
    y = np.zeros_like(x)
    for k in range(1, orders + 1):
        gain = (0.0, 0.0) if k == 1 else (-20.0, -5.0)
        y += apply_fir(x**k, random_notch_filter(rng, sample_rate, gain_db=gain))
    return peak_limit(y - y.mean())


def impulsive(x: np.ndarray, rng: np.random.Generator, share_percent: float = 10.0, gain: float = 2.0) -> np.ndarray:
    """Up to `share_percent` of the samples move by up to `gain` times themselves (algorithm 2)."""
    y = x.copy()
    n = int(x.size * rng.uniform(0, share_percent) / 100)
    where = rng.permutation(x.size)[:n]
    y[where] += gain * x[where] * (2 * rng.random(n) - 1) * (2 * rng.random(n) - 1)
    return peak_limit(y)


def coloured(x: np.ndarray, rng: np.random.Generator, sample_rate: int, snr_db: tuple[float, float] = (10.0, 40.0)) -> np.ndarray:
    """Noise through a random notch filter, added at a random SNR (algorithm 3)."""
    noise = apply_fir(rng.standard_normal(x.size), random_notch_filter(rng, sample_rate))
    scale = np.linalg.norm(x) / max(float(np.linalg.norm(noise)), 1e-12) / 10 ** (rng.uniform(*snr_db) / 20)
    return x + scale * noise


@dataclass(frozen=True)
class RawBoostAugment:
    """Run `stages` in series on a share `p` of the training clips (both classes alike)."""

    p: float = 0.0
    stages: tuple[Stage, ...] = ("convolutive", "impulsive")

    def __call__(self, x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        if self.p <= 0 or rng.random() >= self.p or not x.size:
            return x
        y = x.astype(np.float64)
        for stage in self.stages:
            if stage == "convolutive":
                y = convolutive(y, rng, sample_rate)
            elif stage == "impulsive":
                y = impulsive(y, rng)
            else:
                y = coloured(y, rng, sample_rate)
        # Back to the clip's loudness: inference loudness-normalises, so level must not tell the classes apart.
        y *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / max(float(np.mean(y**2)), 1e-20))
        return y.astype(np.float32)
