"""`fakescope fit-fusion`: learn how a picture's face-swap and AI-picture scores combine (detect.fusion.PictureFusion).

The max of the two scores lets either model decide alone, so each one's false alarms on the other's
domain (the face model on sharp portraits, the picture model on video frames) become the picture's.
Here a 6-parameter logistic regression on both calibrated logits, their max and both P(fake) is fitted on pictures
of every domain, scored through the same path as `fakescope detect` (face detection, crop geometry,
no-face softening). The pictures are the val splits of the members' own data (neither model trained
on them), so the fit is judged by grouped k-fold cross-fitting: every reported figure is a score from
a fusion that did not see that picture. The shipped coefficients are then fitted on all of them, and
the verdict bands are chosen on the out-of-fold scores for the recipe's false-positive rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from sklearn.linear_model import LogisticRegression

from fakescope.data import Sample, load_samples
from fakescope.data.model_data import balanced_subset
from fakescope.detect import Detector
from fakescope.detect.fusion import PICTURE_FUSION_FILE, logit
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.progress import progress
from fakescope.train.card import git_sha, write_fit
from fakescope.train.config import Strict, read_yaml_mapping, validated

log = logging.getLogger(__name__)
FOLDS = 5
FUSION_C = 1.0  # C = 100 was worse out of fold (0.95 on ai_flux against 0.99)


class FusionSource(Strict):
    root: Path
    val_fraction: float = Field(0.15, gt=0, lt=1, description="as in the members' recipes, so val is the same files")
    limit: int | None = Field(None, ge=2, description="at most this many val pictures (half real, half fake)")


class FusionConfig(Strict):
    kind: Literal["picture"] = "picture"
    face_model: str
    image_model: str
    sources: list[FusionSource]
    seed: int
    fpr: float = Field(0.02, gt=0, lt=1, description="'manipulated' on real pictures allowed at this rate (out of fold)")
    fnr: float = Field(0.05, gt=0, lt=1)
    face_detector: Literal["yuface", "mtcnn", "haar"] = "yuface"
    cache: Path = Path("runs/picture_fusion")


def load_fusion_config(path: Path) -> FusionConfig:
    """YAML file -> validated fusion config; every error is one line naming the file and the key."""
    return validated(FusionConfig, read_yaml_mapping(path, "fusion config"), path)


def val_pictures(cfg: FusionConfig) -> list[Sample]:
    out: list[Sample] = []
    for source in cfg.sources:
        val = [s for s in load_samples(source.root, val_fraction=source.val_fraction, seed=cfg.seed) if s.split == "val"]
        if source.limit is not None and len(val) > source.limit:
            val = balanced_subset(val, source.limit, seed=cfg.seed)
        out.extend(Sample(s.path, s.label, s.group, s.split, {**s.info, "dataset": source.root.name}) for s in val)
    return out


def detect_scores(cfg: FusionConfig, pictures: list[Sample]) -> np.ndarray:
    """(N, 2): each member's P(fake) as the detect path gives it (cached per config and file list)."""
    key = hashlib.sha1(json.dumps([cfg.face_model, cfg.image_model, cfg.face_detector, [str(s.path) for s in pictures]]).encode())
    path = cfg.cache / f"scores-{key.hexdigest()[:12]}.npy"
    if path.is_file():
        return np.load(path)
    detector = Detector.from_pretrained(
        cfg.face_model, image_model=cfg.image_model, audio_model=None, face_detector=cfg.face_detector, cache_size=0
    )
    scores = np.full((len(pictures), 2), 0.5)
    with progress() as bar:
        task = bar.add_task("detect", total=len(pictures), info="")
        for i, sample in enumerate(pictures):
            result = detector.detect(sample.path)
            by_name = {d.name: d.score for d in result.detectors}
            scores[i] = by_name.get(cfg.face_model, 0.5), by_name.get(cfg.image_model, 0.5)
            bar.advance(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, scores)
    return scores


def design(scores: np.ndarray) -> np.ndarray:
    """The fusion's inputs (detect.fusion.PictureFusion): both logits, their max, both P(fake)."""
    z = np.vectorize(logit)(scores)
    return np.column_stack([z[:, 0], z[:, 1], z.max(axis=1), scores[:, 0], scores[:, 1]])


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: list[str], seed: int) -> np.ndarray:
    """Each picture's fused P(fake) from a fit on the other folds (folds by group)."""
    unique = sorted(set(groups))
    fold_of = dict(zip(unique, np.random.default_rng(seed).permutation(len(unique)) % FOLDS, strict=True))
    folds = np.array([fold_of[g] for g in groups])
    probs = np.zeros(len(y))
    for k in range(FOLDS):
        clf = LogisticRegression(C=FUSION_C, max_iter=1000).fit(x[folds != k], y[folds != k])
        probs[folds == k] = clf.predict_proba(x[folds == k])[:, 1]
    return probs


def domain_table(pictures: list[Sample], y: np.ndarray, columns: dict[str, np.ndarray], cut: float) -> dict[str, dict]:
    """Per data folder and overall: AUC and LogLoss of each column, and the share of real pictures at or above `cut`."""
    table: dict[str, dict] = {}
    folders = np.array([s.info["dataset"] for s in pictures])
    for name in ["all", *sorted(set(folders))]:
        pick = np.ones(len(y), bool) if name == "all" else folders == name
        table[name] = {
            col: {**binary_metrics(y[pick], p[pick]), "real_manipulated": float((p[pick & (y == 0)] >= cut).mean())}
            for col, p in columns.items()
        }
    return table


def fit_picture_fusion(cfg: FusionConfig, *, out: Path | None = None, recipe: str = "") -> dict:
    pictures = val_pictures(cfg)
    y = np.array([s.label for s in pictures])
    scores = detect_scores(cfg, pictures)
    x = design(scores)
    fused_oof = out_of_fold(x, y, [s.group for s in pictures], cfg.seed)
    thresholds = verdict_thresholds(y, fused_oof, fpr=cfg.fpr, fnr=cfg.fnr)
    columns = {"face": scores[:, 0], "picture": scores[:, 1], "max": scores.max(axis=1), "fused": fused_oof}
    clf = LogisticRegression(C=FUSION_C, max_iter=1000).fit(x, y)
    entry = {
        "face_model": cfg.face_model,
        "image_model": cfg.image_model,
        "coef": [round(float(c), 6) for c in clf.coef_[0]],
        "bias": round(float(clf.intercept_[0]), 6),
        "thresholds": thresholds,
        "metrics": domain_table(pictures, y, columns, thresholds["fake_at_or_above"]),
        "dataset": ", ".join(f"{s.root.name} val" for s in cfg.sources) + f" ({len(pictures)} pictures, out of {FOLDS} folds)",
        "recipe": recipe,
        "git": git_sha(),
    }
    if out is not None:
        write_fit(out / PICTURE_FUSION_FILE, entry, keys=("face_model", "image_model"))
    return entry
