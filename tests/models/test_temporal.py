"""Temporal face models (models.temporal): where a track's sequences start, padding that changes nothing,
attention over the real frames only, one encoding per crop when a track is scored, the frame encoders'
starting weights, temporal CutMix, and the fit on cached frame features."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fakescope.data import SequenceSample
from fakescope.errors import ModelError
from fakescope.evaluate import binary_metrics
from fakescope.models import create_model
from fakescope.models.packaged import installed_file
from fakescope.models.temporal import (
    MOBILENET_WHEEL,
    Conv3DSequenceModel,
    RecurrentSequenceModel,
    frame_encoder,
    load_frame_encoder_weights,
    load_video_network_weights,
    window_starts,
)
from fakescope.train.augment import cutmix_sequences
from fakescope.train.config import TrainConfig
from fakescope.train.sequence_fit import SequenceSet, fit_sequence_head, sequence_logits, video_scores

BILSTM, LIGHT, I3D = (
    "temporal-effnet-lite0-bilstm.videos",
    "temporal-mobilenet-v2-lstm.videos",
    "temporal-i3d-mobilenet-v2.videos",
)


@pytest.mark.parametrize(
    ("frames", "length", "stride", "starts"),
    [(5, 8, 4, [0]), (8, 8, 4, [0]), (16, 8, 4, [0, 4, 8]), (18, 8, 4, [0, 4, 8, 10]), (32, 8, 4, [0, 4, 8, 12, 16, 20, 24])],
)
def test_windows_cover_every_crop(frames, length, stride, starts):
    assert window_starts(frames, length, stride) == starts
    covered = {i for s in starts for i in range(s, min(s + length, frames))}
    assert covered == set(range(frames))


def test_windows_reject_empty_tracks():
    with pytest.raises(ModelError, match=">= 1"):
        window_starts(0, 8, 4)


@pytest.fixture(scope="module")
def light() -> RecurrentSequenceModel:
    torch.manual_seed(0)
    model = create_model(LIGHT, pretrained=False)
    assert isinstance(model, RecurrentSequenceModel)
    return model.eval()


def frames(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_a_short_track_scores_the_same_alone_or_padded_and_attends_to_real_frames_only(light):
    x = torch.stack([frames(8, 1), torch.cat([frames(5, 2), torch.zeros(3, 3, 64, 64)])])
    with torch.no_grad():
        out = light(x)
        alone = light(frames(5, 2)[None])
    torch.testing.assert_close(out["prob"][1:], alone["prob"], atol=1e-5, rtol=1e-5)
    attention = out["attention"]
    assert attention.shape == (2, 8)
    torch.testing.assert_close(attention.sum(1), torch.ones(2))
    assert torch.equal(attention[1, 5:], torch.zeros(3))
    with pytest.raises(ModelError, match=r"\(B, T, 3, H, W\)"):
        light(frames(4))


def test_scoring_a_track_encodes_each_crop_once_and_equals_its_windows(light, monkeypatch):
    track = frames(18, 3)
    with torch.no_grad():
        windows = torch.stack([track[s : s + 8] for s in window_starts(18, 8, 4)])
        expected = light(windows)["prob"]
        calls = []
        encode = light.encoder.forward
        monkeypatch.setattr(light.encoder, "forward", lambda x: calls.append(len(x)) or encode(x))
        starts, probs, attention = light.score_track(track)
    assert starts == [0, 4, 8, 10] and calls == [18]
    torch.testing.assert_close(probs, expected, atol=1e-5, rtol=1e-5)
    assert attention.shape == (4, 8)


def test_the_light_model_starts_from_the_wheels_imagenet_mobilenet():
    model = create_model(LIGHT, pretrained=False)
    source = load_frame_encoder_weights(model.encoder_name, model.encoder)
    assert "ImageNet" in source
    state = torch.load(installed_file(*MOBILENET_WHEEL, needed_by="test"), map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.encoder[0][0][0].weight, state["features.0.0.weight"])
    assert not any(p.requires_grad for p in model.encoder.parameters()), "the frame encoder is frozen"


def test_the_bilstm_model_reads_the_default_frame_models_backbone():
    model = create_model(BILSTM, pretrained=False)
    assert model.rnn.bidirectional and model.rnn.num_layers == 2 and model.rnn.hidden_size == 256
    assert "backbone" in load_frame_encoder_weights(model.encoder_name, model.encoder)
    with pytest.raises(ModelError, match="unknown frame encoder"):
        create_model(BILSTM, pretrained=False, encoder="resnet-50")


def test_temporal_cutmix_swaps_one_span_of_frames_and_mixes_labels_by_its_share():
    x = torch.arange(2 * 8, dtype=torch.float32).view(2, 8, 1).expand(2, 8, 3).clone()
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False
    labels = torch.tensor([0, 1])
    g = torch.Generator().manual_seed(4)
    mixed, mixed_mask, soft = cutmix_sequences(x, mask, labels, p=1.0, generator=g)
    swapped = (mixed != x).any(-1)
    if swapped.any():  # rows swapped with each other: the same contiguous span in both
        span = swapped.any(0).nonzero().flatten()
        assert (span.diff() == 1).all()
        share = len(span) / 8
        torch.testing.assert_close(soft, torch.tensor([share, 1 - share]))
        assert torch.equal(mixed_mask[0, span], mask[1, span])
    same, _, soft = cutmix_sequences(x, mask, labels, p=0.0)
    assert same is x and torch.equal(soft, labels.float())


def synthetic_set(n: int, seed: int, dim: int = 1280) -> SequenceSet:
    """Every frame alike on its own (a few features at +1 or -1, the rest small noise); over time a real's sign
    holds and a fake's flips every frame: only a model that reads the sequence can tell them apart."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    flips = np.where(y[:, None] == 1, (-1.0) ** np.arange(8)[None, :], 1.0)
    x = 0.1 * rng.standard_normal((n, 8, dim)).astype(np.float32)
    x[:, :, :16] += (sign * flips)[:, :, None]
    seqs = [SequenceSample((), int(label), f"g{i}", "train", f"v{i // 3}", i % 3) for i, label in enumerate(y)]
    return SequenceSet(seqs, x.astype(np.float32), np.ones((n, 8), bool), y)


