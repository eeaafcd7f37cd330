"""audio-whisper-base: conditioned log-mel (the band above 7 kHz cut, digital silence filled, alike alone or
in a batch), frame statistics, a head-only weight file, and its statistics cached per file for probe training."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from fakescope.data import Sample
from fakescope.data.audio import first_windows
from fakescope.errors import FakescopeError, ModelError
from fakescope.evaluate.runner import model_input_probs
from fakescope.models import create_model
from fakescope.models.audio_features import masked_frame_statistics
from fakescope.models.whisper import LOWPASS_HZ, WhisperLogMel, slaney_mel_filterbank
from fakescope.models.whisper_probe import WhisperProbe
from fakescope.train.config import TrainConfig
from fakescope.train.features import cached_inputs, compute_speech_statistics
from fakescope.train.probe import run_probe_training
from tests.models.test_whisper import SR, speech_like

BASE = "audio-whisper-base.speech"


def tone(hz: float, seconds: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(0.1 * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR).astype(np.float32))[None]


def band_level(logmel: torch.Tensor, hz: float) -> float:
    """Mean normalised log-mel of the band whose centre is nearest `hz`, over the clip."""
    centres = slaney_mel_filterbank().argmax(dim=1).float() * SR / 400
    return float(logmel[0, int((centres - hz).abs().argmin())].mean())


def test_conditioning_cuts_the_top_band_and_keeps_the_rest():
    plain, conditioned = WhisperLogMel(), WhisperLogMel(conditioned=True)
    high = tone(LOWPASS_HZ + 500)
    assert band_level(plain(high)[0], LOWPASS_HZ + 500) > band_level(conditioned(high)[0], LOWPASS_HZ + 500) + 1.0
    low = tone(1000)
    assert band_level(conditioned(low)[0], 1000) == pytest.approx(band_level(plain(low)[0], 1000), abs=0.01)


def test_conditioning_fills_digital_silence_and_scores_a_clip_alike_alone_or_padded():
    clip = torch.from_numpy(speech_like(1.5))
    clip[8000:16000] = 0  # half a second of digital silence inside the clip
    conditioned = WhisperLogMel(conditioned=True)
    mel, mask = conditioned(clip[None])
    plain_mel, _ = WhisperLogMel()(clip[None])
    gap = slice(56, 96)  # frames inside the silence
    assert mel[0, :, gap].std() > 0.01, "noise, not one floor value"
    assert plain_mel[0, :, gap].std() < 1e-4
    padded = torch.cat([clip, torch.zeros(12_000)])[None]
    batch = torch.cat([padded, torch.from_numpy(speech_like(2.25, 3))[None]])
    mel_b, mask_b = conditioned(batch)
    assert torch.equal(mask_b[0, : mask.shape[1]], mask[0]) and not mask_b[0, mask.shape[1] :].any()
    torch.testing.assert_close(mel_b[0, :, : mel.shape[2]], mel[0], atol=1e-5, rtol=0)


def test_frame_statistics_of_a_padded_clip_equal_those_of_the_clip_alone():
    frames = torch.randn(1, 7, 5)
    padded = torch.cat([frames, torch.full((1, 4, 5), 9.0)], dim=1)
    mask = torch.tensor([[True] * 7 + [False] * 4])
    alone = masked_frame_statistics(frames, torch.ones(1, 7, dtype=torch.bool))
    for got, want in zip(masked_frame_statistics(padded, mask), alone, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    mean, spread, change = alone
    torch.testing.assert_close(mean, frames.mean(1))
    torch.testing.assert_close(spread, frames.std(1, unbiased=False), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(change, (frames[:, 1:] - frames[:, :-1]).abs().mean(1))
    assert len(masked_frame_statistics(padded, mask, ("mean",))) == 1


def test_base_probe_ships_its_head_alone_and_loads_back_onto_the_wheels_encoder():
    model = create_model(BASE, pretrained=False)
    assert isinstance(model, WhisperProbe) and len(model.encoder.blocks) == 6 and model.frontend.conditioned
    state = model.state_dict()
    assert set(state) == {"norm.running_mean", "norm.running_var", "norm.num_batches_tracked", "head.weight", "head.bias"}
    assert state["head.weight"].shape == (1, 3 * 512 * 6)
    with torch.no_grad():
        model.head.weight.normal_()
    other = create_model(BASE, pretrained=False)
    other.load_state_dict(model.state_dict())
    wave = torch.from_numpy(speech_like(1.0))[None]
    torch.testing.assert_close(other.eval()(wave)["logits"], model.eval()(wave)["logits"])
    assert "base-6-mean+spread+change-conditioned" in model.raw_features_key
    assert create_model("audio-whisper-probe.speech", pretrained=False).raw_features_key != model.raw_features_key


def test_unknown_statistics_are_one_clear_error():
    with pytest.raises(ModelError, match="unknown frame statistics"):
        create_model(BASE, pretrained=False, statistics=("mean", "kurtosis"))


def speech_folder(tmp_path, n: int = 4) -> list[Sample]:
    folder = tmp_path / "speech"
    (folder / "real").mkdir(parents=True)
    samples = []
    for i in range(n):
        path = folder / "real" / f"clip{i}.wav"
        sf.write(path, speech_like(0.8 + 0.3 * i, seed=i) if i else np.zeros(SR, np.float32), SR)  # clip0: silence only
        samples.append(Sample(path, 0, f"g{i}", "train"))
    (folder / "labels.csv").write_text("file,label\n" + "".join(f"real/clip{i}.wav,REAL\n" for i in range(n)))
    return samples


def test_statistics_are_cached_per_file_in_order_and_equal_the_models_own(tmp_path, monkeypatch):
    model = create_model(BASE, pretrained=False)
    samples = speech_folder(tmp_path)
    cache = tmp_path / "cache"
    first = cached_inputs(model, samples, cache_dir=cache)
    assert first.shape == (4, model.head.in_features) and np.isfinite(first).all(), "a silent file has a row too"
    direct = compute_speech_statistics(model, [samples[2].path])
    np.testing.assert_allclose(first[2], direct[0], rtol=2e-3, atol=2e-3)  # stored as float16

    def refuse(*_: object, **__: object) -> np.ndarray:
        raise AssertionError("recomputed a cached file")

    monkeypatch.setattr("fakescope.train.features.compute_speech_statistics", refuse)
    np.testing.assert_array_equal(cached_inputs(model, samples[::-1], cache_dir=cache), first[::-1])
    with pytest.raises(FakescopeError, match="clean only"):
        cached_inputs(model, samples, "jpeg70", cache_dir=cache)


def labelled_speech(root, per_class: int = 16):
    """Real: speech-like clips; fake: the same voices through a crude 'vocoder' (a buzz on every frame)."""
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    rows = ["file,label,speaker"]
    for i in range(per_class):
        clip = speech_like(1.0 + 0.05 * i, seed=i)
        sf.write(root / "real" / f"{i}.wav", clip, SR)
        buzz = 0.05 * np.sign(np.sin(2 * np.pi * 90 * np.arange(clip.size) / SR)).astype(np.float32)
        sf.write(root / "fake" / f"{i}.wav", clip + buzz, SR)
        rows += [f"real/{i}.wav,REAL,s{i}", f"fake/{i}.wav,FAKE,s{i}"]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def speech_recipe(tmp_path, model: str, probe: dict, **extra: object) -> TrainConfig:
    """A probe recipe on `labelled_speech` (written under tmp_path) exporting into tmp_path/out."""
    folder = labelled_speech(tmp_path / "speech")
    return TrainConfig.model_validate(
        {
            "name": "speech-probe-test",
            "model": model,
            "data": {"root": str(folder), "val_fraction": 0.25, "calib_fraction": 0.25},
            "probe": probe,
            "tracker": "none",
            "threads": 1,
            "run_dir": str(tmp_path / "run"),
            "out": str(tmp_path / "out"),
            **extra,
        }
    )


def test_a_speech_probe_recipe_trains_calibrates_and_exports_the_head_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the statistics cache (runs/features) goes here
    cfg = speech_recipe(tmp_path, BASE, {"c_grid": [0.01, 0.1]})
    card = run_probe_training(cfg)
    assert card["metrics"]["speech/val"]["auc"] > 0.9 and card["extra"]["encoder_blocks"] == 6
    assert card["thresholds"]["fpr_target"] == 0.05
    weights = tmp_path / "out" / "audio_whisper_base.speech.pt"
    assert weights.stat().st_size < 100_000, "the head and its standardisation, not the encoder"
    assert list((tmp_path / "runs" / "features").glob("whisper-base-6-*/clean/speech-*.npz"))
    with pytest.raises(FakescopeError, match="clean only"):
        run_probe_training(cfg.model_copy(update={"probe": cfg.probe.model_copy(update={"views": ["clean", "jpeg70"]})}))


def test_model_input_scores_a_speech_model_on_each_clips_first_window(tmp_path):
    """The cross-dataset protocols' shipped rows: a speech model reads each file's first prepared window."""
    model = create_model("audio-whisper-probe.speech", pretrained=False).eval()
    samples = speech_folder(tmp_path, n=4)[1:]  # speech only: a clip of silence alone is all padding
    probs = model_input_probs(model, samples, batch_size=2)
    with torch.inference_mode():
        alone = [
            float(model(torch.from_numpy(clip)[None])["prob"])
            for clip in first_windows([s.path for s in samples], model.pretrained_cfg)
        ]
    np.testing.assert_allclose(probs, alone, atol=1e-5)
