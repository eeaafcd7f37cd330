"""Speech features computed inside the model: waveform in, frames out.

Like torchvision weights that carry their own transforms, an audio detector owns its front
end, so inference, training and a future ONNX export see the same MFCCs and nobody has to
keep a feature script in sync with the weights. Pure torch (no librosa at inference: its
numba start-up alone costs seconds per process; docs/RESULTS.md, Photos, repeated files, audio).

Default: 40 MFCCs from 64 mel bands (25 ms windows every 10 ms) plus deltas and
delta-deltas = 120 values per frame; "logmel" gives the 64 log-mel energies (+ deltas).
"mfcc_spec" appends the log power of every FFT bin (257 at 16 kHz) to the MFCCs, keeping the
harmonic fine structure that mel bands and the DCT smooth away (on the speech corpus it did
not beat plain MFCCs: see docs/RESULTS.md, What changed, step by step: History).
Frames holding exact digital zeros (batch padding) are masked out of everything downstream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

FeatureKind = Literal["mfcc", "logmel", "mfcc_spec"]
_LOG_FLOOR = 1e-6
_PAD_ENERGY = 1e-10


def hz_to_mel(hz: float | torch.Tensor) -> float | torch.Tensor:
    """HTK mel scale."""
    if isinstance(hz, torch.Tensor):
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular filters, each normalised to unit area (Slaney-style)."""
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_points = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    lower, centre, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights *= 2.0 / (upper - lower)
    return weights.float()


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_in, n_out) orthonormal DCT-II, as scipy.fft.dct(norm="ortho") takes the first n_out terms."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)
    basis = torch.cos(math.pi / n_in * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


def delta_kernel(width: int = 9) -> torch.Tensor:
    """Regression deltas over `width` frames (librosa.feature.delta's default width)."""
    half = width // 2
    taps = torch.arange(-half, half + 1, dtype=torch.float32)
    return taps / (taps**2).sum()


def stft(wave: torch.Tensor, window: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex (B, n_fft // 2 + 1, frames) STFT, frames centred on multiples of `hop_length`; the edges
    are padded with zeros, like batch padding, so a padded frame is one of exact zeros (the mask's cue)."""
    return torch.stft(wave, n_fft, hop_length, window.numel(), window, center=True, pad_mode="constant", return_complex=True)


class SpeechFeatures(nn.Module):
    """(B, samples) waveform → features (B, frames, dim) and mask (B, frames) of frames with signal."""

    def __init__(
        self,
        kind: FeatureKind = "mfcc",
        *,
        sample_rate: int = 16_000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        n_mfcc: int = 40,
        deltas: bool = True,
        f_min: float = 20.0,
    ) -> None:
        super().__init__()
        if kind not in get_args(FeatureKind):
            raise ValueError(f"unknown feature kind {kind!r} (mfcc, logmel or mfcc_spec)")
        self.kind, self.n_fft, self.hop_length, self.deltas = kind, n_fft, hop_length, deltas
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.register_buffer("mel_fb", mel_filterbank(sample_rate, n_fft, n_mels, f_min, sample_rate / 2), persistent=False)
        self.register_buffer("dct", dct_matrix(n_mels, n_mfcc), persistent=False)
        self.register_buffer("delta", delta_kernel().view(1, 1, -1), persistent=False)
        base = n_mels if kind == "logmel" else n_mfcc
        self.dim = base * (3 if deltas else 1) + (n_fft // 2 + 1 if kind == "mfcc_spec" else 0)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wave = wave.float()
        spec = stft(wave, self.window, self.n_fft, self.hop_length)
        power = spec.real**2 + spec.imag**2  # (B, freq, frames)
        mel = torch.einsum("bft,fm->btm", power, self.mel_fb)
        mask = mel.sum(-1) > _PAD_ENERGY
        feat = torch.log(mel + _LOG_FLOOR)
        if self.kind != "logmel":
            feat = feat @ self.dct
        if self.deltas:
            d1 = self._delta(feat)
            feat = torch.cat([feat, d1, self._delta(d1)], dim=-1)
        if self.kind == "mfcc_spec":
            feat = torch.cat([feat, torch.log(power.transpose(1, 2) + _LOG_FLOOR)], dim=-1)
        return feat, mask

    def _delta(self, feat: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = feat.shape
        x = feat.transpose(1, 2).reshape(batch * dim, 1, frames)
        half = self.delta.shape[-1] // 2
        x = F.pad(x, (half, half), mode="replicate")
        return F.conv1d(x, self.delta).reshape(batch, dim, frames).transpose(1, 2)


class MaskedNorm(nn.Module):
    """Batch normalisation of frame features over real frames only; padded frames come out as 0.

    Plain BatchNorm would average the log-floor of padding into its statistics, so a model
    trained on padded batches would see differently scaled features on unpadded inference windows.
    """

    def __init__(self, dim: int, momentum: float = 0.05, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        if self.training:
            n = m.sum().clamp(min=1.0)
            mean = (x * m).sum((0, 1)) / n
            var = (((x - mean) ** 2) * m).sum((0, 1)) / n
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return ((x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias) * m


def weighted_spread(x: torch.Tensor, mean: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, frames, D) frames, their (B, D) weighted mean and (B, frames) weights summing to 1 → the
    weighted standard deviation (B, D), floored so its gradient stays finite on constant frames."""
    return (weights.unsqueeze(-1) * (x - mean.unsqueeze(1)) ** 2).sum(1).clamp(min=1e-6).sqrt()


def masked_mean_spread(frames: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, frames, D) and a (B, frames) mask of real frames → the mean and spread (B, D) of the
    real frames alone, so batch padding never changes a clip's statistics."""
    weights = mask.float() / mask.float().sum(dim=1, keepdim=True)
    mean = (weights.unsqueeze(-1) * frames).sum(1)
    return mean, weighted_spread(frames, mean, weights)


FRAME_STATISTICS = ("mean", "spread", "change")


def masked_frame_statistics(
    frames: torch.Tensor, mask: torch.Tensor, statistics: Sequence[str] = FRAME_STATISTICS
) -> list[torch.Tensor]:
    """(B, frames, D) and a (B, frames) mask → the named statistics (B, D) each, of the real frames alone: their
    mean, spread (`masked_mean_spread`) and mean absolute frame-to-frame change (how steady the frames are)."""
    mean, spread = masked_mean_spread(frames, mask)
    found = {"mean": mean, "spread": spread}
    if "change" in statistics:
        pairs = (mask[:, 1:] & mask[:, :-1]).float()
        steps = (pairs.unsqueeze(-1) * (frames[:, 1:] - frames[:, :-1]).abs()).sum(1)
        found["change"] = steps / pairs.sum(1, keepdim=True).clamp(min=1)
    return [found[name] for name in statistics]


class LogSpectrogram(nn.Module):
    """(B, samples) waveform → spectrogram image (B, channels, 257, frames) and mask (B, frames).

    Channel 0 is the log power of every FFT bin (25 ms windows every 10 ms): the harmonic fine
    structure that mel bands and the DCT smooth away, where Griffin-Lim's and phase vocoders'
    smeared partials show. With `phase=True` four more channels carry what a magnitude cannot
    see: cos/sin of each bin's phase advance minus the advance its centre frequency predicts
    (instantaneous-frequency deviation, ragged where a vocoder guessed the phase) and of the
    phase step to the next bin (group delay).
    """

    def __init__(
        self, *, sample_rate: int = 16_000, n_fft: int = 512, win_length: int = 400, hop_length: int = 160, phase: bool = False
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.phase = n_fft, hop_length, phase
        self.bins = n_fft // 2 + 1
        self.channels = 5 if phase else 1
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        advance = 2.0 * math.pi * torch.arange(self.bins, dtype=torch.float32) * hop_length / n_fft
        self.register_buffer("advance", advance.view(1, -1, 1), persistent=False)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = stft(wave.float(), self.window, self.n_fft, self.hop_length)
        power = spec.real**2 + spec.imag**2  # (B, freq, frames)
        mask = power.sum(1) > _PAD_ENERGY
        channels = [torch.log(power + _LOG_FLOOR)]
        if self.phase:
            angle = torch.angle(spec)
            along_time = F.pad(_wrap(angle.diff(dim=2) - self.advance), (1, 0))
            along_freq = F.pad(_wrap(angle.diff(dim=1)), (0, 0, 1, 0))
            channels += [torch.cos(along_time), torch.sin(along_time), torch.cos(along_freq), torch.sin(along_freq)]
        return torch.stack(channels, dim=1), mask


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    """Angles into [-pi, pi)."""
    return torch.remainder(phase + math.pi, 2.0 * math.pi) - math.pi
