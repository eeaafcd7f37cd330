"""A run's data: its train / calib / val split (built from the recipe's data section) and the DataLoaders over it.

Image runs read face crops or pictures (with the recipe's augmentations, self-blended pseudo-fakes
and CutMix partners); audio runs read speech clips (the corpus is built first when the recipe names
one), optionally drawn family-balanced.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from fakescope.data import LABELS, Sample, Splits, load_samples, three_way_split
from fakescope.data.audio import NoiseAugment, SpeechClipDataset, SpeedAugment, balanced_weights, pad_batch
from fakescope.data.crop_cache import DEFAULT_CACHE_ROOT
from fakescope.data.images import FaceCropDataset
from fakescope.errors import FakescopeError
from fakescope.media.files import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from fakescope.models.config import PretrainedCfg
from fakescope.models.transforms import eval_transform
from fakescope.train.augment import build_train_transform
from fakescope.train.config import TrainConfig
from fakescope.train.landmarks import face_landmarks
from fakescope.train.sbi import SelfBlendedDataset
from fakescope.train.speech.corpus import build_speech_corpus
from fakescope.train.speech.rawboost import RawBoostAugment

log = logging.getLogger(__name__)


def data_extensions(model_cfg: PretrainedCfg) -> frozenset[str]:
    """The files a model's data folders are read for: audio files for a speech model, pictures otherwise."""
    return AUDIO_EXTENSIONS if model_cfg.input_kind == "audio" else IMAGE_EXTENSIONS


