"""`fakescope train` for temporal face models (a recipe with a `sequence:` section, models.temporal).

Labelled videos become face crops as inference cuts them (data.crop_cache: sampled frames, the main face
track), each track becomes sequences of `sequence.length` crops every `sequence.stride` (data.sequences), and
every real train and calib sequence gets `sequence.sbi_copies` self-blended copies (train.sbi_sequences): one
blend per sequence with a little temporal jitter, so flicker and a moving boundary are what the model learns,
from real videos alone. The frame encoder is frozen, so each crop's features are computed once and cached and
the recurrent part trains on them in seconds (train.sequence_fit). Val is scored per sequence and per video;
with `sequence.leave_one_group_out` the same fit is repeated once per source-video group and judged against
the frame model (train.sequence_eval).
"""

from __future__ import annotations

import json
import logging
import time

import torch

from fakescope.data import SequenceSample
from fakescope.data.sequences import face_sequences
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import fit_temperature, sigmoid
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import get_pretrained_cfg
from fakescope.train.card import export_weights, git_sha, input_contract
from fakescope.train.config import SequenceCfg, TrainConfig
from fakescope.train.loaders import make_splits
from fakescope.train.sbi_sequences import self_blended_sequences
from fakescope.train.sequence_eval import leave_one_group_out
from fakescope.train.sequence_fit import (
    blended_dir,
    fit_sequence_head,
    frame_features,
    sequence_logits,
    sequence_set,
    temporal_model,
    video_scores,
)

log = logging.getLogger(__name__)


def sequence_splits(cfg: TrainConfig, seq: SequenceCfg) -> tuple[list[SequenceSample], ...]:
    """Train, calib and val sequences of the recipe's videos (split by source-video group); the reals of train
    and calib also give `sbi_copies` self-blended copies each (val keeps only genuine media)."""
    model_cfg = get_pretrained_cfg(cfg.model)
    splits = make_splits(cfg, model_cfg)
    parts = [
        face_sequences(list(part), length=seq.length, stride=seq.stride) for part in (splits.train, splits.calib, splits.val)
    ]
    for part in parts[:2]:
        reals = [s for s in part if s.label == 0]
        for copy in range(seq.sbi_copies):
            part += self_blended_sequences(reals, blended_dir(cfg), seed=cfg.seed + copy)
    return tuple(parts)


def run_sequence_training(cfg: TrainConfig, *, recipe: str | None = None) -> dict:
    """Fit, calibrate, score val (sequences and videos), optionally judge leave-one-group-out, export; returns the card."""
    seq: SequenceCfg = cfg.sequence  # type: ignore[assignment]
    start = time.monotonic()
    torch.set_num_threads(cfg.threads)
    model, encoder_source = temporal_model(cfg)
    train_seqs, calib_seqs, val_seqs = sequence_splits(cfg, seq)
    if not train_seqs or not calib_seqs or len({s.label for s in calib_seqs}) < 2:
        raise FakescopeError(f"{cfg.data.name}: too few videos for train and calib sequences of both labels")
    table = frame_features(model, [p for s in train_seqs + calib_seqs + val_seqs for p in s.frames], encoder_source)
    train, calib, val = (sequence_set(part, table, seq.length) for part in (train_seqs, calib_seqs, val_seqs))
    choice = fit_sequence_head(model, train, calib, cfg)
    calib_logits = sequence_logits(model, calib)
    temperature = fit_temperature(calib_logits, calib.y)
    thresholds = verdict_thresholds(calib.y, sigmoid(calib_logits / temperature), fpr=cfg.thresholds.fpr, fnr=cfg.thresholds.fnr)
    name = cfg.data.name
    metrics: dict[str, dict] = {}
    if len(val.y):
        probs = sigmoid(sequence_logits(model, val) / temperature)
        metrics[f"{name}/val sequences"] = binary_metrics(val.y, probs)
        _, video_y, video_p = video_scores(val_seqs, probs)
        metrics[f"{name}/val videos"] = binary_metrics(video_y, video_p)
    run_dir = cfg.run_path
    run_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, object] = {}
    if seq.leave_one_group_out:
        report = leave_one_group_out(cfg, encoder_source)
        (run_dir / "leave_one_group_out.json").write_text(json.dumps(report, indent=2))
        metrics.update(report["metrics"])
        extra["leave_one_group_out"] = {k: v for k, v in report.items() if k != "metrics"}
    card = {
        "model": cfg.model,
        "temperature": temperature,
        "thresholds": thresholds,
        **input_contract(get_pretrained_cfg(cfg.model)),
        "metrics": metrics,
        "dataset": f"{name} ({len(train_seqs)} train / {len(calib_seqs)} calib / {len(val_seqs)} val sequences of "
        f"{seq.length} crops, split by source video; train and calib with self-blended copies of their reals)",
        "recipe": recipe or get_pretrained_cfg(cfg.model).recipe,
        "extra": {
            **choice,
            **extra,
            "frame_encoder": encoder_source,
            "git": git_sha(),
            "train_seconds": round(time.monotonic() - start, 1),
            "config": cfg.model_dump(mode="json"),
        },
    }
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    log.info("val (T=%.3f): %s", temperature, {k: v for k, v in metrics.items() if "/val" in k})
    if cfg.out is not None:
        card = export_weights(model, card, cfg.out)
    return card
