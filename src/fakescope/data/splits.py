"""Splits by group, so nothing of a val video, speaker or person leaks into training.

Training, `fakescope eval`, stacking and export all rebuild a model's splits here, from the
settings recorded in its card (`recorded_split`), so a figure on "val" is always on the same files.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fakescope.data.samples import Sample, T, VideoSample
from fakescope.errors import FakescopeError

if TYPE_CHECKING:
    from fakescope.models.config import PretrainedCfg

log = logging.getLogger(__name__)

# The platform's split settings when a run does not set them (train.config's defaults).
DEFAULT_VAL_FRACTION = 0.15
DEFAULT_CALIB_FRACTION = 0.1
DEFAULT_SEED = 20261123


@dataclass(frozen=True)
class SplitSettings:
    """How a labelled folder was cut: val share (when it declares no split), calib share of train groups, seed."""

    val_fraction: float = DEFAULT_VAL_FRACTION
    calib_fraction: float = DEFAULT_CALIB_FRACTION
    seed: int = DEFAULT_SEED


def recorded_split(cfg: PretrainedCfg) -> SplitSettings:
    """The split settings of the run behind `cfg`'s weights, from its card (the defaults when the
    card does not record them), so every tool rebuilds exactly the val and calib sets it reported on."""
    recorded = cfg.training_split()
    return SplitSettings() if recorded is None else SplitSettings(*recorded)


@dataclass
class Splits:
    """train: what the weights see; calib: held-out train groups that pick the epoch, the
    temperature and the thresholds (and fit stacks); val: touched only to report."""

    train: list[Sample]
    calib: list[Sample]
    val: list[Sample]


def three_way_split(samples: Sequence[Sample], calib_fraction: float, *, seed: int) -> Splits:
    """The dataset's train/val split with `calib_fraction` of the train groups moved to calib."""
    train, calib = split_groups([s for s in samples if s.split == "train"], calib_fraction, seed=seed)
    return Splits(train, calib, [s for s in samples if s.split == "val"])


def split_groups(samples: Sequence[Sample], fraction: float, *, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Move `fraction` of the groups (not samples) into a second list, deterministically."""
    groups = sorted({s.group for s in samples})
    rng = random.Random(seed)
    rng.shuffle(groups)
    held = set(groups[: round(len(groups) * fraction)])
    return [s for s in samples if s.group not in held], [s for s in samples if s.group in held]


def stratified_split_groups(samples: Sequence[T], fraction: float, *, seed: int) -> tuple[list[T], list[T]]:
    """`split_groups` done per stratum of groups with the same labels, so val keeps the class ratio.

    A group holding a real and its fakes is one stratum, all-real and all-fake groups are others.
    """
    if not 0.0 <= fraction < 1.0:
        raise FakescopeError(f"val fraction must be in [0, 1), got {fraction}")
    labels: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        labels[s.group].add(s.label)
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for group in sorted(labels):
        strata[tuple(sorted(labels[group]))].append(group)
    rng = random.Random(seed)
    held: set[str] = set()
    for key in sorted(strata):
        groups = strata[key]
        rng.shuffle(groups)
        held.update(groups[: round(len(groups) * fraction)])
    return [s for s in samples if s.group not in held], [s for s in samples if s.group in held]


def assign_splits(items: Sequence[T], val_fraction: float, *, seed: int, source: Path) -> list[T]:
    """Every item with split train or val, in the input order.

    Declared splits are kept when they name a val set (and are checked for leaks); when none
    is declared, or only train (DFDC's own metadata says train everywhere), groups are split
    with `stratified_split_groups`. Empty splits next to a declared val set are an error.
    """
    declared = {item.split or "" for item in items}
    if "val" in declared:
        if "" in declared:
            missing = next(item for item in items if not item.split)
            raise FakescopeError(f"{source}: {missing.path.name!r} has no split but other rows do")
        check_no_leakage(items, source)
        return list(items)
    if "train" in declared:
        log.info("%s: no val split declared; holding out %.0f%% of the groups", source, 100 * val_fraction)
    _, val = stratified_split_groups(items, val_fraction, seed=seed)
    held = {item.group for item in val}
    return [replace(item, split="val" if item.group in held else "train") for item in items]


def check_no_leakage(items: Sequence[Sample | VideoSample], source: Path) -> None:
    """Raise if a group has members in both train and val (its val score would be inflated)."""
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        splits[item.group].add(item.split or "")
    leaked = sorted(group for group, names in splits.items() if len(names) > 1)
    if leaked:
        raise FakescopeError(f"{source}: group {leaked[0]!r} is in both train and val ({len(leaked)} groups leak)")
