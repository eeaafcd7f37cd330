"""Speech detectors: synthetic or vocoded speech in a waveform window.

`audio-spec-cnn`: log power spectrogram (257 bins) → four 2-D conv blocks → attention
mean and spread over time. Convolutions on the full-resolution spectrogram see the smeared
partials and buzzy excitation vocoders leave; on the speech corpus val split its EER is well
below the MFCC models' (docs/RESULTS.md, What changed, step by step). `phase=True` adds phase channels (did not help).
`audio-whisper-probe`: a frozen Whisper tiny.en encoder (models.whisper) → mean and spread of
its first two blocks → one linear layer; weaker on the fakes the corpus holds, stronger on
generators it never saw. stack-speech (models.stack) stacks the two; the default is audio-whisper-base: the
same probe on all six blocks of Whisper base, on conditioned input (models.whisper), fitted on cached statistics.
`model_args: {one_class: true}` gives the spectrogram CNN an OC-softmax head (did not help).
`audio-bigru-attn`: MFCC + deltas → 2-layer bidirectional GRU → attention pooling.
`audio-cnn-gru` (edge): the same features → three 1-D convolutions that cut the frame rate by
4 → one unidirectional GRU → attention pooling; about a quarter of the BiGRU's compute.

`features` (a model argument of the MFCC models, e.g. `model_args: {features: logmel}` in a
training config) picks "mfcc" (the default), "logmel" (64 log-mel energies + deltas) or
"mfcc_spec" (MFCCs plus the log power of every FFT bin); `utterance_norm=True` subtracts each
clip's mean feature vector first. Neither option beat plain MFCCs (docs/RESULTS.md, What changed, step by step: History).
All take a (B, samples) float waveform at `pretrained_cfg.sample_rate` (batch padding =
exact zeros, masked out) and follow the model contract (logits, prob, feat).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fakescope.models.audio_features import (
    FeatureKind,
    LogSpectrogram,
    MaskedNorm,
    SpeechFeatures,
    weighted_spread,
)
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import register_model
from fakescope.models.sequence_layers import AttentionPool, run_rnn

SPEECH_DATASET = "speech corpus (speech_real digits + speech_synth + fakes generated here, codecs on both classes)"
SPEECH_V2_DATASET = SPEECH_DATASET + " + speech_tts (modern TTS, voice conversion, vocoders, codecs)"


def speech_cfg(arch: str, config: str, *, tag: str = "speech", dataset: str = SPEECH_DATASET, **extra: object) -> PretrainedCfg:
    """The speech config `tag` of `arch`; `extra` holds front-end settings ({"features": "mfcc"} when empty)."""
    return PretrainedCfg(
        file=f"{arch.replace('-', '_')}.{tag}.pt",
        input_kind="audio",
        dataset=dataset,
        recipe=f"fakescope train configs/{config}.yaml out=src/fakescope/weights",
        license="weights: research only (speech_synth demo audio has no stated licence); code: Apache-2.0",
        extra=extra or {"features": "mfcc"},
    )


class AudioModel(ClassifierModel):
    """Shared front end (features → masked normalisation) and back end (attention pool → logit)."""

    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        pooled_dim: int,
        dropout: float,
        features: FeatureKind | None,
        utterance_norm: bool | None = None,
        **frontend: object,
    ) -> None:
        super().__init__(pretrained_cfg)
        kind = features or pretrained_cfg.extra.get("features", "mfcc")
        self.utterance_norm = pretrained_cfg.extra.get("utterance_norm", False) if utterance_norm is None else utterance_norm
        self.frontend = SpeechFeatures(kind, sample_rate=pretrained_cfg.sample_rate, **frontend)
        self.norm = MaskedNorm(self.frontend.dim)
        self.pool = AttentionPool(pooled_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(pooled_dim, 1)

    def frames(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat, mask = self.frontend(wave)
        if self.utterance_norm:
            feat = subtract_mean(feat, mask)
        return self.norm(feat, mask), mask

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))


def subtract_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean over its real frames (cepstral mean normalisation): what stays the same
    through a clip (voice timbre, microphone, channel) is removed, what changes frame to frame stays."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return x - (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)


def pool_frames(x: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average `stride` consecutive frames (a downsampled frame is real if any of its frames was)."""
    if stride == 1:
        return x, mask
    x = F.avg_pool1d(x.transpose(1, 2), stride, ceil_mode=True).transpose(1, 2)
    mask = F.max_pool1d(mask[:, None].float(), stride, ceil_mode=True)[:, 0] > 0
    return x, mask


