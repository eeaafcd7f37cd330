"""Pruning zeroes the share of weights asked for, survives fine-tuning and export, and the pruned export runs."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn
from torch.utils.data import DataLoader

from fakescope.errors import FakescopeError
from fakescope.models import DEFAULT_MODEL, get_pretrained_cfg
from fakescope.models.onnx import OnnxModel
from fakescope.models.transforms import crops_to_tensor
from fakescope.optimize.export import export_model
from fakescope.optimize.prune import prunable, prune_model, sparsity
from fakescope.train.prune_finetune import fine_tune


def test_l1_unstructured_zeroes_the_global_share(default_model):
    model = prune_model(copy.deepcopy(default_model), 0.3, method="l1")
    assert sparsity(model) == pytest.approx(0.3, abs=1e-4)
    assert sparsity(default_model) < 0.01, "pruning works on the copy only"
    assert not any(hasattr(m, "weight_orig") or hasattr(m, "weight_mask") for m in model.modules()), "masks are baked in"


def test_channel_pruning_zeroes_whole_output_channels_of_every_conv(default_model):
    model = prune_model(copy.deepcopy(default_model), 0.25, method="channels")
    for module, _ in prunable(model, (nn.Conv2d,)):
        zero_filters = int((module.weight.detach().flatten(1).abs().sum(1) == 0).sum())
        assert zero_filters == round(0.25 * module.out_channels)
    assert not model.head.weight.eq(0).any(), "the one-output head is never channel-pruned"


def test_bad_prune_settings_are_clear_errors(default_model):
    with pytest.raises(FakescopeError, match=r"prune amount must be in \[0, 1\)"):
        prune_model(copy.deepcopy(default_model), 1.5)
    with pytest.raises(FakescopeError, match="unknown prune method 'random'"):
        prune_model(copy.deepcopy(default_model), 0.3, method="random")


def test_the_pruned_export_runs_and_keeps_its_zeros(tmp_path, val_crops):
    exported = export_model(DEFAULT_MODEL, tmp_path, prune=0.3, evaluate=False)
    assert exported.onnx.name == f"{DEFAULT_MODEL}.pruned-l1-30.fp32.onnx"
    card = json.loads(exported.metadata.read_text())
    assert card["pruning"]["method"] == "l1" and card["pruning"]["sparsity"] == pytest.approx(0.3, abs=1e-3)
    assert card["recipe"].endswith("--prune 0.3")
    graph = onnx.load(str(exported.onnx)).graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = [initializers[n.input[1]] for n in graph.node if n.op_type in ("Conv", "Gemm") and n.input[1] in initializers]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert zeros == pytest.approx(0.3, abs=1e-3), "conv-bn folding scales weights but keeps pruned ones at zero"
    model = OnnxModel(exported.onnx, threads=1)
    probs = model(crops_to_tensor(val_crops, model.pretrained_cfg))["prob"].numpy()
    assert probs.shape == (8,) and np.isfinite(probs).all() and ((probs > 0) & (probs < 1)).all()


def test_fine_tune_keeps_pruned_weights_at_zero_and_recalibrates(dfdc_faces):
    from fakescope.data.images import FaceCropDataset
    from fakescope.data.model_data import labelled_samples
    from fakescope.models import create_model
    from fakescope.models.transforms import eval_transform

    torch.manual_seed(0)
    cfg = get_pretrained_cfg(DEFAULT_MODEL)
    model = prune_model(create_model(DEFAULT_MODEL, pretrained=True), 0.5, method="l1")
    zero_before = [m.weight.detach() == 0 for m, _ in prunable(model)]

    def loader(split: str) -> DataLoader:
        samples = labelled_samples(DEFAULT_MODEL, split, root=dfdc_faces, limit=8)
        return DataLoader(FaceCropDataset(samples, cfg.image_size, eval_transform(cfg)), batch_size=4)

    history = fine_tune(model, {"train": loader("calib"), "calib": loader("val")}, epochs=1, lr=1e-3)
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"]) and history[0]["calib"]["n"] == 8
    for (module, _), zero in zip(prunable(model), zero_before, strict=True):
        assert (module.weight.detach()[zero] == 0).all()
    assert not any(hasattr(m, "weight_mask") for m in model.modules()) and not model.training
    assert model.pretrained_cfg.temperature != cfg.temperature
    assert set(model.pretrained_cfg.thresholds) >= {"real_below", "fake_at_or_above"}
    with pytest.raises(FakescopeError, match="at least 1"):
        fine_tune(model, {"train": loader("calib")}, epochs=0)
