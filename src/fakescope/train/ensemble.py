"""`fakescope train-ensemble STACK`: fit a stack's logistic-regression meta-model.

The meta-model is fitted on the calib split — train groups that none of the members saw
(they used it only to pick their epoch and temperature) — and reported on val, which
neither the members nor the meta-model touched. Members must have been trained with the
same data, seed and calib fraction, or the calib split of one would be the train split of
another; that is checked from their cards.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader

from fakescope.data import SplitSettings, load_samples, recorded_split, three_way_split
from fakescope.data.audio import SpeechClipDataset, pad_batch
from fakescope.data.images import FaceCropDataset
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.stack import StackedModel
from fakescope.models.transforms import eval_transform
from fakescope.train.card import export_weights, git_sha, input_contract
from fakescope.train.loaders import data_extensions

log = logging.getLogger(__name__)


def shared_split_settings(members: list[str]) -> SplitSettings:
    """The split settings common to every member's training run (a stack is fitted on their shared calib)."""
    for name in members:
        if get_pretrained_cfg(name).training_split() is None:
            raise FakescopeError(f"{name}: its card has no training config; train it with `fakescope train` first")
    settings = {recorded_split(get_pretrained_cfg(name)) for name in members}
    if len(settings) != 1:
        raise FakescopeError(f"stack members were trained on different splits: {sorted(settings, key=str)}")
    return settings.pop()


def member_logits(stack: StackedModel, samples, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every member's raw logit on each sample: face crops, or a speech clip's first window."""
    cfg = stack.pretrained_cfg
    if cfg.input_kind == "audio":
        loader = DataLoader(SpeechClipDataset(samples, cfg), batch_size=batch_size, collate_fn=pad_batch)
    else:
        loader = DataLoader(FaceCropDataset(samples, cfg.image_size, eval_transform(cfg)), batch_size=batch_size)
    feats, labels = [], []
    with torch.inference_mode():
        for images, y in loader:
            feats.append(stack.features(images).numpy())
            labels.append(y.numpy())
    return np.concatenate(feats), np.concatenate(labels)


def train_ensemble(
    name: str, data: Path, *, out: Path | None = None, batch_size: int = 64, threads: int = 2, limit: int | None = None
) -> dict:
    """Fit `name`'s meta-model on calib, report on val, optionally export weights + card.

    `limit` keeps every n-th sample of calib and val so that at most `limit` remain (smoke runs).
    """
    torch.set_num_threads(threads)
    stack = create_model(name, pretrained=False)
    if not isinstance(stack, StackedModel):
        raise FakescopeError(f"{name} is not a stacked ensemble (see `fakescope models 'stack-*'`)")
    settings = shared_split_settings(stack.member_names)
    samples = load_samples(
        data, val_fraction=settings.val_fraction, seed=settings.seed, extensions=data_extensions(stack.pretrained_cfg)
    )
    splits = three_way_split(samples, settings.calib_fraction, seed=settings.seed)
    calib, val = splits.calib, splits.val
    if limit:
        calib, val = calib[:: max(1, len(calib) // limit)], val[:: max(1, len(val) // limit)]
    x_calib, y_calib = member_logits(stack, calib, batch_size)
    x_val, y_val = member_logits(stack, val, batch_size)
    meta = LogisticRegression(C=1.0).fit(x_calib, y_calib)
    with torch.no_grad():
        stack.head.weight.copy_(torch.tensor(meta.coef_, dtype=torch.float32))
        stack.head.bias.copy_(torch.tensor(meta.intercept_, dtype=torch.float32))
    probs = meta.predict_proba(x_val)[:, 1]
    thresholds = verdict_thresholds(y_calib, meta.predict_proba(x_calib)[:, 1])
    metrics = {data.name + "/val": binary_metrics(y_val, probs)}
    members = {
        m: binary_metrics(y_val, 1 / (1 + np.exp(-x_val[:, i] / get_pretrained_cfg(m).temperature)))
        for i, m in enumerate(stack.member_names)
    }
    log.info("stack %s val: %s", name, metrics)
    card = {
        "model": name,
        **input_contract(stack.pretrained_cfg),
        "temperature": 1.0,
        "thresholds": thresholds,
        "metrics": metrics,
        "dataset": f"{data.name}: meta-model fitted on {len(calib)} calib samples, reported on {len(val)} val samples",
        "recipe": f"fakescope train-ensemble {name} --data {data} --out src/fakescope/weights",
        "extra": {
            "members": stack.member_names,
            "coef": meta.coef_.ravel().tolist(),
            "intercept": float(meta.intercept_[0]),
            "member_metrics": members,
            "git": git_sha(),
            "config": {
                "data": {"val_fraction": settings.val_fraction, "calib_fraction": settings.calib_fraction},
                "seed": settings.seed,
            },
        },
    }
    if out is not None:
        card = export_weights(stack, card, out)
    return card
