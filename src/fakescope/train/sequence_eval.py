"""Leave-one-group-out judgement of a temporal face model against the frame model, at video level.

Labelled clips are few (34 in ../shared/data's videos + videos_more), so one val split says little. Here the
recipe's fit (train.sequence_fit: same model, epochs, CutMix, self-blended copies, calib-picked epoch and
temperature) is repeated once per source-video group with that group held out (a real clip and the fakes
made from it leave together), and the held-out videos are scored by that fit alone. The frame model (the
shipped default) scores the very same crops; its video score is the pipeline's track score, put on the video
scale by a logistic map fitted on the other groups (train.video_calibration.fit_map); the temporal model's
out-of-fold scores get the same map in a row of their own. A stack of the two (logistic regression on both
video logits, also fitted on the other groups' out-of-fold scores) is the last row. Every row reports AUC,
LogLoss (plain and class-balanced), real and fake recall at 0.5, and real videos at or above 0.5.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fakescope.constants import DEFAULT_MODEL
from fakescope.data import SequenceSample
from fakescope.data.images import load_rgb
from fakescope.data.sequences import face_sequences
from fakescope.detect.fusion import logit, track_score
from fakescope.detect.scoring import score_crops
from fakescope.evaluate.calibration import fit_temperature, sigmoid
from fakescope.evaluate.metrics import log_loss
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.progress import progress
from fakescope.train.config import SequenceCfg, TrainConfig
from fakescope.train.loaders import make_splits
from fakescope.train.sbi_sequences import self_blended_sequences
from fakescope.train.sequence_fit import SequenceFitter, blended_dir, video_scores
from fakescope.train.video_calibration import clip_table, fit_map

log = logging.getLogger(__name__)

MAP_C = 1.0  # inverse L2 strength of the per-fold video maps (train.video_calibration's default)
BOOTSTRAP_DRAWS = 2000


def all_sequences(cfg: TrainConfig, seq: SequenceCfg) -> list[SequenceSample]:
    """Every labelled video's sequences (train, calib and val of the recipe alike)."""
    splits = make_splits(cfg, get_pretrained_cfg(cfg.model))
    return face_sequences(list(splits.train) + list(splits.calib) + list(splits.val), length=seq.length, stride=seq.stride)


def calib_groups(groups: list[str], labels: dict[str, set[int]], fraction: float, seed: int) -> set[str]:
    """A seeded share of `groups` (at least one) whose videos hold both labels, for the fold's epoch and temperature."""
    k = max(1, int(round(len(groups) * fraction)))
    for attempt in range(50):
        order = np.random.default_rng(seed + attempt).permutation(len(groups))
        chosen = {groups[i] for i in order[:k]}
        if set().union(*(labels[g] for g in chosen)) == {0, 1}:
            return chosen
        k = min(k + (attempt % 2), len(groups) - 1)
    raise ValueError("no calib groups with both labels")


def frame_model_video_scores(sequences: Sequence[SequenceSample], videos: list[str]) -> np.ndarray:
    """The default frame model's raw video score of each video: its track score over the video's crops."""
    model = create_model(DEFAULT_MODEL, pretrained=True).eval()
    size = model.pretrained_cfg.image_size
    crops: dict[str, set[Path]] = {}
    for s in sequences:
        crops.setdefault(s.video, set()).update(s.frames)
    return np.array([track_score(score_crops(model, [load_rgb(p, size) for p in sorted(crops[video])])) for video in videos])


