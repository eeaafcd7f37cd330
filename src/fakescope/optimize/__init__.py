"""Faster inference for shipped detectors: ONNX export, INT8/FP16 variants, pruning, ONNX Runtime backend."""

from fakescope.optimize.artifact import VARIANTS, read_metadata
from fakescope.optimize.evaluation import evaluate_model, evaluate_variant
from fakescope.optimize.export import ExportedModel, export_model, export_onnx
from fakescope.optimize.fuse import fuse_conv_bn
from fakescope.optimize.prune import fine_tune, prune_model, sparsity
from fakescope.optimize.runtime import BACKENDS, OnnxDetector, find_onnx, load_model

__all__ = [
    "BACKENDS",
    "VARIANTS",
    "ExportedModel",
    "OnnxDetector",
    "evaluate_model",
    "evaluate_variant",
    "export_model",
    "export_onnx",
    "find_onnx",
    "fine_tune",
    "fuse_conv_bn",
    "load_model",
    "prune_model",
    "read_metadata",
    "sparsity",
]
