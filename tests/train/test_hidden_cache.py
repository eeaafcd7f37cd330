"""The on-disk cache of CLIP hidden states (the inputs to tuned blocks): chunk files written once each, read back
in the order asked, resumed after an interruption, one cache per depth and view. The tower is replaced by a
fake whose hidden states say which picture (its mean pixel) and which token they belong to."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.data.samples import Sample
from fakescope.errors import FakescopeError
from fakescope.models import create_model
from fakescope.models.clip import TOKENS, WIDTH
from fakescope.models.clip_probe import ClipProbe
from fakescope.train import features
from fakescope.train.features import BACKBONE, CLEAN, cached_hidden, hidden_dir

N_PICTURES = 5


class FakeTower:
    """Stands in for `frozen_states`: token t of a picture holds its mean normalised pixel + t + depth / 100."""

    def __init__(self) -> None:
        self.calls = 0
        self.pictures = 0

    def __call__(self, pixels: torch.Tensor, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        self.pictures += len(pixels)
        shade = pixels.float().mean(dim=(1, 2, 3)).view(-1, 1, 1)
        hidden = (shade + torch.arange(TOKENS).view(1, -1, 1) + blocks / 100).expand(-1, TOKENS, WIDTH).clone()
        return hidden[:, :1].expand(-1, blocks + 1, WIDTH).clone(), hidden


@pytest.fixture
def tower(monkeypatch) -> FakeTower:
    fake = FakeTower()
    monkeypatch.setattr(features, "frozen_states", fake)
    return fake


@pytest.fixture
def samples(tmp_path) -> list[Sample]:
    folder = tmp_path / "faces"
    (folder / "real").mkdir(parents=True)
    rows, out = ["file,label"], []
    for i in range(N_PICTURES):
        name = f"real/{i}.jpg"
        Image.fromarray(np.full((20, 20, 3), 30 + 40 * i, np.uint8)).save(folder / name, quality=95)
        rows.append(f"{name},REAL")
        out.append(Sample(path=folder / name, label=0, group=name, split="train"))
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return out


def tuned(blocks: int = 1) -> ClipProbe:
    """A head tuning the tower's last `blocks` blocks (built without reading the tower)."""
    return create_model("faceswap-clip-b16.dfdc_ffpp_tuned", pretrained=False, tuned_blocks=blocks)


def shades(hidden: np.ndarray, blocks: int = 11) -> np.ndarray:
    """The per-picture value the fake tower wrote, after checking the token and depth coding."""
    assert hidden.shape[1:] == (TOKENS, WIDTH) and hidden.dtype == np.float16
    shade = hidden[:, 0, 0].astype(np.float32) - blocks / 100
    expected = shade[:, None] + np.arange(TOKENS)[None, :] + blocks / 100
    np.testing.assert_allclose(hidden[:, :, 0].astype(np.float32), expected, atol=0.15)  # float16 of values up to ~200
    return shade


def test_hidden_states_are_computed_once_into_chunks_and_read_back_in_order(tower, samples, tmp_path, monkeypatch):
    monkeypatch.setattr(features, "HIDDEN_CHUNK", 2)
    cache = tmp_path / "cache"
    first = cached_hidden(tuned(), samples, cache_dir=cache, batch_size=2)
    assert tower.pictures == N_PICTURES
    assert len(set(shades(first).round(2))) == N_PICTURES
    chunks = sorted(hidden_dir(cache, f"{BACKBONE}-hidden11", CLEAN, samples[0].path.parents[1]).glob("chunk-*.npz"))
    assert [c.name for c in chunks] == ["chunk-0000.npz", "chunk-0001.npz", "chunk-0002.npz"]
    assert chunks[0].parent.parent.parent.name == f"{BACKBONE}-hidden11"
    order = [4, 1, 3, 0, 2, 1]  # any order, a file twice
    again = cached_hidden(tuned(), [samples[i] for i in order], cache_dir=cache)
    assert tower.pictures == N_PICTURES, "nothing recomputed"
    np.testing.assert_array_equal(again, first[order])
    # another depth is another cache, with its own states
    deeper = cached_hidden(tuned(2), samples, cache_dir=cache)
    assert tower.pictures == 2 * N_PICTURES
    np.testing.assert_allclose(shades(deeper, 10), shades(first), atol=0.15)


def test_an_interrupted_fill_resumes_from_its_written_chunks(tower, samples, tmp_path, monkeypatch):
    monkeypatch.setattr(features, "HIDDEN_CHUNK", 2)
    cache = tmp_path / "cache"

    def dies_on_the_third_batch(pixels: torch.Tensor, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        if tower.calls == 2:
            raise KeyboardInterrupt
        return tower(pixels, blocks)

    monkeypatch.setattr(features, "frozen_states", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        cached_hidden(tuned(), samples, cache_dir=cache, batch_size=2)
    assert tower.pictures == 4
    directory = hidden_dir(cache, f"{BACKBONE}-hidden11", CLEAN, samples[0].path.parents[1])
    assert [c.name for c in sorted(directory.glob("chunk-*.npz"))] == ["chunk-0000.npz", "chunk-0001.npz"]
    monkeypatch.setattr(features, "frozen_states", tower)
    hidden = cached_hidden(tuned(), samples, cache_dir=cache, batch_size=2)
    assert tower.pictures == N_PICTURES, "the two written chunks are not computed again"
    assert len(list(directory.glob("chunk-*.npz"))) == 3
    assert len(set(shades(hidden).round(2))) == N_PICTURES


def test_a_head_that_tunes_no_blocks_reads_no_hidden_states(tower, samples, tmp_path):
    with pytest.raises(FakescopeError, match="tunes no blocks"):
        cached_hidden(tuned(0), samples, cache_dir=tmp_path / "cache")
    assert tower.calls == 0
