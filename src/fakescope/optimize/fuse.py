"""Conv-BN folding: each batch norm that directly follows a convolution is merged into it.

In eval mode a batch norm is an affine map per channel, so it can live in the convolution's
weights and bias: one pass over the activations instead of two. ONNX Runtime folds them too
when it loads a graph, but folding in torch first makes the exported graph (and the torch
fallback) smaller and lets quantization see the final weights.

Pairs are found on a torch.fx trace, so only a convolution whose single consumer is the batch
norm is folded (a convolution whose output is also used elsewhere is left alone).
"""

from __future__ import annotations

import copy
import logging

from timm.layers import BatchNormAct2d
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)


class _NormLeafTracer(fx.Tracer):
    """Keeps every batch norm (timm's BatchNormAct2d included) as one call, so it can be paired with its conv."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.BatchNorm2d) or super().is_leaf_module(m, module_qualified_name)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, batch norm name) for each batch norm fed only by a Conv2d, in execution order."""
    graph = _NormLeafTracer().trace(model)
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not _foldable_norm(modules[node.target]):
            continue
        source = node.args[0]
        if (
            isinstance(source, fx.Node)
            and source.op == "call_module"
            and type(modules[source.target]) is nn.Conv2d
            and len(source.users) == 1
        ):
            pairs.append((str(source.target), str(node.target)))
    return pairs


def _foldable_norm(module: nn.Module) -> bool:
    """Plain BatchNorm2d, or timm's BatchNormAct2d (norm, then its dropout and activation); other subclasses may do more."""
    return type(module) in (nn.BatchNorm2d, BatchNormAct2d) and module.track_running_stats


def _what_remains(norm: nn.Module) -> nn.Module:
    """The part of a folded norm layer that is not the affine map: timm's dropout + activation, or nothing."""
    if isinstance(norm, BatchNormAct2d):
        return nn.Sequential(norm.drop, norm.act)
    return nn.Identity()


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with conv-bn pairs folded; the original is left untouched.

    A model torch.fx cannot trace is returned unfolded (copied), with a log line: folding
    only saves time, and ONNX Runtime folds at load anyway.
    """
    fused = copy.deepcopy(model).eval()
    try:
        pairs = conv_bn_pairs(fused)
    except (fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError) as err:
        log.info("conv-bn folding skipped (%s cannot be traced: %s)", type(model).__name__, err)
        return fused
    for conv_name, norm_name in pairs:
        conv, norm = fused.get_submodule(conv_name), fused.get_submodule(norm_name)
        fused.set_submodule(conv_name, fuse_conv_bn_eval(conv, norm))
        fused.set_submodule(norm_name, _what_remains(norm))
    log.debug("folded %d conv-bn pairs", len(pairs))
    return fused
