"""Faster inference for shipped models: ONNX export, INT8/FP16 variants, conv-bn folding, pruning, and
the checks and benchmarks of those exports. Loading an export is inference: `fakescope.models.onnx`."""

from fakescope.optimize.evaluation import evaluate_model, evaluate_variant
from fakescope.optimize.export import ExportedModel, export_model, export_onnx
from fakescope.optimize.fuse import fuse_conv_bn
from fakescope.optimize.prune import prune_model, sparsity

__all__ = [
    "ExportedModel",
    "evaluate_model",
    "evaluate_variant",
    "export_model",
    "export_onnx",
    "fuse_conv_bn",
    "prune_model",
    "sparsity",
]
