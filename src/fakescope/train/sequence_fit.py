"""Fitting a temporal face model's recurrent part on cached frame features: what `fakescope train` runs for a
`sequence:` recipe (train.sequence) and repeats per held-out group (train.sequence_eval).

The frame encoder is frozen, so each crop's features are computed once and cached (train.features) and the
recurrent part trains on them in seconds: AdamW + one-cycle on class-balanced BCE with temporal CutMix
(train.augment.cutmix_sequences), the epoch with the lowest calib LogLoss kept. A video's score is the
pipeline's track score over its sequences (detect.fusion.track_score).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fakescope.data import SequenceSample
from fakescope.data.crop_cache import DEFAULT_CACHE_ROOT
from fakescope.data.images import load_rgb
from fakescope.data.samples import Sample
from fakescope.detect.fusion import track_score
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import sigmoid
from fakescope.models import create_model
from fakescope.models.base import ClassifierModel
from fakescope.models.temporal import (
    Conv3DSequenceModel,
    RecurrentSequenceModel,
    load_frame_encoder_weights,
    load_video_network_weights,
)
from fakescope.models.transforms import crops_to_tensor
from fakescope.train.augment import cutmix_sequences
from fakescope.train.config import TrainConfig
from fakescope.train.features import DEFAULT_CACHE, cached_values
from fakescope.train.sequence_pixels import PixelSequences, class_weights, crop_table, fit_pixels, pixel_logits

log = logging.getLogger(__name__)

EVAL_BATCH = 256
FEATURE_BATCH = 32


@dataclass
class SequenceSet:
    """Sequences with their cached frame features (N, T, D), mask of frames with a crop (N, T) and labels."""

    sequences: list[SequenceSample]
    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray


def blended_dir(cfg: TrainConfig) -> Path:
    """Where a recipe's self-blended sequences are written (beside its crop cache)."""
    return (cfg.data.crop_cache or DEFAULT_CACHE_ROOT / cfg.data.root.name) / "sbi_sequences"


def frame_features(model: RecurrentSequenceModel, paths: Sequence[Path], encoder_source: str) -> dict[Path, np.ndarray]:
    """Each crop's frozen-encoder features (D,), computed once per file and encoder (runs/features/frames-...)."""
    unique = sorted(set(paths))
    key = hashlib.sha1(encoder_source.encode()).hexdigest()[:10]
    size = model.pretrained_cfg.image_size

    def compute(files: Sequence[Path]) -> np.ndarray:
        out = []
        model.eval()
        with torch.no_grad():
            for start in range(0, len(files), FEATURE_BATCH):
                pixels = crops_to_tensor([load_rgb(p, size) for p in files[start : start + FEATURE_BATCH]], model.pretrained_cfg)
                out.append(model.encoder(pixels).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, model.frame_dim), np.float32)

    samples = [Sample(path=p, label=0, group="", split="") for p in unique]
    values = cached_values(samples, DEFAULT_CACHE / f"frames-{model.encoder_name}-{key}" / "clean", compute, "frame features")
    return dict(zip(unique, values, strict=True))


def sequence_set(sequences: list[SequenceSample], table: dict[Path, np.ndarray], length: int) -> SequenceSet:
    dim = len(next(iter(table.values()))) if table else 0
    x = np.zeros((len(sequences), length, dim), np.float32)
    mask = np.zeros((len(sequences), length), bool)
    for i, seq in enumerate(sequences):
        for t, path in enumerate(seq.frames[:length]):
            x[i, t], mask[i, t] = table[path], True
    return SequenceSet(sequences, x, mask, np.array([s.label for s in sequences], dtype=int))


def sequence_logits(model: RecurrentSequenceModel, data: SequenceSet) -> np.ndarray:
    """Raw logits (eval mode) of cached sequences."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data.y), EVAL_BATCH):
            part = slice(start, start + EVAL_BATCH)
            pooled, _ = model.sequence_features(torch.from_numpy(data.x[part]), torch.from_numpy(data.mask[part]))
            out.append(model.classifier(pooled).reshape(-1).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def fit_sequence_head(model: RecurrentSequenceModel, train: SequenceSet, calib: SequenceSet, cfg: TrainConfig) -> dict:
    """Recurrent part and head (the encoder stays frozen) trained for `schedule.epochs`; the epoch with the lowest
    calib LogLoss is kept."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    trained = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
    opt = torch.optim.AdamW(trained, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    steps = cfg.schedule.epochs * -(-len(train.y) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.optim.lr, total_steps=steps, pct_start=cfg.schedule.warmup)
    x, mask = torch.from_numpy(train.x), torch.from_numpy(train.mask)
    y, w = torch.from_numpy(train.y), torch.from_numpy(class_weights(train.y)).float()
    history: list[float] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for _ in range(cfg.schedule.epochs):
        model.train()
        for batch in torch.randperm(len(y), generator=generator).split(cfg.batch_size):
            xb, mb, target = cutmix_sequences(
                x[batch], mask[batch], y[batch], alpha=cfg.augment.cutmix.alpha, p=cfg.augment.cutmix.p, generator=generator
            )
            logits = model.classifier(model.sequence_features(xb, mb)[0]).reshape(-1)
            loss = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * w[batch]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, cfg.optim.grad_clip)
            opt.step()
            schedule.step()
        loss = binary_metrics(calib.y, sigmoid(sequence_logits(model, calib)))["logloss"]
        history.append(round(loss, 4))
        if best is None or loss < best[0]:
            best = (loss, {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("encoder.")})
    assert best is not None
    model.load_state_dict(best[1], strict=False)
    return {"best_epoch": int(np.argmin(history)) + 1, "calib_logloss_by_epoch": history}