class BiGRUAttention(AudioModel):
    """`frame_stride` 2 feeds the GRU 50 frames/s (20 ms): half the sequential steps of the
    10 ms MFCC frames, which keeps the real-time factor low on a 2-core CPU (docs/RESULTS.md, Speed)."""

    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        *,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
        frame_stride: int = 2,
        features: FeatureKind | None = None,
        **frontend: object,
    ) -> None:
        super().__init__(pretrained_cfg, 2 * hidden, dropout, features, **frontend)
        self.frame_stride = frame_stride
        self.gru = nn.GRU(
            self.frontend.dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        x, mask = pool_frames(*self.frames(wave), self.frame_stride)
        return self.pool(run_rnn(self.gru, x, mask), mask)[0]


class ConvGRU(AudioModel):
    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        *,
        channels: int = 64,
        hidden: int = 64,
        dropout: float = 0.2,
        features: FeatureKind | None = None,
        **frontend: object,
    ) -> None:
        super().__init__(pretrained_cfg, hidden, dropout, features, **frontend)

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv1d(c_in, c_out, 5, stride=stride, padding=2), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)
            )

        self.conv = nn.Sequential(
            block(self.frontend.dim, channels, 1), block(channels, channels, 2), block(channels, channels, 2)
        )
        self.gru = nn.GRU(channels, hidden, batch_first=True)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        x, mask = self.frames(wave)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        # A downsampled frame is real if any of the frames it covers was.
        mask = F.max_pool1d(mask[:, None].float(), 5, stride=4, padding=2)[:, 0, : x.shape[1]] > 0
        return self.pool(run_rnn(self.gru, x, mask), mask)[0]


