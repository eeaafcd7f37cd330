"""The encoder-probe benchmark's statistics ignore batch padding, as the shipped probe's do."""

from __future__ import annotations

import importlib.util

import torch

from tests.conftest import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("encoder_probe", ROOT / "benchmarks" / "encoder_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_statistics_of_a_padded_clip_equal_those_of_the_clip_alone() -> None:
    bench = load_benchmark()
    frames = torch.randn(1, 7, 5)
    padded = torch.cat([frames, torch.full((1, 4, 5), 9.0)], dim=1)
    mask = torch.tensor([[True] * 7 + [False] * 4])
    alone = bench.masked_statistics(frames, torch.ones(1, 7, dtype=torch.bool))
    for got, want in zip(bench.masked_statistics(padded, mask), alone, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    mean, spread, change = alone
    torch.testing.assert_close(mean, frames.mean(1))
    torch.testing.assert_close(spread, frames.std(1, unbiased=False), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(change, (frames[:, 1:] - frames[:, :-1]).abs().mean(1))


def test_every_feature_set_names_cached_statistics() -> None:
    bench = load_benchmark()
    for stages, statistics in bench.FEATURE_SETS.values():
        assert set(stages) <= set(bench.STAGES) and set(statistics) <= set(bench.STATISTICS)
