"""`fakescope train` for heads on a frozen backbone (a recipe with a `probe:` section): the CLIP models and the
Whisper speech probes (audio-whisper-base).

What the head reads (CLIP class tokens, Whisper block statistics) comes from the on-disk cache
(train.features.cached_inputs), so the whole run is a fit on standardised inputs: a linear head is a logistic
regression per strength of `probe.c_grid`, an MLP head trains for `schedule.epochs` (AdamW, `optim`, weighted
BCE); either way the calib LogLoss picks the strength or the epoch, then temperature and verdict bands are
fitted on calib and val is scored once, clean and under each `probe.robustness` perturbation, per dataset and
per method. Train pictures can be read through several views (`probe.views`: clean, jpeg70, resize0.5) as
augmentation. With `probe.tune_blocks` the backbone's last blocks train with the head (train.tuning), from cached
hidden states.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from fakescope.data import Sample
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import fit_temperature, sigmoid
from fakescope.evaluate.report import write_report
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.clip_probe import ClipProbe
from fakescope.models.whisper_probe import WhisperProbe
from fakescope.train.card import export_weights, false_alarm_metrics, git_sha, input_contract, subgroup_metrics
from fakescope.train.config import ProbeCfg, TrainConfig
from fakescope.train.features import CLEAN, ProbeModel, cached_inputs
from fakescope.train.loaders import make_splits
from fakescope.train.tuning import fit_tuned, tuned_hidden, tuned_logits

log = logging.getLogger(__name__)


def cell_weights(samples: Sequence[Sample]) -> np.ndarray:
    """Weights that give every (dataset, label) cell the same total, averaging 1 per sample."""
    cells = [(s.info.get("dataset", ""), s.label) for s in samples]
    counts = {c: cells.count(c) for c in set(cells)}
    w = np.array([1.0 / counts[c] for c in cells])
    return w * len(w) / w.sum()


def fit_linear(model: ProbeModel, train: Fit, calib: Fit, c_grid: Sequence[float]) -> dict[str, object]:
    """One logistic regression per C on the standardised inputs; the lowest calib LogLoss is kept."""
    z_train, z_calib = (
        model.cached_features(torch.from_numpy(train.x)).numpy(),
        model.cached_features(torch.from_numpy(calib.x)).numpy(),
    )
    tried: dict[str, float] = {}
    best: tuple[float, LogisticRegression] | None = None
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=2000).fit(z_train, train.y, sample_weight=train.w)
        loss = binary_metrics(calib.y, clf.predict_proba(z_calib)[:, 1])["logloss"]
        tried[str(c)] = round(loss, 4)
        if best is None or loss < best[0]:
            best = (loss, clf)
    assert best is not None
    clf = best[1]
    model.head.weight.data.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
    model.head.bias.data.copy_(torch.from_numpy(clf.intercept_.astype(np.float32)))
    return {"chosen_c": float(clf.C), "calib_logloss_by_c": tried}


def fit_mlp(model: ClipProbe, train: Fit, calib: Fit, cfg: TrainConfig) -> dict[str, object]:
    """AdamW (cosine decay) on weighted BCE for `schedule.epochs`; the epoch with the lowest calib LogLoss is kept."""
    torch.manual_seed(cfg.seed)
    x, y, w = torch.from_numpy(train.x), torch.from_numpy(train.y).float(), torch.from_numpy(train.w).float()
    opt = torch.optim.AdamW(model.head.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    steps = cfg.schedule.epochs * -(-len(x) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)  # settles, so the epoch pick is stable
    history: list[float] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for _ in range(cfg.schedule.epochs):
        model.head.train()
        for batch in torch.randperm(len(x)).split(cfg.batch_size):
            logits = model.classifier(model.cached_features(x[batch])).reshape(-1)
            loss = (F.binary_cross_entropy_with_logits(logits, y[batch], reduction="none") * w[batch]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        model.head.eval()
        loss = binary_metrics(calib.y, sigmoid(head_logits(model, calib.x)))["logloss"]
        history.append(round(loss, 4))
        if best is None or loss < best[0]:
            best = (loss, {k: v.clone() for k, v in model.head.state_dict().items()})
    assert best is not None
    model.head.load_state_dict(best[1])
    return {"best_epoch": int(np.argmin(history)) + 1, "calib_logloss_by_epoch": history}


def head_logits(model: ProbeModel, tokens: np.ndarray, hidden: np.ndarray | None = None) -> np.ndarray:
    """Raw logits of the head (eval mode) on cached inputs (train.features.cached_inputs); a tuned head also
    reads the cached hidden states before its blocks (train.features.cached_hidden)."""
    if model.tuned_blocks:
        if hidden is None:
            raise FakescopeError("a head with tuned blocks scores cached hidden states too (train.tuning.tuned_hidden)")
        return tuned_logits(model, tokens, hidden)
    model.eval()
    with torch.no_grad():
        return model.classifier(model.cached_features(torch.from_numpy(tokens))).reshape(-1).numpy().astype(np.float64)


@dataclass
class Fit:
    """Cached inputs (CLIP tokens (N, 13, 768) or speech statistics (N, D)), labels and sample weights of one
    side of a fit; for a tuned head also the hidden states its blocks start from."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    hidden: np.ndarray | None = None


