"""The on-disk cache of CLIP class tokens: computed once per file and view, reused, recomputed when a file
changes, returned in the order asked. The tower is replaced by a cheap deterministic fake whose tokens
say which picture they came from (its mean pixel), so order and staleness are visible."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.data.samples import Sample
from fakescope.errors import FakescopeError
from fakescope.models.clip import LAYERS, WIDTH
from fakescope.train import features
from fakescope.train.features import BACKBONE, CLEAN, cached_tokens, compute_tokens, file_key

N_PICTURES = 6


class FakeTower:
    """Stands in for `class_tokens`: every token of a picture is its mean normalised pixel; counts the pictures seen."""

    def __init__(self) -> None:
        self.calls = 0
        self.pictures = 0

    def __call__(self, pixels: torch.Tensor, layers: int = LAYERS) -> torch.Tensor:
        assert pixels.shape[1:] == (3, 224, 224)
        self.calls += 1
        self.pictures += len(pixels)
        return pixels.float().mean(dim=(1, 2, 3)).view(-1, 1, 1).expand(-1, layers + 1, WIDTH).clone()


@pytest.fixture
def tower(monkeypatch) -> FakeTower:
    fake = FakeTower()
    monkeypatch.setattr(features, "class_tokens", fake)
    return fake


def write_picture(path, shade: int) -> None:
    Image.fromarray(np.full((24, 32, 3), shade, np.uint8)).save(path, quality=95)


@pytest.fixture
def samples(tmp_path) -> list[Sample]:
    """A labels.csv folder of flat pictures of distinct shades (so each one's tokens differ)."""
    folder = tmp_path / "pics"
    (folder / "real").mkdir(parents=True)
    (folder / "fake").mkdir()
    rows, out = ["file,label"], []
    for i in range(N_PICTURES):
        label = i % 2
        name = f"{'fake' if label else 'real'}/{i}.jpg"
        write_picture(folder / name, 20 + 35 * i)
        rows.append(f"{name},{'FAKE' if label else 'REAL'}")
        out.append(Sample(path=folder / name, label=label, group=name, split="train"))
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return out


def shades(tokens: np.ndarray) -> np.ndarray:
    """The per-picture value the fake tower wrote (every token of a picture holds it)."""
    assert tokens.shape[1:] == (LAYERS + 1, WIDTH) and tokens.dtype == np.float32
    np.testing.assert_array_equal(tokens, np.broadcast_to(tokens[:, :1, :1], tokens.shape))
    return tokens[:, 0, 0]


def test_tokens_are_computed_once_and_then_read_from_the_cache(tower, samples, tmp_path):
    cache = tmp_path / "cache"
    first = cached_tokens(samples, cache_dir=cache)
    assert tower.pictures == N_PICTURES and first.shape == (N_PICTURES, LAYERS + 1, WIDTH)
    assert len(set(shades(first).round(3))) == N_PICTURES  # every picture its own tokens
    assert list((cache / BACKBONE / CLEAN).glob("pics-*.npz"))
    again = cached_tokens(samples, cache_dir=cache)
    assert tower.pictures == N_PICTURES, "nothing recomputed"
    np.testing.assert_array_equal(again, first)
    # the cached float16 tokens are the computed ones, to float16 precision
    np.testing.assert_allclose(first, compute_tokens([s.path for s in samples]), rtol=1e-3, atol=1e-3)


def test_the_order_asked_is_the_order_returned(tower, samples, tmp_path):
    cache = tmp_path / "cache"
    forward = shades(cached_tokens(samples, cache_dir=cache))
    order = [3, 0, 5, 1, 4, 2]
    np.testing.assert_array_equal(shades(cached_tokens([samples[i] for i in order], cache_dir=cache)), forward[order])
    assert tower.pictures == N_PICTURES
    # a subset asked before the rest is cached: the rest is computed later, the subset is not computed twice
    other = tmp_path / "other"
    np.testing.assert_array_equal(shades(cached_tokens(samples[4:], cache_dir=other)), forward[4:])
    np.testing.assert_array_equal(shades(cached_tokens(samples[::-1], cache_dir=other)), forward[::-1])
    assert tower.pictures == 2 * N_PICTURES


def test_a_changed_file_is_recomputed(tower, samples, tmp_path):
    cache = tmp_path / "cache"
    before = shades(cached_tokens(samples, cache_dir=cache))
    path = samples[2].path
    old_key = file_key(path)
    Image.fromarray(np.full((40, 40, 3), 250, np.uint8)).save(path, quality=95)  # new size
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # and a new mtime, whatever the clock
    assert file_key(path) != old_key
    after = shades(cached_tokens(samples, cache_dir=cache))
    assert tower.pictures == N_PICTURES + 1, "only the changed file is recomputed"
    assert after[2] > before[2] + 0.5  # the new, brighter picture's tokens
    np.testing.assert_array_equal(np.delete(after, 2), np.delete(before, 2))


def test_a_perturbed_view_has_its_own_cache(tower, samples, tmp_path):
    cache = tmp_path / "cache"
    clean = cached_tokens(samples, cache_dir=cache)
    jpeg = cached_tokens(samples, "jpeg70", cache_dir=cache)
    assert tower.pictures == 2 * N_PICTURES, "the clean cache does not answer for jpeg70"
    assert list((cache / BACKBONE / "jpeg70").glob("pics-*.npz"))
    assert not np.array_equal(jpeg, clean)  # re-saved at quality 70: not the same pixels
    np.testing.assert_allclose(shades(jpeg), shades(clean), atol=0.05)  # ... but the same pictures, in order
    np.testing.assert_array_equal(cached_tokens(samples, "jpeg70", cache_dir=cache), jpeg)
    np.testing.assert_array_equal(cached_tokens(samples, cache_dir=cache), clean)
    assert tower.pictures == 2 * N_PICTURES


def test_an_interrupted_run_resumes_where_it_stopped(monkeypatch, samples, tmp_path):
    cache = tmp_path / "cache"
    tower = FakeTower()

    def dies_on_the_third_batch(pixels: torch.Tensor, layers: int = LAYERS) -> torch.Tensor:
        if tower.calls == 2:
            raise KeyboardInterrupt
        return tower(pixels, layers)

    monkeypatch.setattr(features, "SAVE_EVERY", 2)
    monkeypatch.setattr(features, "class_tokens", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        cached_tokens(samples, cache_dir=cache, batch_size=2)
    assert tower.pictures == 4
    monkeypatch.setattr(features, "class_tokens", tower)
    tokens = cached_tokens(samples, cache_dir=cache, batch_size=2)
    assert tower.pictures == N_PICTURES, "the two saved chunks are not computed again"
    assert len(set(shades(tokens).round(3))) == N_PICTURES


def test_an_unknown_view_is_a_clear_error(tower, samples, tmp_path):
    with pytest.raises(FakescopeError, match="unknown perturbation 'sharpen2'"):
        cached_tokens(samples, "sharpen2", cache_dir=tmp_path / "cache")
    assert tower.calls == 0