def test_the_fit_learns_flicker_from_cached_features_and_never_moves_the_encoder(light):
    model = create_model(LIGHT, pretrained=False)
    encoder = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    cfg = TrainConfig.model_validate(
        {
            "name": "seq",
            "model": LIGHT,
            "data": {"root": "unused"},
            "sequence": {},
            "augment": {"cutmix": {"p": 0.5}},
            "optim": {"lr": 3e-3},
            "schedule": {"epochs": 6},
            "batch_size": 16,
            "tracker": "none",
        }
    )
    choice = fit_sequence_head(model, synthetic_set(96, 1), synthetic_set(32, 2), cfg)
    assert len(choice["calib_logloss_by_epoch"]) == 6
    assert choice["best_epoch"] == int(np.argmin(choice["calib_logloss_by_epoch"])) + 1
    assert all(torch.equal(v, encoder[k]) for k, v in model.encoder.state_dict().items())
    val = synthetic_set(60, 3)
    logits = sequence_logits(model, val)
    assert np.mean((logits > 0) == val.y) > 0.9
    videos, labels, scores = video_scores(val.sequences, 1 / (1 + np.exp(-logits)))
    assert len(videos) == 20 and scores.shape == labels.shape == (20,)


def test_i3d_inflation_gives_the_2d_networks_response_on_a_still_clip():
    model = create_model(I3D, pretrained=False).eval()
    assert "inflated to 3-D" in load_video_network_weights(model.arch, model.network)
    encoder, _ = frame_encoder("mobilenet-v2")
    load_frame_encoder_weights("mobilenet-v2", encoder)
    picture = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        still = model.features(picture[:, None].expand(1, 6, 3, 64, 64))
        torch.testing.assert_close(still, encoder.eval()(picture), atol=1e-4, rtol=1e-4)
        moving = model.features(torch.stack([torch.roll(picture[0], 4 * t, dims=2) for t in range(6)])[None])
    assert (moving - still).abs().max() > 1e-3, "it sees motion"


@pytest.mark.parametrize("name", [I3D, "temporal-r3d-18.videos", "temporal-mc3-18.videos", "temporal-r2plus1d-18.videos"])
def test_3d_networks_fill_a_short_track_with_its_last_crop(name):
    torch.manual_seed(0)
    model = create_model(name, pretrained=False).eval()
    assert model.pretrained_cfg.image_size == 112
    clip = torch.randn(1, 8, 3, 32, 32)
    padded = clip.clone()
    padded[0, 5:] = 0
    filled = clip.clone()
    filled[0, 5:] = clip[0, 4]
    with torch.no_grad():
        torch.testing.assert_close(model(padded)["logits"], model(filled)["logits"])
    with pytest.raises(ModelError, match="unknown 3-D network"):
        Conv3DSequenceModel(model.pretrained_cfg, arch="c3d")


def test_a_3d_network_fits_from_pixels_and_keeps_the_best_calib_epoch(tmp_path):
    """Fakes brighter than reals (a textured face stand-in): the pixel fit learns it in a few epochs, every layer training."""
    from PIL import Image

    from fakescope.train.sequence_fit import sequence_fitter

    def sequences(n: int, seed: int) -> list[SequenceSample]:
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            folder = tmp_path / f"s{seed}-{i}"
            folder.mkdir()
            texture = rng.integers(40, 200, (16, 16, 3))
            paths = []
            for t in range(8):
                value = np.clip(texture + (50 if i % 2 else -50), 0, 255).astype(np.uint8)
                Image.fromarray(value).save(folder / f"{t}.png")
                paths.append(folder / f"{t}.png")
            out.append(SequenceSample(tuple(paths), i % 2, f"g{seed}-{i}", "train", folder.name, 0))
        return out

    cfg = TrainConfig.model_validate(
        {
            "name": "i3d",
            "model": I3D,
            "data": {"root": "unused"},
            "sequence": {},
            "optim": {"lr": 1e-4},
            "schedule": {"epochs": 4},
            "batch_size": 8,
            "amp": False,
            "tracker": "none",
        }
    )
    fitter = sequence_fitter(cfg)
    fitter.model.pretrained_cfg = dataclasses.replace(fitter.model.pretrained_cfg, input_size=(3, 32, 32))
    train, calib = sequences(24, 1), sequences(12, 2)
    fitter.prepare(train + calib)
    choice = fitter.fit(train, calib, cfg)
    history = choice["calib_logloss_by_epoch"]
    assert len(history) == 4 and choice["best_epoch"] == int(np.argmin(history)) + 1
    logits = fitter.logits(calib)
    assert binary_metrics(np.array([s.label for s in calib]), 1 / (1 + np.exp(-logits)))["auc"] > 0.9
