"""Conv-bn folding changes no output and leaves no batch norm behind."""

from __future__ import annotations

import torch
from torch import nn

from fakescope.models.transforms import crops_to_tensor
from fakescope.optimize.fuse import conv_bn_pairs, fuse_conv_bn


def test_folding_the_default_model_keeps_its_outputs(default_model, val_crops):
    fused = fuse_conv_bn(default_model)
    assert len(conv_bn_pairs(default_model)) == 49
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in default_model.modules()), "the original must be left untouched"
    x = crops_to_tensor(val_crops, default_model.pretrained_cfg)
    with torch.inference_mode():
        before, after = default_model(x), fused(x)
    torch.testing.assert_close(after["logits"], before["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after["prob"], before["prob"], atol=1e-5, rtol=1e-4)


def test_a_conv_whose_output_is_also_used_elsewhere_is_not_folded():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + y + self.bn2(self.conv2(y))

    torch.manual_seed(0)
    model = Branchy().eval()
    for bn in (model.bn, model.bn2):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    assert conv_bn_pairs(model) == [("conv2", "bn2")]
    fused = fuse_conv_bn(model)
    assert isinstance(fused.bn, nn.BatchNorm2d) and isinstance(fused.bn2, nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-5)
