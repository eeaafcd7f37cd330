"""Speech clips for training and evaluating audio detectors.

Clips go through exactly the preprocessing of inference (media.audio.prepare_speech: 16 kHz
mono, silence trimmed, loudness normalised) once, at load time, and are held in memory as
float32 (4,000 clips of ~2 s ≈ 0.5 GB). A batch is padded with exact zeros to its longest
clip; the models mask those frames out.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from fakescope.data.samples import Sample
from fakescope.errors import FakescopeError
from fakescope.media.audio import load_audio, prepare_speech, resample
from fakescope.models.config import PretrainedCfg

log = logging.getLogger(__name__)


class WaveAugment(Protocol):
    """A training-time waveform distortion (e.g. train.speech's RawBoost), applied to both classes alike."""

    def __call__(self, x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray: ...


@dataclass(frozen=True)
class NoiseAugment:
    """Add white noise at a random SNR to a share of the training clips (both classes alike)."""

    p: float = 0.0
    snr_db: tuple[float, float] = (15.0, 40.0)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p <= 0 or rng.random() >= self.p or not x.size:
            return x
        power = float(np.mean(x.astype(np.float64) ** 2))
        snr = rng.uniform(*self.snr_db)
        noise = rng.standard_normal(x.size).astype(np.float32) * np.float32(np.sqrt(power / 10 ** (snr / 10)))
        return x + noise


@dataclass(frozen=True)
class SpeedAugment:
    """Play a share of the training clips faster or slower (resampled: tempo, pitch and formants move
    together, as in ASR speed perturbation), both classes alike.

    The corpus has few real voices, and a detector that learns them by heart calls every new
    voice fake; each epoch the clips come back as slightly different voices.
    """

    p: float = 0.0
    factor: tuple[float, float] = (0.9, 1.1)

    def __call__(self, x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        if self.p <= 0 or rng.random() >= self.p or not x.size:
            return x
        factor = rng.uniform(*self.factor)
        return resample(x, sample_rate, int(round(sample_rate / factor)))


def first_windows(paths: Sequence[Path], cfg: PretrainedCfg) -> list[np.ndarray]:
    """Each file's first `window_seconds` of prepared speech (trimmed, loudness-normalised): what evaluation
    scores of a clip. A file that is silence only keeps its untrimmed samples, so that every file has a row."""
    window = int(round(cfg.window_seconds * cfg.sample_rate))
    out = []
    for path in paths:
        audio = load_audio(path, sample_rate=cfg.sample_rate)
        prepared = prepare_speech(audio).samples
        out.append(np.ascontiguousarray((prepared if prepared.size else audio.samples)[:window], dtype=np.float32))
    return out


def first_window_batches(paths: Sequence[Path], cfg: PretrainedCfg, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(rows, waves): the `first_windows` of `paths`, `batch_size` at a time in order of length (less padding,
    masked either way); `rows` index `paths`."""
    clips = first_windows(paths, cfg)
    order = np.argsort([clip.size for clip in clips], kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, pad_waves([torch.from_numpy(clips[i]) for i in rows])


class SpeechClipDataset(Dataset):
    """Labelled clips as model-ready waveforms; training draws a random crop of random length in
    `crop_seconds` (at most `window_seconds`), so the model cannot learn whole utterances by heart
    and must find artefacts anywhere; evaluation takes the first window (as inference does for a
    clip of one window)."""

    def __init__(
        self,
        samples: Sequence[Sample],
        cfg: PretrainedCfg,
        *,
        train: bool = False,
        noise: NoiseAugment = NoiseAugment(),
        speed: SpeedAugment = SpeedAugment(),
        rawboost: WaveAugment | None = None,
        crop_seconds: tuple[float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.window = int(round(cfg.window_seconds * cfg.sample_rate))
        low, high = crop_seconds or (cfg.window_seconds, cfg.window_seconds)
        self.crop = (int(round(low * cfg.sample_rate)), int(round(min(high, cfg.window_seconds) * cfg.sample_rate)))
        self.train, self.noise, self.speed, self.rawboost, self.sample_rate = train, noise, speed, rawboost, cfg.sample_rate
        self.rng = np.random.default_rng(seed)
        self.samples: list[Sample] = []
        self.clips: list[np.ndarray] = []
        silent = []
        for sample in samples:
            audio = prepare_speech(load_audio(sample.path, sample_rate=cfg.sample_rate))
            if audio.samples.size == 0:
                silent.append(sample.path.name)
                continue
            self.samples.append(sample)
            self.clips.append(np.ascontiguousarray(audio.samples, dtype=np.float32))
        if silent:
            log.warning("%d clips are silence only and were left out (e.g. %s)", len(silent), silent[0])
        if not self.samples:
            raise FakescopeError("no usable speech clip (all silent)")
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.clips[idx]
        if self.train:
            clip = self.speed(clip, self.rng, self.sample_rate)
        size = int(self.rng.integers(self.crop[0], self.crop[1] + 1)) if self.train else self.window
        if clip.size > size:
            start = int(self.rng.integers(0, clip.size - size + 1)) if self.train else 0
            clip = clip[start : start + size]
        if self.train:
            if self.rawboost is not None:
                clip = self.rawboost(clip, self.rng, self.sample_rate)
            clip = self.noise(clip, self.rng)
        return torch.from_numpy(np.ascontiguousarray(clip)), self.labels[idx]


def balanced_weights(samples: Sequence[Sample], power: float) -> np.ndarray:
    """Sampling weights that draw rare kinds of clip more often: n**-power for a clip whose family
    (fakes) or source (reals) has n training clips, rescaled so each class keeps its share.

    The corpus is mostly digits and the fakes made here (600-800 clips a family); the published
    speech_synth families have 16-160 clips each and, drawn uniformly, are ~4% of what the model
    sees. power 0.5 draws a 100-clip family about a third as often as an 800-clip one, not an eighth.
    """
    keys = [(s.label, s.info.get("family" if s.label else "source", "")) for s in samples]
    counts = Counter(keys)
    weights = np.array([counts[key] ** -power for key in keys])
    labels = np.array([s.label for s in samples])
    for label in (0, 1):
        share = labels == label
        if share.any():
            weights[share] *= share.sum() / weights[share].sum()
    return weights / weights.sum()


def pad_waves(clips: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack clips of different lengths, padded at the end with exact zeros (masked by the model)."""
    waves = torch.zeros(len(clips), max(clip.numel() for clip in clips))
    for i, clip in enumerate(clips):
        waves[i, : clip.numel()] = clip
    return waves


def pad_batch(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """`pad_waves` of a DataLoader batch of (clip, label) pairs, and its labels."""
    return pad_waves([wave for wave, _ in batch]), torch.stack([label for _, label in batch])
