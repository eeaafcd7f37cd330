"""Metrics and calibration shared by training, `fakescope eval` and the benchmarks."""

from fakescope.evaluate.calibration import fit_temperature
from fakescope.evaluate.metrics import binary_metrics

__all__ = ["binary_metrics", "fit_temperature"]
