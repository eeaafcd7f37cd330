"""Channel conditions: a clip as it sounds after a lossy codec or an 8 kHz telephone band.

Codecs and band limits are channel effects, not evidence of synthesis. Training applies them to
reals and fakes alike (the speech corpus, `train.speech.generation`) so that neither class owns a
codec or a bandwidth, and evaluation applies them to every clip (`fakescope eval --perturb
mp3_32k`) to see how a detector holds up under them. Both need the same definitions, so they
live here, below both; this is media processing only (encode, decode, resample, align).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from fakescope.errors import FakescopeError
from fakescope.media.audio import decode_audio, encode_audio, resample

CONDITIONS = ("clean", "mp3_16k", "mp3_32k", "mp3_64k", "opus_12k", "opus_24k", "aac_32k", "aac_64k", "narrowband")
_CODECS = {
    "mp3_16k": ("mp3", 16_000),
    "mp3_32k": ("mp3", 32_000),
    "mp3_64k": ("mp3", 64_000),
    "opus_12k": ("opus", 12_000),
    "opus_24k": ("opus", 24_000),
    "aac_32k": ("aac", 32_000),
    "aac_64k": ("aac", 64_000),
}
_NARROWBAND_RATE = 8_000
_MAX_CODEC_LAG_S = 0.1


def fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to `length` samples (float32)."""
    return np.pad(y[:length], (0, max(0, length - len(y)))).astype(np.float32, copy=False)


def apply_condition(x: np.ndarray, sr: int, condition: str) -> np.ndarray:
    """`x` through a channel: a codec at a bit rate, or 8 kHz narrowband; same length and timing as `x`."""
    x = np.asarray(x, dtype=np.float32)
    if condition == "clean":
        return x.copy()
    if condition == "narrowband":
        return fit_length(resample(resample(x, sr, _NARROWBAND_RATE), _NARROWBAND_RATE, sr), len(x))
    if condition not in _CODECS:
        raise FakescopeError(f"unknown channel condition {condition!r}; use one of {', '.join(CONDITIONS)}")
    fmt, bitrate = _CODECS[condition]
    y, _ = decode_audio(encode_audio(x, sr, fmt, bitrate=bitrate), sample_rate=sr, name=condition)
    return _align(y, x, round(_MAX_CODEC_LAG_S * sr))


def _align(y: np.ndarray, x: np.ndarray, max_lag: int) -> np.ndarray:
    """`y` shifted by the lag (within ±max_lag samples) that best matches `x`, cut or padded to len(x).

    Decoders differ in whether they drop the encoder's priming samples; cross-correlation
    finds whatever delay is left.
    """
    if len(y) == 0 or not np.any(x):
        return fit_length(y, len(x))
    corr = signal.correlate(y, x, mode="full", method="fft")
    lags = signal.correlation_lags(len(y), len(x), mode="full")
    near = np.abs(lags) <= max_lag
    lag = int(lags[near][np.argmax(corr[near])])
    shifted = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, dtype=y.dtype), y])
    return fit_length(shifted, len(x))
