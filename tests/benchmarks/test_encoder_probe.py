"""The encoder-probe benchmark names only statistics it caches, for either encoder."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


def load_benchmark():
    spec = importlib.util.spec_from_file_location("encoder_probe", ROOT / "benchmarks" / "encoder_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("encoder", ["tiny.en", "base"])
def test_every_feature_set_names_cached_statistics(encoder) -> None:
    bench = load_benchmark()
    for stages, statistics in bench.feature_sets(encoder).values():
        assert set(stages) <= set(bench.stages_of(encoder)) and set(statistics) <= set(bench.STATISTICS)
