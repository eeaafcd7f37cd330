"""Evaluation figures written as small PNG files (headless: Agg backend, no window ever opens)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from fakescope.errors import FakescopeError
from fakescope.evaluate.metrics import calibration_bins, equal_error_rate

matplotlib.use("Agg")  # before pyplot loads, so no GUI backend is ever picked

import matplotlib.pyplot as plt

FIGSIZE = (4.5, 4.0)
DPI = 100


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _both_classes(labels: Sequence[int], probs: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape or len(np.unique(y)) != 2:
        raise FakescopeError(f"{what}: needs labels and probs of equal length with both REAL (0) and FAKE (1)")
    return y, p


def roc_curve_png(labels: Sequence[int], probs: Sequence[float], path: Path | str, title: str = "ROC") -> Path:
    """ROC curve with its AUC and the equal-error point marked."""
    y, p = _both_classes(labels, probs, "roc_curve_png")
    fpr, tpr, _ = skm.roc_curve(y, p)
    eer = equal_error_rate(y, p)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot(fpr, tpr, lw=1.8, label=f"AUC {skm.roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="chance")
    ax.plot([eer], [1 - eer], "o", c="crimson", label=f"EER {eer:.3f}")
    ax.set(
        xlabel="false positive rate (real called fake)",
        ylabel="true positive rate (fakes caught)",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def pr_curve_png(labels: Sequence[int], probs: Sequence[float], path: Path | str, title: str = "Precision-recall") -> Path:
    """Precision-recall of FAKE, with average precision and the prevalence (a random ranker's precision)."""
    y, p = _both_classes(labels, probs, "pr_curve_png")
    precision, recall, _ = skm.precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.step(recall, precision, where="post", lw=1.8, label=f"AP {skm.average_precision_score(y, p):.3f}")
    ax.axhline(y.mean(), ls="--", c="grey", lw=0.8, label=f"prevalence {y.mean():.2f}")
    ax.set(
        xlabel="recall (fakes caught)", ylabel="precision (fake verdicts that are fake)", title=title, xlim=(0, 1), ylim=(0, 1.01)
    )
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def reliability_png(
    labels: Sequence[int], probs: Sequence[float], path: Path | str, bins: int = 10, title: str = "Reliability"
) -> Path:
    """Observed fake rate per P(fake) bin against the diagonal, with the count of each bin below."""
    confidence, fake_rate, counts = calibration_bins(labels, probs, bins=bins)
    edges = np.linspace(0, 1, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1 / bins
    used = counts > 0
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=FIGSIZE, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centres[used], fake_rate[used], width=width * 0.9, alpha=0.7, label="observed fake rate")
    ax.plot(confidence[used], fake_rate[used], "o", c="black", ms=3, label="bin mean P(fake)")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfect calibration")
    ax.set(ylabel="fake rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=7)
    ax_n.bar(centres, counts, width=width * 0.9, color="grey")
    for x, n in zip(centres, counts, strict=True):
        ax_n.annotate(str(int(n)), (x, n), ha="center", va="bottom", fontsize=6)
    ax_n.set(xlabel="P(fake)", ylabel="count", ylim=(0, max(1, counts.max()) * 1.3))
    return _save(fig, path)


def confusion_png(
    labels: Sequence[int], probs: Sequence[float], path: Path | str, threshold: float = 0.5, title: str = "Confusion"
) -> Path:
    """2x2 counts (and share of each true class) of fake verdicts at P(fake) >= threshold."""
    y = np.asarray(labels, dtype=np.int64)
    pred = (np.asarray(probs, dtype=np.float64) >= threshold).astype(np.int64)
    matrix = skm.confusion_matrix(y, pred, labels=[0, 1])
    row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(
            j, i, f"{n}\n{row_share[i, j]:.0%}", ha="center", va="center", color="white" if row_share[i, j] > 0.5 else "black"
        )
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["REAL", "FAKE"],
        yticklabels=["REAL", "FAKE"],
        xlabel=f"predicted (P(fake) >= {threshold:g})",
        ylabel="true",
        title=title,
    )
    return _save(fig, path)


def training_curves_png(history: Sequence[dict[str, Any]], path: Path | str, title: str = "Training") -> Path:
    """Train loss and val/calib LogLoss (left), val/calib AUC (right) per epoch; calib is optional."""
    if not history:
        raise FakescopeError("training_curves_png: empty history (no epoch rows)")
    try:
        epochs = [row["epoch"] for row in history]
        train_loss = [row["train_loss"] for row in history]
    except KeyError as err:
        raise FakescopeError(f"training_curves_png: history row lacks key {err.args[0]!r}") from err
    splits = [s for s in ("val", "calib") if all(isinstance(row.get(s), dict) for row in history)]
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    ax_loss.plot(epochs, train_loss, "o-", ms=3, label="train loss")
    for split in splits:
        ax_loss.plot(epochs, [row[split].get("logloss", np.nan) for row in history], "o-", ms=3, label=f"{split} logloss")
        ax_auc.plot(epochs, [row[split].get("auc", np.nan) for row in history], "o-", ms=3, label=f"{split} AUC")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    ax_auc.set(xlabel="epoch", ylabel="ROC-AUC", title=f"{title}: AUC", ylim=(0, 1))
    for ax in (ax_loss, ax_auc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return _save(fig, path)