def make_splits(cfg: TrainConfig, model_cfg: PretrainedCfg) -> Splits:
    data = cfg.data
    if data.speech_corpus is not None:
        corpus = data.speech_corpus
        build_speech_corpus(
            data.root,
            real_root=corpus.real,
            synth_root=corpus.synth,
            seed=cfg.seed,
            workers=corpus.workers,
            generators=corpus.generators,
            val_speakers=corpus.val_speakers,
            val_fraction=corpus.val_fraction,
            digit_passes=corpus.digit_passes,
        )
    cache = data.crop_cache or DEFAULT_CACHE_ROOT / data.root.name
    extensions = data_extensions(model_cfg)
    samples = load_samples(
        data.root,
        val_fraction=data.val_fraction,
        seed=cfg.seed,
        crop_cache=cache,
        frames_per_video=data.frames_per_video,
        face_cfg=model_cfg,
        extensions=extensions,
    )
    splits = three_way_split(tag_dataset(samples, data.root.name), data.calib_fraction, seed=cfg.seed)
    for source in data.also:
        labels = {LABELS[name] for name in source.labels}
        more = load_samples(
            source.root,
            val_fraction=source.val_fraction or data.val_fraction,
            seed=cfg.seed,
            frames_per_video=data.frames_per_video,  # a video folder's crops are cut as the root's
            face_cfg=model_cfg,
            extensions=extensions,
        )
        part = three_way_split(
            [s for s in tag_dataset(more, source.root.name) if s.label in labels], data.calib_fraction, seed=cfg.seed
        )
        splits = Splits(splits.train + part.train, splits.calib + part.calib, splits.val + part.val)
    train, calib, val = exclude_rows(splits.train, data.exclude), exclude_rows(splits.calib, data.exclude), splits.val
    if data.limit:
        rng = np.random.default_rng(cfg.seed)

        def subset(items: list[Sample], n: int) -> list[Sample]:
            return [items[i] for i in sorted(rng.choice(len(items), min(n, len(items)), replace=False))]

        train, calib, val = (
            subset(train, data.limit),
            subset(calib, max(data.limit // 4, 8)),
            subset(val, max(data.limit // 4, 8)),
        )
    for name, part in (("train", train), ("calib", calib), ("val", val)):
        if name == "val" and not part and data.val_fraction == 0:  # asked for: its figures come from elsewhere
            continue
        if not part or len({s.label for s in part}) < 2:
            raise FakescopeError(f"{data.root}: the {name} split needs both REAL and FAKE samples (has {len(part)})")
    log.info("train %d, calib %d, val %d samples", len(train), len(calib), len(val))
    return Splits(train, calib, val)


def tag_dataset(samples: list[Sample], name: str) -> list[Sample]:
    """Record which folder each sample came from (`info["dataset"]`): val metrics are reported per dataset."""
    return [replace(s, info={**s.info, "dataset": name}) for s in samples]


def exclude_rows(samples: list[Sample], rules: list[str]) -> list[Sample]:
    """Drop samples whose labels.csv column matches a `column=value` rule (a generator held out of training)."""
    for rule in rules:
        column, sep, value = rule.partition("=")
        if not sep or not column:
            raise FakescopeError(f"data.exclude: {rule!r} is not column=value")
        if samples and not any(column in s.info for s in samples):
            raise FakescopeError(f"data.exclude: no column {column!r} in labels.csv")
        samples = [s for s in samples if s.info.get(column) != value]
    return samples


def make_loaders(cfg: TrainConfig, model_cfg: PretrainedCfg, splits: Splits) -> dict[str, DataLoader]:
    if model_cfg.input_kind == "audio":
        return make_audio_loaders(cfg, model_cfg, splits)
    size = model_cfg.image_size
    base = FaceCropDataset(splits.train, size, build_train_transform(model_cfg, cfg.augment.pixel()))
    train_ds: torch.utils.data.Dataset = base
    if cfg.augment.sbi.p > 0:
        cache = cfg.run_path.parent / "landmarks" / f"{cfg.data.root.name}.npz"
        marks = face_landmarks([s.path for s in splits.train if s.label == 0], cache)
        train_ds = SelfBlendedDataset.from_face_crops(base, marks, p=cfg.augment.sbi.p, transform=base.transform)
    generator = torch.Generator().manual_seed(cfg.seed)
    loader_kw = {"num_workers": cfg.workers, "persistent_workers": cfg.workers > 0}
    return {
        "train": DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=generator, **loader_kw),
        "calib": DataLoader(FaceCropDataset(splits.calib, size, eval_transform(model_cfg)), batch_size=cfg.eval_batch_size),
        "val": DataLoader(FaceCropDataset(splits.val, size, eval_transform(model_cfg)), batch_size=cfg.eval_batch_size),
    }


def make_audio_loaders(cfg: TrainConfig, model_cfg: PretrainedCfg, splits: Splits) -> dict[str, DataLoader]:
    if cfg.augment.pixel() or cfg.augment.sbi.p or cfg.augment.cutmix.p:
        raise FakescopeError(f"{cfg.model}: audio models take only augment.noise, speed, rawboost and crop_seconds")
    noise = NoiseAugment(cfg.augment.noise.p, cfg.augment.noise.snr_db)
    generator = torch.Generator().manual_seed(cfg.seed)
    speed = SpeedAugment(cfg.augment.speed.p, cfg.augment.speed.factor)
    rawboost = RawBoostAugment(cfg.augment.rawboost.p, cfg.augment.rawboost.stages)
    train = SpeechClipDataset(
        splits.train,
        model_cfg,
        train=True,
        noise=noise,
        speed=speed,
        rawboost=rawboost,
        crop_seconds=cfg.augment.crop_seconds,
        seed=cfg.seed,
    )
    order: dict[str, object] = {"shuffle": True}
    if cfg.data.balance_power:
        weights = torch.from_numpy(balanced_weights(train.samples, cfg.data.balance_power))
        order = {"sampler": WeightedRandomSampler(weights, len(train), replacement=True, generator=generator)}
    return {
        "train": DataLoader(train, batch_size=cfg.batch_size, drop_last=True, generator=generator, collate_fn=pad_batch, **order),
        **{
            name: DataLoader(SpeechClipDataset(part, model_cfg), batch_size=cfg.eval_batch_size, collate_fn=pad_batch)
            for name, part in (("calib", splits.calib), ("val", splits.val))
        },
    }
