"""The published HiFi-GAN behind the corpus's `hifigan` fakes: found offline, fed the mel it was
trained on, and a clear error when missing."""

import csv
import hashlib
import json

import numpy as np
import pytest

from fakescope.errors import FakescopeError
from fakescope.train.speech import hifigan, vocoder_training
from fakescope.train.speech.catalogue import DEFAULT_GENERATORS
from fakescope.train.speech.corpus import build_speech_corpus
from fakescope.train.speech.fakes import GENERATORS, network_sha256
from fakescope.train.speech.hifigan import HOP, N_MELS, hifigan_mel, hifigan_path, hifigan_sha256, hifigan_vocode
from tests.conftest import shared


def test_one_mel_frame_per_hop_so_the_copy_keeps_the_length():
    mel = hifigan_mel(np.zeros(16000, np.float32))
    assert mel.shape == (N_MELS, 16000 // HOP) and mel.dtype == np.float32


def test_it_rebuilds_a_held_out_speakers_words_from_the_mel_it_expects():
    """The mel of the copy is the mel it was given (L1 in natural log well under the 0.5 that other
    STFT settings give), and far from another recording's: the front end matches the network."""
    x, other = vocoder_training.read_reals(shared("speech_real"), shared("speech_synth"), split="val")[-2:]
    n = min(len(x), len(other), 3 * 16000)
    # a seed whose first draw leaves the mel unperturbed (`perturb_mel`: copy-synthesis)
    seed = next(s for s in range(100) if np.random.default_rng(s).random() >= 2 / 3)
    y = hifigan_vocode(x[:n], 16000, np.random.default_rng(seed))
    assert abs(len(y) - n) <= HOP
    a, b, c = hifigan_mel(x[:n]), hifigan_mel(y[:n]), hifigan_mel(other[:n])
    frames = min(a.shape[1], b.shape[1])
    assert np.abs(a[:, :frames] - b[:, :frames]).mean() < 0.5 < np.abs(c[:, :frames] - b[:, :frames]).mean()
    assert np.array_equal(y, hifigan_vocode(x[:n], 16000, np.random.default_rng(seed)))


def test_it_is_a_gan_vocoder_generator_fingerprinted_by_its_file():
    assert GENERATORS["hifigan"][0] == "gan-vocoder"
    assert network_sha256("hifigan") == hashlib.sha256(hifigan_path().read_bytes()).hexdigest()
    assert network_sha256("lpc") is None


def test_too_short_input_is_a_clear_error():
    with pytest.raises(FakescopeError, match="too short to vocode"):
        hifigan_vocode(np.zeros(100, np.float32), 16000, np.random.default_rng(0))


def test_without_its_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(hifigan, "HIFIGAN", "hifigan-not-installed")
    hifigan._generator.cache_clear()
    try:
        with pytest.raises(FakescopeError, match="hifigan-not-installed: not installed"):
            hifigan_vocode(np.zeros(16000, np.float32), 16000, np.random.default_rng(0))
    finally:
        hifigan._generator.cache_clear()


def test_it_is_an_opt_in_corpus_generator_recorded_by_its_network(tmp_path):
    labels = build_speech_corpus(
        tmp_path / "corpus", real_root=shared("speech_real"), synth_root=None, limit=2, workers=1, generators=("hifigan",)
    )
    with labels.open(newline="") as fh:
        fakes = [r for r in csv.DictReader(fh) if r["label"] == "FAKE"]
    assert len(fakes) == 2 and {(r["generator"], r["family"]) for r in fakes} == {("hifigan", "gan-vocoder")}
    settings = json.loads((labels.parent / "manifest.json").read_text())["settings"]
    assert settings["vocoders_sha256"] == {"hifigan": hifigan_sha256()}
    assert "hifigan" not in DEFAULT_GENERATORS
