"""3-D networks (models.temporal.Conv3DSequenceModel) train from pixels: every layer learns, so nothing can be
cached but the crops themselves, read once at the model's size and held as uint8 (a few thousand crops of 112 px
are tens of MB). Training flips a whole sequence left-right at random and mixes sequences with temporal CutMix;
AdamW + one-cycle on class-balanced BCE, bf16 where the CPU has it, and the epoch with the lowest calib LogLoss
is kept, as for the recurrent models (train.sequence_fit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from fakescope.data import SequenceSample
from fakescope.data.images import load_rgb
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import sigmoid
from fakescope.models.clip import bf16_is_fast
from fakescope.models.temporal import Conv3DSequenceModel
from fakescope.models.transforms import crops_to_tensor
from fakescope.train.augment import cutmix_sequences
from fakescope.train.config import TrainConfig

log = logging.getLogger(__name__)

EVAL_BATCH = 16


def class_weights(y: np.ndarray) -> np.ndarray:
    """Each class the same total weight, averaging 1 per sequence."""
    counts = np.bincount(y, minlength=2).astype(float)
    return np.where(y == 1, len(y) / (2 * max(counts[1], 1)), len(y) / (2 * max(counts[0], 1)))


def crop_table(paths: Sequence[Path], size: int) -> dict[Path, np.ndarray]:
    """Each crop file once, as (size, size, 3) uint8 read as inference reads it (data.images.load_rgb)."""
    return {p: load_rgb(p, size) for p in sorted(set(paths))}


class PixelSequences(Dataset):
    """(T, 3, H, W) normalised sequences and labels; frames past a short track's end are exact zeros (the model
    fills them with the track's last crop). `flip` mirrors a whole sequence with probability 0.5."""

    def __init__(
        self, sequences: Sequence[SequenceSample], table: dict[Path, np.ndarray], model: Conv3DSequenceModel, length: int
    ) -> None:
        self.sequences, self.table, self.cfg, self.length = list(sequences), table, model.pretrained_cfg, length
        self.flip = False

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        seq = self.sequences[i]
        crops = np.stack([self.table[p] for p in seq.frames[: self.length]])
        if self.flip and np.random.random() < 0.5:
            crops = crops[:, :, ::-1]
        x = crops_to_tensor(np.ascontiguousarray(crops), self.cfg)
        out = torch.zeros(self.length, *x.shape[1:])
        out[: len(x)] = x
        return out, seq.label


def pixel_logits(model: Conv3DSequenceModel, data: PixelSequences) -> np.ndarray:
    """Raw logits (eval mode) of every sequence, in order."""
    model.eval()
    data.flip = False
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_fast()):
        for x, _ in DataLoader(data, batch_size=EVAL_BATCH):
            out.append(model(x)["logits"].float().numpy().astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def fit_pixels(model: Conv3DSequenceModel, train: PixelSequences, calib: PixelSequences, cfg: TrainConfig) -> dict:
    """Every layer trained for `schedule.epochs`; the epoch with the lowest calib LogLoss is kept."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)  # the flips
    generator = torch.Generator().manual_seed(cfg.seed)
    y = np.array([s.label for s in train.sequences])
    weights = torch.from_numpy(class_weights(y)).float()
    calib_y = np.array([s.label for s in calib.sequences])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    batches = -(-len(train) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.optim.lr, total_steps=cfg.schedule.epochs * batches, pct_start=cfg.schedule.warmup
    )
    bf16 = cfg.amp and bf16_is_fast()
    history: list[float] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for epoch in range(cfg.schedule.epochs):
        model.train()
        train.flip = True
        order = torch.randperm(len(train), generator=generator)
        for rows in order.split(cfg.batch_size):
            items = [train[int(i)] for i in rows]
            x, labels = torch.stack([x for x, _ in items]), torch.tensor([label for _, label in items])
            mask = x.flatten(2).abs().amax(dim=2) > 0
            x, _, target = cutmix_sequences(
                x, mask, labels, alpha=cfg.augment.cutmix.alpha, p=cfg.augment.cutmix.p, generator=generator
            )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)["logits"].float()
            loss = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weights[rows]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            schedule.step()
        loss = binary_metrics(calib_y, sigmoid(pixel_logits(model, calib)))["logloss"]
        history.append(round(loss, 4))
        log.info("3-D epoch %d/%d: calib LogLoss %.4f", epoch + 1, cfg.schedule.epochs, loss)
        if best is None or loss < best[0]:
            best = (loss, {k: v.clone() for k, v in model.state_dict().items()})
    assert best is not None
    model.load_state_dict(best[1])
    return {"best_epoch": int(np.argmin(history)) + 1, "calib_logloss_by_epoch": history}
