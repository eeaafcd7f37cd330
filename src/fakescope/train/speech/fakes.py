"""Fake speech made from real speech: resynthesis by signal processing and by vocoder networks.

The audio detector must learn what synthesis leaves behind, not one generator's quirk, so the
fakes come from several unrelated families: a mel spectrogram inverted by Griffin-Lim (the
phase is guessed), a phase-vocoder time stretch (phase incoherence across bins), an LPC
source-filter vocoder (pulse/noise excitation through an all-pole filter), WORLD analysis and
resynthesis (optionally with shifted pitch or a warped envelope, like voice conversion), two
small neural vocoders trained here (transposed-convolution and inverse-STFT shapes, `vocoders`)
and a published GAN-trained HiFi-GAN (opt-in, `hifigan`). Text-to-speech fakes are in `tts`.
Every resynthesis returns float32 at the input rate and loudness.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from scipy import signal

from fakescope.media.audio import resample
from fakescope.media.channels import fit_length

Generator = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

_WORLD_MIN_RATE = 16_000
_PEAK = 0.99


def _window_size(sr: int, seconds: float = 0.032) -> int:
    """The power of two nearest to `seconds` of samples (256 at 8 kHz, 512 at 16 kHz)."""
    return int(2 ** round(np.log2(seconds * sr)))


def match_loudness(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`y` as float32 with the RMS of `x` (scaled down further if it would clip): loudness is no cue."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64))
    ref, own = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), float(np.sqrt(np.mean(np.square(y))))
    if own > 0.0 and ref > 0.0:
        y = y * (ref / own)
    top = float(np.max(np.abs(y), initial=0.0))
    if top > _PEAK:
        y = y * (_PEAK / top)
    return y.astype(np.float32)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def griffin_lim(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mel spectrogram back to audio with Griffin-Lim: the phase is estimated, as in early TTS."""
    import librosa

    n_fft = _window_size(sr)
    hop = n_fft // 4
    n_mels, n_iter = int(rng.choice([64, 80])), int(rng.integers(16, 49))
    with warnings.catch_warnings():  # at 8 kHz the lowest of 80 mel bands are narrower than an FFT bin
        warnings.filterwarnings("ignore", message="Empty filters detected")
        mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmax=sr / 2)
        magnitude = librosa.feature.inverse.mel_to_stft(mel, sr=sr, n_fft=n_fft, power=2.0, fmax=sr / 2)
    y = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=len(x), random_state=_seed(rng))
    return match_loudness(y, x)


