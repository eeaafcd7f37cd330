"""The training platform on audio: a tiny speech-like corpus, the audio config, export, per-family metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fakescope.data import Sample, Splits
from fakescope.data.audio import NoiseAugment, SpeechClipDataset, SpeedAugment, balanced_weights, pad_batch
from fakescope.errors import FakescopeError
from fakescope.models import create_model, sha256_file
from fakescope.train.config import load_config
from fakescope.train.loaders import exclude_rows, make_audio_loaders
from fakescope.train.trainer import run_training

CONFIG = Path("configs/audio-bigru-attn.yaml")
SR = 16_000


def voiced(rng: np.random.Generator, seconds: float, *, buzzy: bool) -> np.ndarray:
    """A gliding harmonic tone; "buzzy" (the fake class) adds a hard-clipped, noisy excitation."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(100, 180) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    if buzzy:
        x = np.clip(3 * x, -1, 1) + 0.3 * rng.standard_normal(t.size)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def write_corpus(root: Path, n_per_class: int = 24) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for label in ("REAL", "FAKE"):
        for i in range(n_per_class):
            name = f"{label.lower()}/{i}.wav"
            (root / label.lower()).mkdir(parents=True, exist_ok=True)
            sf.write(root / name, voiced(rng, rng.uniform(1.0, 2.5), buzzy=label == "FAKE"), SR, subtype="PCM_16")
            family = "real" if label == "REAL" else ("buzz" if i % 2 else "hum")
            rows.append(
                {
                    "file": name,
                    "label": label,
                    "group": f"g{i}",
                    "source": "synthetic",
                    "family": family,
                    "split": "val" if i % 4 < 2 else "train",
                }
            )
    with (root / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("speech"))


def test_audio_config_trains_exports_and_reports_per_family(corpus, tmp_path):
    cfg = load_config(
        CONFIG,
        [
            f"data.root={corpus}",
            "data.speech_corpus=null",
            "schedule.epochs=2",
            "batch_size=8",
            "data.calib_fraction=0.25",
            f"run_dir={tmp_path / 'run'}",
            "tracker=none",
            "threads=1",
            f"out={tmp_path / 'weights'}",
        ],
    )
    card = run_training(cfg)
    weights = tmp_path / "weights" / card["file"]
    assert card["file"] == "audio_bigru_attn.speech.pt" and sha256_file(weights) == card["sha256"]
    assert card["input_kind"] == "audio" and card["sample_rate"] == SR and "input_size" not in card
    metrics = card["metrics"]
    assert set(metrics) >= {f"{corpus.name}/val", f"{corpus.name}/val family=buzz", f"{corpus.name}/val family=hum"}
    assert metrics[f"{corpus.name}/val"]["auc"] > 0.9, "buzzy vs clean tones is easy"
    state = torch.load(weights, weights_only=True)
    model = create_model("audio-bigru-attn.speech", pretrained=False)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    assert json.loads(weights.with_suffix(".json").read_text())["thresholds"]["real_below"] >= 0


def test_image_options_are_refused_for_audio_models(corpus, tmp_path):
    base = [f"data.root={corpus}", "data.speech_corpus=null", f"run_dir={tmp_path / 'run'}", "tracker=none"]
    with pytest.raises(FakescopeError, match="audio models take only augment.noise, speed, rawboost and crop_seconds"):
        run_training(load_config(CONFIG, [*base, "augment.sbi.p=0.5"]))
    with pytest.raises(FakescopeError, match="init imagenet applies to image backbones"):
        run_training(load_config(CONFIG, [*base, "init=imagenet", f"run_dir={tmp_path / 'run2'}"]))
    with pytest.raises(FakescopeError, match="bad model_args"):
        run_training(load_config(CONFIG, [*base, "model_args={nope: 1}", f"run_dir={tmp_path / 'run3'}"]))


def test_exclude_drops_a_family_and_checks_the_column():
    samples = [Sample(Path(f"{i}.wav"), i % 2, f"g{i}", "train", {"family": "a" if i % 3 else "b"}) for i in range(9)]
    kept = exclude_rows(samples, ["family=b"])
    assert len(kept) == 6 and all(s.info["family"] == "a" for s in kept)
    with pytest.raises(FakescopeError, match="no column 'generator'"):
        exclude_rows(samples, ["generator=x"])
    with pytest.raises(FakescopeError, match="is not column=value"):
        exclude_rows(samples, ["family"])


