"""The corpus's neural vocoders: shapes, resumable training, and the shipped weights re-synthesise speech."""

import hashlib
import json

import numpy as np
import pytest
import torch

from fakescope.errors import FakescopeError
from fakescope.train.speech import vocoder_training
from fakescope.train.speech.fakes import GENERATORS
from fakescope.train.speech.vocoders import HOP, N_MELS, VOCODERS, LogMel, build_vocoder, vocode, weights_sha256
from tests.conftest import shared


@pytest.mark.parametrize("architecture", ["upsampling", "istft"])
def test_one_hop_of_samples_per_mel_frame(architecture):
    model = build_vocoder(architecture).eval()
    with torch.inference_mode():
        y = model(torch.randn(2, N_MELS, 7))
    assert y.shape == (2, 7 * HOP) and torch.isfinite(y).all()


def tiny_training(tmp_path, run: str, **kwargs):
    return vocoder_training.train_vocoder(
        "istft_vocoder",
        real_root=shared("speech_real"),
        synth_root=None,
        run_dir=tmp_path / run,
        out_dir=tmp_path / f"{run}-out",
        steps=6,
        batch=2,
        save_every=3,
        **kwargs,
    )


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    straight = tiny_training(tmp_path, "straight")
    real_batch, calls = vocoder_training.sample_batch, []

    def dies_on_the_fifth_batch(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_batch(*args)

    monkeypatch.setattr(vocoder_training, "sample_batch", dies_on_the_fifth_batch)
    with pytest.raises(KeyboardInterrupt):
        tiny_training(tmp_path, "resumed")
    monkeypatch.setattr(vocoder_training, "sample_batch", real_batch)
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["step"] == 3
    resumed = tiny_training(tmp_path, "resumed")
    assert resumed["sha256"] == straight["sha256"]
    weights = (tmp_path / "resumed-out" / "istft_vocoder.pt").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == resumed["sha256"]
    card = json.loads((tmp_path / "resumed-out" / "istft_vocoder.json").read_text())
    assert card["recipe"]["steps"] == 6 and card["held_out_reals"]["clips"] > 0


def test_unknown_vocoder_is_a_clear_error(tmp_path):
    with pytest.raises(FakescopeError, match="unknown vocoder"):
        vocoder_training.train_vocoder("wavenet", real_root=shared("speech_real"), synth_root=None, run_dir=tmp_path)
    with pytest.raises(FakescopeError, match="unknown vocoder"):
        weights_sha256("wavenet")


@pytest.mark.parametrize("name", sorted(VOCODERS))
def test_shipped_weights_match_their_card(name):
    spec = VOCODERS[name]
    assert hashlib.sha256(spec.weights.read_bytes()).hexdigest() == weights_sha256(name)
    card = json.loads(spec.card.read_text())
    assert card["architecture"] == spec.architecture and card["held_out_reals"]["clips"] > 50


def log_mel(x: np.ndarray) -> np.ndarray:
    return LogMel()(torch.from_numpy(x).unsqueeze(0)).squeeze(0).numpy()


@pytest.mark.parametrize("name", sorted(VOCODERS))
def test_shipped_vocoders_rebuild_a_held_out_speakers_words(name):
    """On a held-out speech_synth recording (full band) the copy's mel spectrogram follows the original's,
    far closer than another recording's does: a vocoder, not a noise source."""
    x, other = vocoder_training.read_reals(shared("speech_real"), shared("speech_synth"), split="val")[-2:]
    n = min(len(x), len(other))
    y = vocode(name, x[:n], 16000, np.random.default_rng(5))
    assert abs(len(y) - n) <= HOP
    y = y[:n]
    a, b, c = log_mel(x[:n]), log_mel(y), log_mel(other[:n])
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.75 > np.corrcoef(c.ravel(), b.ravel())[0, 1]
    assert np.abs(a - b).mean() < 0.75 * np.abs(c - b).mean()
    assert np.array_equal(y, vocode(name, x[:n], 16000, np.random.default_rng(5))[:n])


def test_vocoders_are_corpus_generators_with_their_own_families():
    families = {GENERATORS[name][0] for name in VOCODERS}
    assert len(families) == len(VOCODERS) and all(f.endswith("-vocoder") for f in families)
