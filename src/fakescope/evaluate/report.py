"""An evaluation run as files a person can open anywhere: plots, metrics.json and one report.html.

The HTML is self-contained (plots embedded as base64 PNG, inline CSS, no scripts or links),
so it can be attached to an issue or archived next to the weights and still read the same.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.errors import FakescopeError
from fakescope.evaluate.metrics import binary_metrics
from fakescope.evaluate.plots import confusion_png, pr_curve_png, reliability_png, roc_curve_png
from fakescope.evaluate.thresholds import verdict_thresholds

METRIC_NOTES = {
    "n": "samples scored",
    "logloss": "DFDC LogLoss (lower is better)",
    "auc": "ROC-AUC: chance a fake outranks a real",
    "eer": "equal error rate: FPR where it equals FNR",
    "accuracy": "share right at P(fake) >= 0.5",
    "precision": "share of fake verdicts that are fake",
    "recall": "share of fakes caught",
    "real_recall": "share of real media called real",
    "ece": "expected calibration error (10 bins)",
    "real_below": "authentic below this P(fake)",
    "fake_at_or_above": "manipulated at or above this P(fake)",
    "fpr_target": "target share of real called manipulated",
    "fnr_target": "target share of fakes called authentic",
    "measured_fpr": "real called manipulated, on this set",
    "measured_fnr": "fakes called authentic, on this set",
}

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 1.5em 1em 0; font-size: .9em; display: inline-table; vertical-align: top; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.note { color: #666; }
.plots img { width: 360px; margin: 0 .5em .5em 0; border: 1px solid #eee; }
.note { color: #666; }
"""


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "section"


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so that metrics.json is strict JSON any tool can read."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(value) else f"{value:.4f}"
    return str(value)


def _table(rows: Mapping[str, Any], caption: str) -> str:
    body = "".join(
        f"<tr><th>{html.escape(key)}</th><td class='num'>{html.escape(_fmt(value))}</td>"
        f"<td class='note'>{html.escape(METRIC_NOTES.get(key, ''))}</td></tr>"
        for key, value in rows.items()
    )
    return f"<table><caption>{html.escape(caption)}</caption>{body}</table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"


def _evaluate_section(
    out_dir: Path, index: int, name: str, labels: Sequence[int], probs: Sequence[float], *, fpr: float, fnr: float
) -> dict[str, Any]:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.size == 0 or y.shape != p.shape:
        raise FakescopeError(
            f"report section {name!r}: needs equal, non-zero numbers of labels and probs (got {y.size}, {p.size})"
        )
    if not np.isin(y, (0, 1)).all():
        raise FakescopeError(f"report section {name!r}: labels must be 0 (REAL) or 1 (FAKE)")
    stem = f"{index}-{_slug(name)}"
    both_classes = len(np.unique(y)) == 2
    plots = {
        "reliability": reliability_png(y, p, out_dir / f"{stem}-reliability.png", title=f"{name}: reliability"),
        "confusion": confusion_png(y, p, out_dir / f"{stem}-confusion.png", title=f"{name}: confusion"),
    }
    if both_classes:
        plots["roc"] = roc_curve_png(y, p, out_dir / f"{stem}-roc.png", title=f"{name}: ROC")
        plots["pr"] = pr_curve_png(y, p, out_dir / f"{stem}-pr.png", title=f"{name}: precision-recall")
    return {
        "metrics": binary_metrics(y, p),
        "thresholds": verdict_thresholds(y, p, fpr=fpr, fnr=fnr) if both_classes else None,
        "plots": {kind: plots[kind] for kind in ("roc", "pr", "reliability", "confusion") if kind in plots},
    }


def _section_html(name: str, result: Mapping[str, Any]) -> str:
    parts = [f"<h2>{html.escape(name)}</h2>", _table(result["metrics"], "metrics")]
    if result["thresholds"] is None:
        parts.append(
            "<p class='note'>Only one class in this section: AUC, EER, ROC, precision-recall "
            "and verdict thresholds need both REAL and FAKE samples.</p>"
        )
    else:
        parts.append(_table(result["thresholds"], "verdict thresholds"))
    images = "".join(_img(path, f"{name} {kind}") for kind, path in result["plots"].items())
    parts.append(f"<div class='plots'>{images}</div>")
    return "\n".join(parts)


def write_report(
    out_dir: Path,
    sections: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    *,
    title: str,
    meta: Mapping[str, Any],
    fpr: float = 0.05,
    fnr: float = 0.05,
) -> Path:
    """Metrics, verdict thresholds and four plots per section into `out_dir`; returns report.html.

    `sections` maps a name ("frame level", "video level") to (labels, P(fake)); `meta` (model,
    dataset, date, ...) is shown as given; `fpr`/`fnr` are the verdict-threshold targets.
    """
    if not sections:
        raise FakescopeError("write_report: no sections to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = {
        name: _evaluate_section(out_dir, i, name, labels, probs, fpr=fpr, fnr=fnr)
        for i, (name, (labels, probs)) in enumerate(sections.items(), start=1)
    }

    summary = {
        "title": title,
        "generated": generated,
        "meta": dict(meta),
        "sections": {
            name: {
                "metrics": r["metrics"],
                "thresholds": r["thresholds"],
                "plots": {kind: path.name for kind, path in r["plots"].items()},
            }
            for name, r in results.items()
        },
    }
    (out_dir / "metrics.json").write_text(json.dumps(_json_safe(summary), indent=2, default=str) + "\n")

    meta_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in {**meta, "generated": generated}.items()
    )
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            "<html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<table>{meta_rows}</table>",
            "<p class='note'>Labels: REAL = 0, FAKE = 1; scores are P(fake). Verdict bands: authentic below "
            "real_below, suspicious up to fake_at_or_above, manipulated from there.</p>",
            *(_section_html(name, r) for name, r in results.items()),
            "</body></html>",
        ]
    )
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return html_path