def test_clip_dataset_crops_pads_and_skips_silence(corpus, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(SR * 2, dtype=np.float32), SR)
    long = tmp_path / "long.wav"
    sf.write(long, voiced(np.random.default_rng(1), 6.0, buzzy=False), SR)
    samples = [
        Sample(tmp_path / "silent.wav", 0, "s", "train"),
        Sample(long, 0, "l", "train"),
        Sample(corpus / "fake" / "0.wav", 1, "f", "train"),
    ]
    cfg = create_model("audio-bigru-attn.speech", pretrained=False).pretrained_cfg
    train = SpeechClipDataset(samples, cfg, train=True, noise=NoiseAugment(p=1.0), seed=0)
    assert [s.path.name for s in train.samples] == ["long.wav", "0.wav"], "silence-only clips are left out"
    wave, label = train[0]
    assert wave.numel() == int(cfg.window_seconds * SR) and label == 0
    batch, labels = pad_batch([train[0], train[1]])
    assert batch.shape == (2, int(cfg.window_seconds * SR)) and labels.tolist() == [0, 1]
    assert (batch[1, train.clips[1].size :] == 0).all(), "padding is exact zeros (masked by the model)"


def test_speed_augment_moves_pitch_and_length_together_and_leaves_the_rest():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    x = (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert SpeedAugment(p=0.0)(x, rng, SR) is x
    faster = SpeedAugment(p=1.0, factor=(1.25, 1.25))(x, rng, SR)
    assert faster.size == pytest.approx(SR / 1.25, abs=2)
    spectrum = np.abs(np.fft.rfft(faster * np.hanning(faster.size)))
    assert np.argmax(spectrum) * SR / faster.size == pytest.approx(250, abs=3), "200 Hz played 1.25x fast is 250 Hz"
    drawn = [SpeedAugment(p=0.5)(x, rng, SR).size != x.size for _ in range(400)]
    assert np.mean(drawn) == pytest.approx(0.5, abs=0.08)


def kinds(label: int, key: str, n: int) -> list[Sample]:
    column = "family" if label else "source"
    return [Sample(Path(f"{key}{i}.wav"), label, f"{key}{i}", "train", {column: key}) for i in range(n)]


def test_balanced_weights_draw_rare_families_more_often_and_keep_class_shares():
    samples = kinds(1, "common", 80) + kinds(1, "rare", 20) + kinds(0, "digits", 45) + kinds(0, "studio", 5)
    share = lambda w, key: w[[i for i, s in enumerate(samples) if key in s.group]].sum()  # noqa: E731
    uniform, root, equal = (balanced_weights(samples, p) for p in (0.0, 0.5, 1.0))
    assert np.allclose(uniform, 1 / len(samples))
    for w in (root, equal):
        assert w.sum() == pytest.approx(1) and share(w, "common") + share(w, "rare") == pytest.approx(100 / 150)
    assert share(equal, "rare") == pytest.approx(share(equal, "common")), "power 1: each family as often"
    assert share(root, "rare") / share(root, "common") == pytest.approx(np.sqrt(20 / 80)), "power 0.5: by the square root"
    assert share(root, "studio") / share(root, "digits") == pytest.approx(np.sqrt(5 / 45)), "reals balance by source"


def test_balance_power_makes_the_train_loader_draw_by_family(corpus, tmp_path):
    rows = [Sample(corpus / f"fake/{i}.wav", 1, f"g{i}", "train", {"family": "buzz" if i < 9 else "hum"}) for i in range(12)]
    rows += [Sample(corpus / f"real/{i}.wav", 0, f"r{i}", "train", {"source": "synthetic"}) for i in range(12)]
    model_cfg = create_model("audio-bigru-attn.speech", pretrained=False).pretrained_cfg
    cfg = load_config(CONFIG, [f"data.root={corpus}", "data.speech_corpus=null", "data.balance_power=1", "batch_size=4"])
    loader = make_audio_loaders(cfg, model_cfg, Splits(rows, rows[:2], rows[:2]))["train"]
    drawn = [i for _ in range(200) for i in loader.sampler]
    assert len(list(loader.sampler)) == len(rows), "an epoch is as long as before"
    hum = np.mean([rows[i].info.get("family") == "hum" for i in drawn if rows[i].label == 1])
    assert hum == pytest.approx(0.5, abs=0.05), "3 hum clips drawn as often as 9 buzz ones"