def phase_vocoder(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A 3-15 % faster or slower copy by phase-vocoder time stretching (length changes by 1/rate)."""
    import librosa

    n_fft = _window_size(sr)
    hop = n_fft // 4
    rate = 1.0 + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.03, 0.15))
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop)
    stretched = librosa.phase_vocoder(spec, rate=rate, hop_length=hop, n_fft=n_fft)
    y = librosa.istft(stretched, hop_length=hop, n_fft=n_fft, length=round(len(x) / rate))
    return match_loudness(y, x)


@cache
def _pyworld() -> types.ModuleType:
    """pyworld 0.3.5 reads its version through pkg_resources, which setuptools >= 82 no longer ships;
    a stand-in answering from importlib.metadata is lent for the import only."""
    try:
        import pyworld
    except ModuleNotFoundError as err:
        if err.name != "pkg_resources":
            raise
        shim: Any = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim
        try:
            import pyworld
        finally:
            del sys.modules["pkg_resources"]
    return pyworld


def _f0(x: np.ndarray, sr: int, rng: np.random.Generator, frame_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """(f0 per frame, frame times) by DIO + StoneMask or, one time in three, Harvest (slower, fewer errors)."""
    pw = _pyworld()
    xd = np.ascontiguousarray(x, dtype=np.float64)
    if rng.random() < 1 / 3:
        return pw.harvest(xd, sr, frame_period=frame_ms)
    f0, times = pw.dio(xd, sr, frame_period=frame_ms)
    return pw.stonemask(xd, f0, times, sr), times


def lpc_resynthesis(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A robotic source-filter vocoder: per 10 ms hop, LPC of the surrounding 25 ms frame excited by a
    pulse train at the frame's f0 (voiced) or white noise (unvoiced), gain from the LPC residual.

    Each hop is filtered with its own all-pole filter while the filter state runs on, so hops
    join without clicks and the output has the input's length.
    """
    order = int(rng.integers(10, 17))
    hop, win = round(0.010 * sr), round(0.025 * sr)
    f0, _ = _f0(x, sr, rng, frame_ms=1000.0 * hop / sr)
    xd = np.asarray(x, dtype=np.float64)
    padded = np.pad(xd, (win // 2, win))
    window = np.hanning(win)
    window_power = float(np.mean(window**2))
    noise = np.random.default_rng(_seed(rng))
    out = np.zeros(len(xd))
    state = np.zeros(order)
    phase = 0.0
    for i, start in enumerate(range(0, len(xd), hop)):
        frame = padded[start : start + win] * window
        a, gain = _lpc_frame(frame, order, window_power)
        n = min(hop, len(xd) - start)
        pitch = f0[min(i, len(f0) - 1)]
        if pitch > 0:
            phases = phase + np.arange(1, n + 1) * pitch / sr
            excitation = np.diff(np.floor(np.concatenate([[phase], phases]))) * np.sqrt(sr / pitch)
            phase = float(phases[-1] % 1.0)
        else:
            excitation = noise.standard_normal(n)
        out[start : start + n], state = signal.lfilter([gain], a, excitation, zi=state)
    return match_loudness(out, x)


def _lpc_frame(frame: np.ndarray, order: int, window_power: float) -> tuple[np.ndarray, float]:
    """All-pole coefficients of a windowed frame and the RMS of its prediction residual.

    A silent or degenerate frame (digital silence, a DC-only stretch) has no spectral shape:
    a flat filter with zero gain.
    """
    import librosa

    if float(np.mean(frame**2)) < 1e-12:
        return np.concatenate([[1.0], np.zeros(order)]), 0.0
    try:
        with np.errstate(all="raise"):
            a = librosa.lpc(frame, order=order)
    except FloatingPointError:
        return np.concatenate([[1.0], np.zeros(order)]), 0.0
    if not np.all(np.isfinite(a)) or np.any(np.abs(np.roots(a)) >= 1.0):
        return np.concatenate([[1.0], np.zeros(order)]), 0.0
    residual = signal.lfilter(a, [1.0], frame)
    return a, float(np.sqrt(np.mean(residual**2) / window_power))


def world_resynthesis(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """WORLD analysis and synthesis; half the time with f0 scaled by 0.8-1.25 and one time in three
    with the spectral envelope warped by 0.9-1.1 in frequency, as voice conversion does.

    Runs at 16 kHz or more: D4C's voicing test sums the 4-7.9 kHz band, which below 16 kHz lies
    past the spectrum, so it reads uninitialised memory and the output changes from run to run.
    """
    pw = _pyworld()
    rate, frame_ms = max(sr, _WORLD_MIN_RATE), 5.0
    xd = np.ascontiguousarray(resample(x, sr, rate), dtype=np.float64)
    f0, times = _f0(xd, rate, rng, frame_ms)
    envelope = pw.cheaptrick(xd, f0, times, rate)
    aperiodicity = pw.d4c(xd, f0, times, rate)
    if rng.random() < 0.5:
        f0 = f0 * float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    if rng.random() < 1 / 3:
        envelope = _warp(envelope, float(rng.uniform(0.9, 1.1)))
    y = pw.synthesize(np.ascontiguousarray(f0), envelope, aperiodicity, rate, frame_ms)
    return match_loudness(fit_length(resample(y, rate, sr), len(x)), x)


def _warp(envelope: np.ndarray, factor: float) -> np.ndarray:
    """Stretch each frame's envelope along frequency (>1 moves formants up)."""
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    warped = np.stack([np.interp(bins / factor, bins, row) for row in envelope])
    return np.ascontiguousarray(np.maximum(warped, 1e-16))


def neural_vocoder(name: str) -> Generator:
    """Re-synthesis by the vocoder network `name` trained here (`vocoders`)."""

    def generate(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from fakescope.train.speech.vocoders import vocode  # torch loads on first use, not with the corpus catalogue

        return match_loudness(fit_length(vocode(name, x, sr, rng), len(x)), x)

    generate.__name__ = name
    return generate


def hifigan_resynthesis(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Re-synthesis by a published HiFi-GAN (`hifigan`)."""
    from fakescope.train.speech.hifigan import hifigan_vocode  # torch loads on first use, not with the corpus catalogue

    return match_loudness(fit_length(hifigan_vocode(x, sr, rng), len(x)), x)


GENERATORS: dict[str, tuple[str, Generator]] = {
    "griffin_lim": ("griffin-lim", griffin_lim),
    "phase_vocoder": ("phase-vocoder", phase_vocoder),
    "lpc": ("lpc-vocoder", lpc_resynthesis),
    "world": ("world-vocoder", world_resynthesis),
    "upsampling_vocoder": ("upsampling-vocoder", neural_vocoder("upsampling_vocoder")),
    "istft_vocoder": ("istft-vocoder", neural_vocoder("istft_vocoder")),
    # speech_synth's family name: held out with the published GAN vocoders in leave-one-family-out runs
    "hifigan": ("gan-vocoder", hifigan_resynthesis),
}


def network_sha256(name: str) -> str | None:
    """sha256 of the network behind generator `name` (None: it has none), for the corpus settings hash."""
    from fakescope.train.speech.hifigan import hifigan_sha256  # torch loads on first use, not with the corpus catalogue
    from fakescope.train.speech.vocoders import VOCODERS, weights_sha256

    if name == "hifigan":
        return hifigan_sha256()
    return weights_sha256(name) if name in VOCODERS else None