@dataclass
class Head:
    """A fitted head and its calibration: what `fit_head` returns to training and to the protocol runner."""

    model: ProbeModel
    temperature: float
    choice: dict[str, object]
    calib: Fit
    calib_logits: np.ndarray

    def probs(self, tokens: np.ndarray, hidden: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(fake) of cached inputs (and hidden states, for a tuned head)."""
        return sigmoid(head_logits(self.model, tokens, hidden) / self.temperature)

    def verdict_thresholds(self, cfg: TrainConfig) -> dict[str, float]:
        """The verdict bands `fakescope train` ships with this head: the recipe's error targets on its calib split."""
        calib_probs = sigmoid(self.calib_logits / self.temperature)
        return verdict_thresholds(self.calib.y, calib_probs, fpr=cfg.thresholds.fpr, fnr=cfg.thresholds.fnr)


def fit_head(cfg: TrainConfig, train_samples: Sequence[Sample], calib_samples: Sequence[Sample]) -> Head:
    """The one fit of a probe recipe (training and every cross-dataset row): cached inputs of the train files
    through `probe.views`, standardised, head fitted (linear: C picked on calib; MLP: epoch picked on calib),
    temperature fitted on calib."""
    probe: ProbeCfg = cfg.probe  # type: ignore[assignment]
    torch.set_num_threads(cfg.threads)
    model = create_model(cfg.model, pretrained=False)
    if not isinstance(model, ProbeModel):
        raise FakescopeError(
            f"{cfg.model}: a probe recipe needs a frozen-backbone model (aigen-clip-b16, faceswap-clip-b16, audio-whisper-base)"
        )
    if isinstance(model, WhisperProbe) and probe.views != [CLEAN]:
        raise FakescopeError(f"{cfg.model}: probe.views is {probe.views}; speech is read clean only (probe.views: [clean])")
    if probe.tune_blocks != model.tuned_blocks:
        raise FakescopeError(
            f"probe.tune_blocks is {probe.tune_blocks} but {cfg.model} tunes {model.tuned_blocks} blocks: name a model tag "
            "that tunes as many (faceswap-clip-b16.dfdc_ffpp_tuned and audio-whisper-base.speech_tuned tune 1)"
        )
    views_samples = [s for _ in probe.views for s in train_samples]
    weights = cell_weights(views_samples) if probe.balance else np.ones(len(views_samples))
    train = Fit(
        np.concatenate([cached_inputs(model, train_samples, view) for view in probe.views]),
        np.array([s.label for s in views_samples]),
        weights,
    )
    calib = Fit(cached_inputs(model, calib_samples), np.array([s.label for s in calib_samples]), np.ones(len(calib_samples)))
    model.fit_standardisation(train.x)
    if model.tuned_blocks:
        hidden = [tuned_hidden(model, train_samples, view) for view in probe.views]
        train.hidden = hidden[0] if len(hidden) == 1 else np.concatenate(hidden)  # type: ignore[arg-type]
        calib.hidden = tuned_hidden(model, calib_samples)
        if isinstance(model, WhisperProbe):  # a linear head starts from the frozen probe's fit, tuning from there
            fit_linear(model, train, calib, probe.c_grid)
        choice = fit_tuned(model, train, calib, cfg)
    elif isinstance(model, WhisperProbe) or model.hidden == 0:
        choice = fit_linear(model, train, calib, probe.c_grid)
    else:
        choice = fit_mlp(model, train, calib, cfg)
    calib_logits = head_logits(model, calib.x, calib.hidden)
    return Head(model, fit_temperature(calib_logits, calib.y), choice, calib, calib_logits)


def read_out(model: ProbeModel) -> dict[str, object]:
    """What the head reads, for its card."""
    if isinstance(model, ClipProbe):
        return {"layers": list(model.layers), "tuned_blocks": model.tuned_blocks}
    return {
        "encoder_blocks": len(model.encoder.blocks),
        "statistics": list(model.statistics),
        "features": model.raw_features_key,
        "tuned_blocks": model.tuned_blocks,
    }


def run_probe_training(cfg: TrainConfig, *, recipe: str | None = None) -> dict:
    """Fit, calibrate, report and export a head on cached tokens; returns the card."""
    probe: ProbeCfg = cfg.probe  # type: ignore[assignment]
    start = time.monotonic()
    model_cfg = get_pretrained_cfg(cfg.model)
    splits = make_splits(cfg, model_cfg)
    head = fit_head(cfg, splits.train, splits.calib)
    model, temperature, choice = head.model, head.temperature, head.choice
    thresholds = head.verdict_thresholds(cfg)
    val_y = np.array([s.label for s in splits.val])
    dataset = cfg.data.name
    metrics: dict[str, dict[str, float]] = {}
    sections = {}
    for view in [CLEAN, *probe.robustness]:
        probs = head.probs(cached_inputs(model, splits.val, view), tuned_hidden(model, splits.val, view))
        prefix = f"{dataset}/val" if view == CLEAN else f"{dataset}/val {view}"
        metrics[prefix] = binary_metrics(val_y, probs)
        metrics.update(subgroup_metrics(prefix, splits.val, probs))
        metrics.update(false_alarm_metrics(prefix, splits.val, probs, thresholds["fake_at_or_above"]))
        sections[prefix] = (val_y, probs)
    run_dir = cfg.run_path
    run_dir.mkdir(parents=True, exist_ok=True)
    write_report(run_dir / "report", sections, title=f"{cfg.model} on {dataset} val", meta={"model": cfg.model, "git": git_sha()})
    card = {
        "model": cfg.model,
        "temperature": temperature,
        "thresholds": thresholds,
        **input_contract(model_cfg),
        "metrics": metrics,
        "dataset": f"{dataset} ({len(splits.train)} train x "
        f"{len(probe.views)} views / {len(splits.calib)} calib / {len(splits.val)} val samples, split by group)",
        "recipe": recipe or model_cfg.recipe,
        "extra": {
            **choice,
            **read_out(model),
            "git": git_sha(),
            "train_seconds": round(time.monotonic() - start, 1),
            "config": cfg.model_dump(mode="json"),
        },
    }
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    log.info("val (T=%.3f): %s", temperature, metrics[f"{dataset}/val"])
    if cfg.out is not None:
        card = export_weights(model, card, cfg.out)
    return card
