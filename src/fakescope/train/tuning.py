"""Light tuning of a probe head: the backbone's last blocks train with the head, from cached inputs to them.

A frozen head (train.probe) reads what the backbone computed once (CLIP class tokens, Whisper block
statistics); a head with `tuned_blocks` = N (models.clip_probe, models.whisper_probe) also owns a copy of
the backbone's last N blocks. Their input, the hidden state after the frozen blocks, never changes, so it
is cached per file (train.features.cached_hidden) and each epoch runs only the N blocks: minutes on a CPU
instead of the hours a pass through the whole backbone would take. Head (optim.lr) and blocks (probe.tune_lr,
much smaller: they start trained) learn together with AdamW on the weighted BCE of the frozen heads, cosine
decay, and the epoch with the lowest calib LogLoss is kept, as for an MLP head.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from fakescope.data import Sample
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import sigmoid
from fakescope.models.clip import bf16_is_fast
from fakescope.train.config import DEFAULT_TUNE_LR, ProbeCfg, TrainConfig
from fakescope.train.features import CLEAN, ProbeModel, cached_hidden

log = logging.getLogger(__name__)

EVAL_BATCH = 256


class Side(Protocol):
    """One side of a fit (train.probe.Fit): cached inputs (CLIP tokens or Whisper statistics), hidden states
    before the tuned blocks, labels, weights."""

    x: np.ndarray
    hidden: np.ndarray | None
    y: np.ndarray
    w: np.ndarray


def tuned_hidden(model: ProbeModel, samples: Sequence[Sample], view: str = CLEAN) -> np.ndarray | None:
    """The cached inputs to a tuned head's blocks (float16); None for a frozen head, which reads its cached inputs only."""
    return cached_hidden(model, samples, view) if model.tuned_blocks else None


def _features(model: ProbeModel, x: np.ndarray, hidden: np.ndarray, *, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return model.hidden_features(torch.from_numpy(x), torch.from_numpy(hidden))


def tuned_logits(model: ProbeModel, x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Raw logits (eval mode) from cached inputs and hidden states, computed as `model(input)` does after the
    frozen blocks (bf16 where that is fast, the head in float32)."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            part = slice(start, start + EVAL_BATCH)
            feat = _features(model, x[part], hidden[part], bf16=bf16_is_fast())
            out.append(model.classifier(feat.float()).reshape(-1).numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def fit_tuned(model: ProbeModel, train: Side, calib: Side, cfg: TrainConfig) -> dict[str, object]:
    """Head and tuned blocks (started from the tower's own) trained jointly for `schedule.epochs`; the epoch with
    the lowest calib LogLoss is kept. The standardisation statistics are already set (from the frozen tokens)."""
    probe: ProbeCfg = cfg.probe  # type: ignore[assignment]
    assert train.hidden is not None and calib.hidden is not None
    torch.manual_seed(cfg.seed)
    model.init_tuned_blocks()
    tune_lr = probe.tune_lr or DEFAULT_TUNE_LR
    y, w = torch.from_numpy(train.y).float(), torch.from_numpy(train.w).float()
    opt = torch.optim.AdamW(
        [
            {"params": list(model.head.parameters()), "lr": cfg.optim.lr},
            {"params": list(model.blocks.parameters()), "lr": tune_lr},
        ],
        weight_decay=cfg.optim.weight_decay,
    )
    trained = [p for group in opt.param_groups for p in group["params"]]
    steps = cfg.schedule.epochs * -(-len(y) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    bf16 = cfg.amp and bf16_is_fast()
    history: list[float] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for epoch in range(cfg.schedule.epochs):
        start = time.monotonic()
        model.train()
        for batch in torch.randperm(len(y)).split(cfg.batch_size):
            rows = np.sort(batch.numpy())  # sorted rows read the float16 cache in order
            logits = model.classifier(_features(model, train.x[rows], train.hidden[rows], bf16=bf16).float()).reshape(-1)
            loss = (F.binary_cross_entropy_with_logits(logits, y[rows], reduction="none") * w[rows]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, cfg.optim.grad_clip)
            opt.step()
            schedule.step()
        loss = binary_metrics(calib.y, sigmoid(tuned_logits(model, calib.x, calib.hidden)))["logloss"]
        history.append(round(loss, 4))
        seconds = time.monotonic() - start
        log.info("tuning epoch %d/%d: calib LogLoss %.4f (%.0f s)", epoch + 1, cfg.schedule.epochs, loss, seconds)
        if best is None or loss < best[0]:
            best = (loss, {k: v.clone() for k, v in model.state_dict().items()})
    assert best is not None
    model.load_state_dict(best[1])
    return {
        "best_epoch": int(np.argmin(history)) + 1,
        "calib_logloss_by_epoch": history,
        "tuned_blocks": model.tuned_blocks,
        "tune_lr": tune_lr,
    }
