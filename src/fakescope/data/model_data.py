"""The labelled data behind a model's card: its training folder and its calib / val samples.

Export (static quantization calibrates on calib), backend checks and benchmarks score a model
on exactly the held-out files its card reports on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from fakescope.data.readers import load_samples
from fakescope.data.samples import Sample
from fakescope.data.splits import recorded_split, three_way_split
from fakescope.errors import FakescopeError
from fakescope.models import get_pretrained_cfg
from fakescope.models.config import PretrainedCfg

Split = Literal["val", "calib"]


def data_root(cfg: PretrainedCfg, root: str | Path | None = None) -> Path:
    """The labelled folder the model was trained on (from its card), unless `root` names one."""
    if root is None:
        recorded = cfg.extra.get("config", {}).get("data", {}).get("root")
        if not recorded:
            raise FakescopeError("the model card does not name its training data: pass the labelled data folder")
        root = recorded
    path = Path(root)
    if not path.is_dir():
        raise FakescopeError(f"{path}: labelled data folder not found (pass the folder the model was trained on)")
    return path


def labelled_samples(name: str, split: Split, *, root: str | Path | None = None, limit: int | None = None) -> list[Sample]:
    """The model's `split` samples; `limit` keeps a class-balanced, seeded subset (for quick checks)."""
    cfg = get_pretrained_cfg(name)
    settings = recorded_split(cfg)
    samples = load_samples(data_root(cfg, root), val_fraction=settings.val_fraction, seed=settings.seed)
    chosen = getattr(three_way_split(samples, settings.calib_fraction, seed=settings.seed), split)
    if not chosen:
        raise FakescopeError(f"{name}: the {split} split of its data is empty")
    return balanced_subset(chosen, limit, seed=settings.seed) if limit else chosen


def balanced_subset(samples: Sequence[Sample], n: int, *, seed: int) -> list[Sample]:
    """About n samples, half of each class where possible, in their original order."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in (0, 1):
        idx = [i for i, s in enumerate(samples) if s.label == label]
        keep += rng.choice(idx, min(len(idx), (n + label) // 2), replace=False).tolist() if idx else []
    return [samples[i] for i in sorted(keep)]