def rows(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The video calibration's clip table (metrics, recall of each class at 0.5) plus the class-balanced LogLoss (the
    clips are two-thirds fake: a model that calls everything fake wins plain LogLoss) and the genuine clips at or
    above 0.5."""
    return clip_table(y, probs, None) | {
        "balanced_logloss": float(np.mean([log_loss(y[y == c], probs[y == c]) for c in (0, 1)])),
        "real_at_or_above_half": int((probs[y == 0] >= 0.5).sum()),
    }


def group_bootstrap(y: np.ndarray, groups: np.ndarray, ours: np.ndarray, theirs: np.ndarray, *, seed: int) -> dict:
    """How sure the comparison is: groups drawn with replacement (BOOTSTRAP_DRAWS times), the mean and 95% interval
    of their LogLoss minus ours (> 0: ours better) and of our AUC minus theirs."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in names}
    logloss, auc = [], []
    for _ in range(BOOTSTRAP_DRAWS):
        pick = np.concatenate([members[g] for g in rng.choice(names, len(names))])
        if len(set(y[pick])) < 2:
            continue
        logloss.append(log_loss(y[pick], theirs[pick]) - log_loss(y[pick], ours[pick]))
        auc.append(roc_auc_score(y[pick], ours[pick]) - roc_auc_score(y[pick], theirs[pick]))
    summary = {}
    for name, values in (("logloss_gain", logloss), ("auc_gain", auc)):
        low, high = np.percentile(values, [2.5, 97.5])
        summary[name] = {"mean": round(float(np.mean(values)), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}
    return summary


def leave_one_group_out(cfg: TrainConfig, fitter: SequenceFitter) -> dict:
    """Out-of-fold video scores of the temporal model, the frame model and their stack, per held-out group.
    Leaves `fitter`'s model at the last fold's weights."""
    seq: SequenceCfg = cfg.sequence  # type: ignore[assignment]
    sequences = all_sequences(cfg, seq)
    reals = [s for s in sequences if s.label == 0]
    blended = [s for copy in range(seq.sbi_copies) for s in self_blended_sequences(reals, blended_dir(cfg), seed=cfg.seed + copy)]
    fitter.prepare(sequences + blended)
    videos = sorted({s.video for s in sequences})
    video_label = {s.video: s.label for s in sequences}
    video_group = {s.video: s.group for s in sequences}
    groups = sorted(set(video_group.values()))
    labels = {g: {video_label[v] for v in videos if video_group[v] == g} for g in groups}
    temporal = np.zeros(len(videos))
    pool = sequences + blended
    with progress() as bar:
        task = bar.add_task("leave one group out", total=len(groups), info="")
        for held in groups:
            calib_set = calib_groups([g for g in groups if g != held], labels, cfg.data.calib_fraction, cfg.seed)
            train = [s for s in pool if s.group != held and s.group not in calib_set]
            calib = [s for s in pool if s.group in calib_set]
            fitter.fit(train, calib, cfg)
            temperature = fit_temperature(fitter.logits(calib), np.array([s.label for s in calib]))
            test = [s for s in sequences if s.group == held]
            held_videos, _, scores = video_scores(test, sigmoid(fitter.logits(test) / temperature))
            for video, score in zip(held_videos, scores, strict=True):
                temporal[videos.index(video)] = score
            bar.advance(task)
    y = np.array([video_label[v] for v in videos])
    frame_raw = frame_model_video_scores(sequences, videos)
    frame_z, temporal_z = np.vectorize(logit)(frame_raw), np.vectorize(logit)(temporal)
    frame_oof, temporal_oof, stack_oof = np.zeros(len(videos)), np.zeros(len(videos)), np.zeros(len(videos))
    for held in groups:
        test = np.array([video_group[v] == held for v in videos])
        slope, bias = fit_map(frame_z[~test], y[~test], MAP_C)
        frame_oof[test] = sigmoid(slope * frame_z[test] + bias)
        slope, bias = fit_map(temporal_z[~test], y[~test], MAP_C)
        temporal_oof[test] = sigmoid(slope * temporal_z[test] + bias)
        both = np.stack([frame_z, temporal_z], axis=1)
        meta = LogisticRegression(C=MAP_C, class_weight="balanced", max_iter=1000).fit(both[~test], y[~test])
        stack_oof[test] = meta.predict_proba(both[test])[:, 1]
    name = cfg.data.name
    slope, bias = fit_map(temporal_z, y, MAP_C)
    return {
        "groups": len(groups),
        # both on the video scale (maps fitted on the other groups): is the temporal model's gain more than chance?
        "temporal_vs_frame": group_bootstrap(
            y, np.array([video_group[v] for v in videos]), temporal_oof, frame_oof, seed=cfg.seed
        ),
        # The video map a shipped model gets (detect.fusion.VideoCalibration): fitted on every clip's out-of-fold
        # score, its bands chosen on the out-of-fold mapped scores.
        "video_map": {
            "slope": round(slope, 6),
            "bias": round(bias, 6),
            "thresholds": verdict_thresholds(y, temporal_oof, fpr=cfg.thresholds.fpr, fnr=cfg.thresholds.fnr),
        },
        "videos": {
            v: {
                "label": int(y[i]),
                "group": video_group[v],
                "temporal": round(float(temporal[i]), 4),
                "temporal_map": round(float(temporal_oof[i]), 4),
                "frame_raw": round(float(frame_raw[i]), 4),
                "frame": round(float(frame_oof[i]), 4),
                "stack": round(float(stack_oof[i]), 4),
            }
            for i, v in enumerate(videos)
        },
        "metrics": {
            f"{name}/leave one group out: {cfg.model}": rows(y, temporal),
            f"{name}/leave one group out: {cfg.model} (video map)": rows(y, temporal_oof),
            f"{name}/leave one group out: {DEFAULT_MODEL} (raw)": rows(y, frame_raw),
            f"{name}/leave one group out: {DEFAULT_MODEL} (video map)": rows(y, frame_oof),
            f"{name}/leave one group out: stack of both": rows(y, stack_oof),
        },
    }
