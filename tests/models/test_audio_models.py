"""Speech detectors: the MFCC front end against reference maths, padding invariance, the contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from fakescope.models import create_model, list_models
from fakescope.models.audio import OneClassHead, subtract_mean
from fakescope.models.audio_features import LogSpectrogram, SpeechFeatures, dct_matrix, mel_filterbank

SR = 16_000


def tone(seconds: float, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 450 * t) + 0.05 * rng.standard_normal(t.size)
    return torch.from_numpy((0.1 * x).astype(np.float32))


def test_dct_matches_scipy_orthonormal_dct():
    x = np.random.default_rng(0).standard_normal((5, 64))
    ours = x @ dct_matrix(64, 40).double().numpy()
    assert np.allclose(ours, scipy.fft.dct(x, type=2, norm="ortho", axis=-1)[:, :40], atol=1e-5)


def test_mel_filters_cover_the_band_with_unit_area():
    fb = mel_filterbank(SR, 512, 64, 20.0, 8000.0)
    assert fb.shape == (257, 64) and (fb >= 0).all()
    hz_per_bin = SR / 512
    assert torch.allclose(fb.sum(0) * hz_per_bin, torch.ones(64), atol=0.35), "each triangle has area ~1 (Slaney norm)"
    assert (fb.argmax(0).diff() >= 0).all(), "centres rise with the band index"


def test_features_are_120_d_mfcc_with_deltas_and_a_padding_mask():
    front = SpeechFeatures()
    wave = torch.stack([tone(2.0), torch.cat([tone(1.0), torch.zeros(SR)])])
    feat, mask = front(wave)
    assert front.dim == 120 and feat.shape == (2, 201, 120)
    assert mask[0].all() and mask[1, :95].all() and not mask[1, 110:].any()
    # Deltas of a steady tone are ~0 away from the edges; the static MFCCs are not.
    assert feat[0, 20:180, 40:].abs().mean() < 0.1 * feat[0, 20:180, :40].abs().mean()
    assert SpeechFeatures("logmel").dim == 192 and SpeechFeatures("logmel", deltas=False).dim == 64
    with pytest.raises(ValueError, match="unknown feature kind"):
        SpeechFeatures("lfcc")  # type: ignore[arg-type]


def test_mfcc_spec_appends_the_log_power_of_every_fft_bin_to_the_mfccs():
    wave = tone(1.0)[None]
    mfcc, _ = SpeechFeatures()(wave)
    front = SpeechFeatures("mfcc_spec")
    feat, _ = front(wave)
    assert front.dim == 120 + 257 and feat.shape == (1, 101, 377)
    assert torch.allclose(feat[..., :120], mfcc)
    frame = np.pad(wave[0].numpy(), 256)[50 * 160 : 50 * 160 + 512]
    window = np.pad(np.hanning(401)[:-1], 56)  # torch's periodic 400-sample Hann, centred in 512
    reference = np.log(np.abs(np.fft.rfft(frame * window)) ** 2 + 1e-6)
    assert np.allclose(feat[0, 50, 120:].numpy(), reference, atol=1e-2)
    spectrum = feat[0, 50, 120:]
    assert spectrum[round(150 * 512 / SR)] > spectrum[round(300 * 512 / SR)] + 5, (
        "the 150 Hz harmonic stands out of the gap above it"
    )


@pytest.mark.parametrize("name", ["audio-bigru-attn", "audio-cnn-gru", "audio-spec-cnn", "audio-whisper-probe"])
def test_padding_in_a_batch_does_not_change_a_clip_score(name):
    torch.manual_seed(0)
    model = create_model(name, pretrained=False).eval()
    short, long = tone(1.3, seed=1), tone(2.5, seed=2)
    with torch.inference_mode():
        alone = model(short[None])["prob"]
        batch = torch.zeros(2, long.numel())
        batch[0, : short.numel()], batch[1] = short, long
        out = model(batch)
    assert out["logits"].shape == (2,) and out["feat"].ndim == 2
    assert torch.allclose(out["prob"][0], alone[0], atol=2e-3), "masked padding leaves the score of the short clip alone"


def test_log_spectrogram_phase_channels_see_a_steady_partial_as_steady_and_noise_as_ragged():
    t = np.arange(SR) / SR
    partial = 1000.0  # exactly bin 32 of a 512-point FFT at 16 kHz: its phase advances as the bin predicts
    rng = np.random.default_rng(0)
    wave = torch.from_numpy((0.3 * np.sin(2 * np.pi * partial * t) + 0.01 * rng.standard_normal(SR)).astype(np.float32))
    front = LogSpectrogram(phase=True)
    image, mask = front(wave[None])
    assert front.channels == 5 and image.shape == (1, 5, 257, 101) and mask.all()
    assert torch.allclose(image[0, 1] ** 2 + image[0, 2] ** 2, torch.ones(257, 101), atol=1e-4), "cos/sin pairs"
    steady = image[0, 1, 32, 5:-5]
    assert steady.min() > 0.99, "the partial's phase advance matches its bin centre frequency"
    assert image[0, 1, 200, 5:-5].abs().mean() < 0.8, "noise-only bins have no consistent phase advance"
    magnitude_only, _ = LogSpectrogram()(wave[None])
    assert magnitude_only.shape == (1, 1, 257, 101) and torch.allclose(magnitude_only[0, 0], image[0, 0])


def test_audio_models_are_registered_with_their_input_contract():
    assert {"audio-bigru-attn.speech", "audio-cnn-gru.speech", "audio-spec-cnn.speech", "audio-whisper-probe.speech"} <= set(
        list_models("audio-*")
    )
    cfg = create_model("audio-bigru-attn", pretrained=False).pretrained_cfg
    assert (cfg.input_kind, cfg.sample_rate, cfg.window_seconds, cfg.hop_seconds) == ("audio", SR, 4.0, 2.0)


def test_utterance_norm_removes_a_constant_per_clip_offset_over_real_frames_only():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    shifted = x + torch.tensor([5.0, -2.0, 0.5])
    out = subtract_mean(shifted, mask)
    assert torch.allclose(out, subtract_mean(x, mask), atol=1e-5), "a gain or EQ constant over the clip is gone"
    assert torch.allclose(out[1, :6].mean(0), torch.zeros(3), atol=1e-5), "padding does not enter the mean"
    model = create_model("audio-bigru-attn", pretrained=False, utterance_norm=True).eval()
    wave = tone(1.5)
    with torch.inference_mode():
        assert torch.allclose(model(wave[None])["prob"], model((3.0 * wave)[None])["prob"], atol=1e-4)


def test_one_class_head_wants_reals_in_a_tight_cone_and_fakes_merely_outside_a_wide_one():
    head = OneClassHead(4)
    centre = head.centre.detach()
    at = lambda cos: cos * centre / centre.norm() + (1 - cos**2) ** 0.5 * other  # noqa: E731
    other = torch.randn(4)
    other = other - (other @ centre) * centre / centre.norm() ** 2
    other = other / other.norm()
    logits = head(torch.stack([at(0.95), at(0.5), at(0.1)]))[:, 0]
    assert logits[0] < 0 < logits[2], "P(fake) < 0.5 near the centre, > 0.5 far from it"
    real = head.loss(logits, torch.tensor([0, 0, 0]))
    fake = head.loss(logits, torch.tensor([1, 1, 1]))
    per_real = [head.loss(logits[i : i + 1], torch.tensor([0])).item() for i in range(3)]
    per_fake = [head.loss(logits[i : i + 1], torch.tensor([1])).item() for i in range(3)]
    assert per_real[0] < 0.6 < per_real[1], "a real at cosine 0.5 is still outside the 0.9 cone"
    assert per_fake[2] < 0.6 < per_fake[1], "a fake at cosine 0.5 is still inside the 0.2 cone"
    assert real.item() == pytest.approx(np.mean(per_real), rel=1e-5) and fake.item() == pytest.approx(np.mean(per_fake), rel=1e-5)


def test_spec_cnn_one_class_option_trains_through_the_detector_contract():
    torch.manual_seed(0)
    model = create_model("audio-spec-cnn", pretrained=False, one_class=True)
    out = model(torch.stack([tone(1.0, seed=1), tone(1.0, seed=2)]))
    losses = model.losses(out, torch.tensor([0, 1]))
    assert set(losses) == {"oc_softmax", "total"}
    losses["total"].backward()
    assert model.head.centre.grad is not None and model.head.centre.grad.abs().sum() > 0
    assert "head.centre" in model.state_dict() and "head.weight" not in model.state_dict()