def video_scores(sequences: Sequence[SequenceSample], probs: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(videos, labels, scores): each video's sequences fused as the pipeline fuses a track (track_score)."""
    by_video: dict[str, list[int]] = {}
    for i, seq in enumerate(sequences):
        by_video.setdefault(seq.video, []).append(i)
    videos = sorted(by_video)
    labels = np.array([sequences[by_video[v][0]].label for v in videos], dtype=int)
    return videos, labels, np.array([track_score(probs[by_video[v]]) for v in videos])


class SequenceFitter:
    """One way to fit a temporal model on sequences, from its starting weights every time (a protocol fold refits):
    what each crop gives the fit (`table`: features or pixels) is read once, however many fits use it."""

    def __init__(self, model: ClassifierModel, length: int, source: str) -> None:
        self.model, self.length, self.source = model, length, source  # source: where the starting weights came from
        self.start = {k: v.clone() for k, v in model.state_dict().items()}
        self.table: dict[Path, np.ndarray] = {}

    def prepare(self, sequences: Sequence[SequenceSample]) -> None:
        """Read or compute (cached) what fitting and scoring these sequences needs."""
        missing = sorted({p for s in sequences for p in s.frames if p not in self.table})
        if missing:
            self.table.update(self._read(missing))

    def fit(self, train: list[SequenceSample], calib: list[SequenceSample], cfg: TrainConfig) -> dict:
        self.model.load_state_dict(self.start)
        return self._fit(train, calib, cfg)

    def _read(self, paths: list[Path]) -> dict[Path, np.ndarray]:
        raise NotImplementedError

    def _fit(self, train: list[SequenceSample], calib: list[SequenceSample], cfg: TrainConfig) -> dict:
        raise NotImplementedError

    def logits(self, sequences: list[SequenceSample]) -> np.ndarray:
        raise NotImplementedError


class FeatureFitter(SequenceFitter):
    """Recurrent models: the frozen encoder's features of each crop cached once, the rest trained on them."""

    model: RecurrentSequenceModel

    def __init__(self, model: RecurrentSequenceModel, length: int) -> None:
        super().__init__(model, length, load_frame_encoder_weights(model.encoder_name, model.encoder))

    def _read(self, paths: list[Path]) -> dict[Path, np.ndarray]:
        return frame_features(self.model, paths, self.source)

    def _fit(self, train: list[SequenceSample], calib: list[SequenceSample], cfg: TrainConfig) -> dict:
        return fit_sequence_head(self.model, self._set(train), self._set(calib), cfg)

    def logits(self, sequences: list[SequenceSample]) -> np.ndarray:
        return sequence_logits(self.model, self._set(sequences))

    def _set(self, sequences: list[SequenceSample]) -> SequenceSet:
        return sequence_set(sequences, self.table, self.length)


class PixelFitter(SequenceFitter):
    """3-D networks: every layer trained from the crops' pixels (train.sequence_pixels)."""

    model: Conv3DSequenceModel

    def __init__(self, model: Conv3DSequenceModel, length: int) -> None:
        super().__init__(model, length, load_video_network_weights(model.arch, model.network))

    def _read(self, paths: list[Path]) -> dict[Path, np.ndarray]:
        return crop_table(paths, self.model.pretrained_cfg.image_size)

    def _fit(self, train: list[SequenceSample], calib: list[SequenceSample], cfg: TrainConfig) -> dict:
        return fit_pixels(self.model, self._data(train), self._data(calib), cfg)

    def logits(self, sequences: list[SequenceSample]) -> np.ndarray:
        return pixel_logits(self.model, self._data(sequences))

    def _data(self, sequences: list[SequenceSample]) -> PixelSequences:
        return PixelSequences(sequences, self.table, self.model, self.length)


def sequence_fitter(cfg: TrainConfig) -> SequenceFitter:
    """The recipe's temporal model, its starting weights loaded, with the way it is fitted."""
    model = create_model(cfg.model, pretrained=False, **cfg.model_args)
    length = cfg.sequence.length if cfg.sequence is not None else 0
    if isinstance(model, RecurrentSequenceModel):
        return FeatureFitter(model, length)
    if isinstance(model, Conv3DSequenceModel):
        return PixelFitter(model, length)
    raise FakescopeError(f"{cfg.model}: a sequence recipe needs a temporal model (temporal-effnet-lite0-bilstm, ...)")
