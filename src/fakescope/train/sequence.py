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
from pathlib import Path

import numpy as np
import torch

from fakescope.data import SequenceSample
from fakescope.data.sequences import face_sequences
from fakescope.detect.fusion import VIDEO_CALIBRATION_FILE
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import fit_temperature, sigmoid
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import get_pretrained_cfg
from fakescope.train.card import export_weights, git_sha, input_contract, write_fit
from fakescope.train.config import SequenceCfg, TrainConfig
from fakescope.train.loaders import make_splits
from fakescope.train.sbi_sequences import self_blended_sequences
from fakescope.train.sequence_eval import leave_one_group_out
from fakescope.train.sequence_fit import blended_dir, sequence_fitter, video_scores

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
    fitter = sequence_fitter(cfg)
    train, calib, val = sequence_splits(cfg, seq)
    if not train or not calib or len({s.label for s in calib}) < 2:
        raise FakescopeError(f"{cfg.data.name}: too few videos for train and calib sequences of both labels")
    fitter.prepare(train + calib + val)
    choice = fitter.fit(train, calib, cfg)
    calib_y = np.array([s.label for s in calib])
    calib_logits = fitter.logits(calib)
    temperature = fit_temperature(calib_logits, calib_y)
    thresholds = verdict_thresholds(calib_y, sigmoid(calib_logits / temperature), fpr=cfg.thresholds.fpr, fnr=cfg.thresholds.fnr)
    name = cfg.data.name
    metrics: dict[str, dict] = {}
    if val:
        probs = sigmoid(fitter.logits(val) / temperature)
        metrics[f"{name}/val sequences"] = binary_metrics(np.array([s.label for s in val]), probs)
        _, video_y, video_p = video_scores(val, probs)
        metrics[f"{name}/val videos"] = binary_metrics(video_y, video_p)
    run_dir = cfg.run_path
    run_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, object] = {}
    if seq.leave_one_group_out:
        shipped = {k: v.clone() for k, v in fitter.model.state_dict().items()}
        report = leave_one_group_out(cfg, fitter)
        fitter.model.load_state_dict(shipped)
        (run_dir / "leave_one_group_out.json").write_text(json.dumps(report, indent=2))
        metrics.update(report["metrics"])
        extra["leave_one_group_out"] = {k: v for k, v in report.items() if k != "metrics"}
    card = {
        "model": cfg.model,
        "temperature": temperature,
        "thresholds": thresholds,
        **input_contract(get_pretrained_cfg(cfg.model)),
        "metrics": metrics,
        "dataset": f"{name} ({len(train)} train / {len(calib)} calib / {len(val)} val sequences of {seq.length} crops, "
        "split by source video; train and calib with self-blended copies of their reals)",
        "recipe": recipe or get_pretrained_cfg(cfg.model).recipe,
        "extra": {
            **choice,
            **extra,
            "starting_weights": fitter.source,
            "git": git_sha(),
            "train_seconds": round(time.monotonic() - start, 1),
            "config": cfg.model_dump(mode="json"),
        },
    }
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    log.info("val (T=%.3f): %s", temperature, {k: v for k, v in metrics.items() if "/val" in k})
    if cfg.out is not None:
        card = export_weights(fitter.model, card, cfg.out)
        if seq.leave_one_group_out:
            write_video_map(cfg, report, card, cfg.out)
    return card


def write_video_map(cfg: TrainConfig, report: dict, card: dict, out: Path) -> None:
    """Ship the temporal model's video map (weights/video_calibration.json, as `fakescope fit-fusion` ships the frame
    models'), fitted on the leave-one-group-out scores: the shipped model is trained like each fold, on every group."""
    entry = {
        "face_model": cfg.model,
        **report["video_map"],
        "metrics": {k.split(": ", 1)[1]: v for k, v in report["metrics"].items() if "leave one group out" in k},
        "dataset": f"{cfg.data.name} ({len(report['videos'])} clips in {report['groups']} groups, leave one group out)",
        "recipe": card["recipe"],
        "weights_sha256": card.get("sha256"),
        "git": git_sha(),
    }
    write_fit(out / VIDEO_CALIBRATION_FILE, entry, keys=("face_model",))