class SpectrogramCNN(ClassifierModel):
    """Log spectrogram image (+ phase channels) → 2-D conv blocks, each halving time and frequency →
    one vector per 160 ms → attention-weighted mean and spread → logit.

    Convolutions see local time-frequency texture (a smeared partial, a buzzy excitation) wherever
    it sits, which is what vocoders leave behind; the MFCC models' GRUs mostly learn the voice.
    Each channel is normalised by one mean and variance over all bins of the real frames (MaskedNorm):
    the spectral tilt stays, bins that hold only dither in 8 kHz recordings are not blown up to
    look like speech, and batch padding neither shifts the statistics nor reaches the convolutions
    as anything but zeros.
    """

    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        *,
        channels: tuple[int, ...] = (8, 16, 32, 64),
        embed: int = 128,
        dropout: float = 0.3,
        phase: bool | None = None,
        one_class: bool | None = None,
    ) -> None:
        super().__init__(pretrained_cfg)
        use_phase = pretrained_cfg.extra.get("phase", False) if phase is None else phase
        self.one_class = pretrained_cfg.extra.get("one_class", False) if one_class is None else one_class
        self.frontend = LogSpectrogram(sample_rate=pretrained_cfg.sample_rate, phase=use_phase)
        self.norm = MaskedNorm(self.frontend.channels)
        blocks, c_in = [], self.frontend.channels
        for c_out in channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2, ceil_mode=True),
                )
            )
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        bins = self.frontend.bins
        for _ in channels:
            bins = -(-bins // 2)
        self.embed = nn.Sequential(nn.Linear(c_in * bins, embed), nn.ReLU(inplace=True))
        self.pool = AttentionPool(embed)
        self.dropout = nn.Dropout(dropout)
        self.head = OneClassHead(2 * embed) if self.one_class else nn.Linear(2 * embed, 1)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        image, mask = self.frontend(wave)
        batch, chans, bins, frames = image.shape
        cells = image.permute(0, 3, 2, 1).reshape(batch, frames * bins, chans)
        x = self.norm(cells, mask.repeat_interleave(bins, dim=1)).reshape(batch, frames, bins, chans).permute(0, 3, 2, 1)
        # channels_last: oneDNN's convolutions and pooling run faster on CPU in this layout, same numbers
        # (docs/RESULTS.md, Photos, repeated files, audio).
        x = x.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            # Padding goes back to exact zeros after every block, as a lone clip's conv padding sees it;
            # after ReLU a zero never wins a max-pool, so a clip scores the same alone or in a batch.
            mask = F.max_pool1d(mask[:, None].float(), 2, ceil_mode=True)[:, 0] > 0
            x = block(x) * mask[:, None, None, :]
        x = self.embed(x.permute(0, 3, 1, 2).flatten(2))  # (B, frames / 16, embed)
        mean, weights = self.pool(x, mask)
        return torch.cat([mean, weighted_spread(x, mean, weights)], dim=1)

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))

    def losses(
        self, out: dict[str, torch.Tensor], labels: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> dict[str, torch.Tensor]:
        if not self.one_class:
            return super().losses(out, labels, label_smoothing=label_smoothing)
        loss = self.head.loss(out["logits"].float(), labels)
        return {"oc_softmax": loss, "total": loss}


class OneClassHead(nn.Module):
    """OC-softmax (Zhang et al., "One-class learning towards synthetic voice spoofing detection", 2021):
    real clips must sit within a tight cone around a learnt direction (cosine ≥ 0.9), fakes merely
    outside a wide one (cosine ≤ 0.2). The model describes real speech rather than the fakes it saw,
    so a fake unlike them (an unseen vocoder) still falls outside the cone.

    The logit is α·(midpoint − cosine), so P(fake) = sigmoid(logit) as for every detector, and the
    loss is softplus(α·margin ∓ logit): binary cross-entropy with a margin on each side."""

    def __init__(self, dim: int, real_margin: float = 0.9, fake_margin: float = 0.2, scale: float = 20.0) -> None:
        super().__init__()
        self.centre = nn.Parameter(torch.randn(dim) / dim**0.5)
        self.mid, self.half_gap, self.scale = (real_margin + fake_margin) / 2, (real_margin - fake_margin) / 2, scale

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(feat, dim=1) @ F.normalize(self.centre, dim=0)
        return self.scale * (self.mid - cosine)[:, None]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sign = 2 * labels.float() - 1  # +1 fake, -1 real
        return F.softplus(self.scale * self.half_gap - sign * logits).mean()


@register_model({"speech": speech_cfg("audio-bigru-attn", "audio-bigru-attn")})
def audio_bigru_attn(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """MFCC + Δ + ΔΔ (120-d) → 2-layer BiGRU (64 per direction) → attention pooling."""
    return BiGRUAttention(pretrained_cfg, **kwargs)


@register_model({"speech": speech_cfg("audio-cnn-gru", "audio-cnn-gru")})
def audio_cnn_gru(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """MFCC + Δ + ΔΔ → 3 conv blocks (frame rate / 4) → GRU(64) → attention pooling, for edge devices."""
    return ConvGRU(pretrained_cfg, **kwargs)


@register_model({"speech": speech_cfg("audio-spec-cnn", "audio-spec-cnn", features="logspec", phase=False)})
def audio_spec_cnn(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Log spectrogram (257 bins) → 4 conv blocks (8-64 channels) → attention mean + spread."""
    return SpectrogramCNN(pretrained_cfg, **kwargs)
