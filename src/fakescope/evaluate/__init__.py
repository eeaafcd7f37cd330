"""Metrics, calibration, verdict thresholds, plots and reports for training and `fakescope eval`.

Plots and reports load lazily: importing matplotlib switches it to the Agg backend, which
training and the CLI should not pay for (or impose on a notebook) unless a figure is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakescope.evaluate.calibration import fit_temperature
from fakescope.evaluate.metrics import binary_metrics, equal_error_rate, expected_calibration_error, log_loss, video_level
from fakescope.evaluate.thresholds import threshold_for_fnr, threshold_for_fpr, verdict_thresholds

if TYPE_CHECKING:
    from fakescope.evaluate.plots import (
        confusion_png,
        pr_curve_png,
        reliability_png,
        roc_curve_png,
        training_curves_png,
    )
    from fakescope.evaluate.report import write_report

_PLOTS = {"confusion_png", "pr_curve_png", "reliability_png", "roc_curve_png", "training_curves_png"}

__all__ = [
    "binary_metrics",
    "confusion_png",
    "equal_error_rate",
    "expected_calibration_error",
    "fit_temperature",
    "log_loss",
    "pr_curve_png",
    "reliability_png",
    "roc_curve_png",
    "threshold_for_fnr",
    "threshold_for_fpr",
    "training_curves_png",
    "verdict_thresholds",
    "video_level",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        from fakescope.evaluate import plots

        return getattr(plots, name)
    if name == "write_report":
        from fakescope.evaluate.report import write_report

        return write_report
    raise AttributeError(f"module 'fakescope.evaluate' has no attribute {name!r}")
