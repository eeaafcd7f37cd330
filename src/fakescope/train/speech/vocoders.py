"""Neural vocoders trained here, so the speech corpus holds fakes with a neural network's artefacts.

Signal-processing fakes (Griffin-Lim, LPC, WORLD) leave other traces than a network does, and
only one published vocoder installs offline (HiFi-GAN, `hifigan`). A network's traces are
the periodic patterns of learned transposed-convolution upsampling (MelGAN, HiFi-GAN, Parallel
WaveGAN) or the frame-wise predicted magnitude and phase of an inverse-STFT head (Vocos,
iSTFTNet). Two small mel-to-waveform networks of those two shapes are trained on the corpus's
training reals (`vocoder_training`) and shipped in weights/vocoders/ with a card
(sha256, recipe, held-out reconstruction error). They need not sound good, only be made the way
the real ones are: a mel spectrogram in, a network's waveform out.

`vocode` backs the corpus generators of the same names (`fakes.GENERATORS`): like a TTS
acoustic model's output, the mel it inverts is sometimes smoothed in time or perturbed
(`perturb_mel`, which the HiFi-GAN generator shares), so the family covers copy-synthesis and
TTS-like inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.errors import FakescopeError
from fakescope.media.audio import resample
from fakescope.models.audio_features import mel_filterbank, stft

VOCODER_RATE = 16_000
N_FFT, HOP, N_MELS = 1024, 256, 80
LOG_FLOOR = 1e-5
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "vocoders"
TRAIN_COMMAND = "python -m fakescope.train.speech.vocoder_training"
Architecture = Literal["upsampling", "istft"]


class LogMel(nn.Module):
    """(B, samples) at 16 kHz -> (B, 80, frames) natural-log mel magnitudes, one frame per 256 samples."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("fb", mel_filterbank(VOCODER_RATE, N_FFT, N_MELS, 0.0, VOCODER_RATE / 2), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = stft(wave, self.window, N_FFT, HOP).abs()
        return torch.log(torch.einsum("bft,fm->bmt", spec, self.fb).clamp(min=LOG_FLOOR))


class _ResBlock(nn.Module):
    """Dilated residual convolutions (HiFi-GAN's ResBlock, one conv pair per dilation)."""

    def __init__(self, channels: int, dilations: tuple[int, ...] = (1, 3, 9)) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(nn.Conv1d(channels, channels, 3, dilation=d, padding=d) for d in dilations)
        self.plain = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=1) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain, strict=True):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, 0.1)), 0.1))
        return x


class UpsamplingVocoder(nn.Module):
    """MelGAN / HiFi-GAN shape: transposed convolutions raise the frame rate 8 x 8 x 4 to the sample rate."""

    def __init__(self, channels: int = 128, strides: tuple[int, ...] = (8, 8, 4)) -> None:
        super().__init__()
        self.pre = nn.Conv1d(N_MELS, channels, 7, padding=3)
        stages: list[nn.Module] = []
        for stride in strides:
            stages += [
                nn.LeakyReLU(0.1),
                nn.ConvTranspose1d(channels, channels // 2, 2 * stride, stride, padding=stride // 2),
                _ResBlock(channels // 2),
            ]
            channels //= 2
        self.stages = nn.Sequential(*stages)
        self.post = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.post(F.leaky_relu(self.stages(self.pre(mel)), 0.1))).squeeze(1)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 3 * channels), nn.GELU(), nn.Linear(3 * channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(self.depthwise(x).transpose(1, 2))).transpose(1, 2)


class ISTFTVocoder(nn.Module):
    """Vocos / iSTFTNet shape: ConvNeXt blocks at the frame rate predict each frame's magnitude and
    phase, and an inverse STFT makes the waveform."""

    def __init__(self, channels: int = 128, blocks: int = 4) -> None:
        super().__init__()
        self.pre = nn.Conv1d(N_MELS, channels, 7, padding=3)
        self.blocks = nn.Sequential(*(_ConvNeXtBlock(channels) for _ in range(blocks)))
        self.norm = nn.LayerNorm(channels)
        self.head = nn.Linear(channels, N_FFT + 2)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        frames = self.norm(self.blocks(self.pre(mel)).transpose(1, 2))
        log_mag, phase = self.head(frames).transpose(1, 2).chunk(2, dim=1)
        spec = torch.polar(torch.exp(log_mag.clamp(max=6.0)), phase)
        return torch.istft(spec, N_FFT, HOP, N_FFT, self.window, center=True, length=mel.shape[-1] * HOP)


ARCHITECTURES: dict[Architecture, type[nn.Module]] = {"upsampling": UpsamplingVocoder, "istft": ISTFTVocoder}


@dataclass(frozen=True)
class VocoderSpec:
    """A shipped vocoder: its generator name in the corpus (`fakes.GENERATORS`) and its architecture."""

    name: str
    architecture: Architecture

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.pt"

    @property
    def card(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.json"


VOCODERS: dict[str, VocoderSpec] = {
    spec.name: spec
    for spec in (
        VocoderSpec("upsampling_vocoder", "upsampling"),
        VocoderSpec("istft_vocoder", "istft"),
    )
}


def weights_sha256(name: str) -> str:
    """The sha256 its card records (the corpus settings hash it, so new weights rebuild the fakes)."""
    spec = _spec(name)
    try:
        return str(json.loads(spec.card.read_text())["sha256"])
    except (OSError, ValueError, KeyError) as err:
        raise FakescopeError(f"{spec.card}: no vocoder card ({err}); train it: {TRAIN_COMMAND} {name}") from err


def _spec(name: str) -> VocoderSpec:
    if name not in VOCODERS:
        raise FakescopeError(f"unknown vocoder {name!r}; use one of {', '.join(VOCODERS)}")
    return VOCODERS[name]


def build_vocoder(architecture: Architecture) -> nn.Module:
    return ARCHITECTURES[architecture]()


@cache
def load_vocoder(name: str) -> tuple[LogMel, nn.Module]:
    """The shipped network in eval mode with its mel front end (loaded once per process)."""
    spec = _spec(name)
    if not spec.weights.is_file():
        raise FakescopeError(f"{spec.weights}: vocoder weights missing; train them: {TRAIN_COMMAND} {name}")
    model = build_vocoder(spec.architecture)
    model.load_state_dict(torch.load(spec.weights, map_location="cpu", weights_only=True))
    return LogMel().eval(), model.eval()


def vocode(name: str, x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`x` re-synthesised by vocoder `name` (run at 16 kHz, returned at `sr`; a few samples longer or
    shorter) from its mel, perturbed by `perturb_mel`."""
    front, model = load_vocoder(name)
    wave = torch.from_numpy(resample(x, sr, VOCODER_RATE)).unsqueeze(0)
    with torch.inference_mode():
        y = model(perturb_mel(front(wave), rng)).squeeze(0).numpy()
    return resample(y, VOCODER_RATE, sr)


def perturb_mel(mel: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(B, mels, frames) log mel as a vocoder's input: one time in three smoothed over 3-5 frames,
    one time in three jittered by Gaussian noise (a TTS acoustic model's over-smoothed or off
    predictions), else as analysed (copy-synthesis)."""
    variant = rng.random()
    if variant < 1 / 3:
        width = int(rng.choice([3, 5]))
        return F.avg_pool1d(F.pad(mel, (width // 2, width // 2), mode="replicate"), width, stride=1)
    if variant < 2 / 3:
        noise = rng.standard_normal(mel.shape).astype(np.float32) * float(rng.uniform(0.1, 0.3))
        return mel + torch.from_numpy(noise)
    return mel
