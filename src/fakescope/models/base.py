"""The model contract every architecture follows (DeepfakeBench's AbstractDetector).

`forward` returns a dict, never a tuple: `logits` (B,), `prob` = P(fake) (B,), `feat` (B, D).
One trainer and one inference path serve every model because of this. ("Detector" is the
public entry point, `fakescope.Detector`, that runs these models on files.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fakescope.models.config import PretrainedCfg

# Light tuning of a frozen-backbone head (models.clip_probe, models.whisper_probe) trains at most this many of
# the backbone's last blocks, so the frozen part's outputs can be cached (train.tuning).
MAX_TUNED_BLOCKS = 2


class ClassifierModel(nn.Module):
    """Backbone features -> a single fake logit. Subclasses implement `features` and `classifier`."""

    def __init__(self, pretrained_cfg: PretrainedCfg) -> None:
        super().__init__()
        self.pretrained_cfg = pretrained_cfg

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.outputs(self.features(x))

    def outputs(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The contract's dict from features: the head's logit and the calibrated P(fake)."""
        logits = self.classifier(feat).reshape(-1)
        # Temperature scaling is part of the shipped model: prob is calibrated P(fake).
        prob = torch.sigmoid(logits / self.pretrained_cfg.temperature)
        return {"logits": logits, "prob": prob, "feat": feat}

    def losses(
        self, out: dict[str, torch.Tensor], labels: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> dict[str, torch.Tensor]:
        target = labels.float() * (1 - label_smoothing) + 0.5 * label_smoothing
        bce = F.binary_cross_entropy_with_logits(out["logits"].float(), target)
        return {"bce": bce, "total": bce}
