"""`fakescope train` for CLIP heads (recipes with a `probe:` section) on synthetic folders: the token cache
is replaced by tokens in which one layer carries the label under noise, so a run takes seconds and its
card, per-folder metrics, thresholds and exported weights can be checked end to end."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.data.samples import Sample
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.models import create_model, sha256_file
from fakescope.models.clip import LAYERS, WIDTH
from fakescope.train import probe as probe_module
from fakescope.train.config import TrainConfig
from fakescope.train.probe import cell_weights, run_probe_training

SIGNAL_LAYER = 8  # read by both heads (aigen: 4, 6, 8, 10, 12; faceswap: every layer); every other layer is noise only
SIGNAL = 0.3  # shift of each dimension of that layer, in units of the noise: weak per dimension, plain over the layer
EPOCHS = 3
LINEAR, MLP, NOT_CLIP = "aigen-clip-b16.faces_flux", "faceswap-clip-b16.dfdc_ffpp", "faceswap-effnet-lite0.dfdc"


def synthetic_tokens(sample: Sample, view: str) -> np.ndarray:
    """Noise (fixed per file and view, wherever pytest puts the folder) with the label written into one layer."""
    rng = np.random.default_rng(
        zlib.crc32(f"{sample.info['dataset']}/{sample.path.parent.name}/{sample.path.name}|{view}".encode())
    )
    tokens = rng.standard_normal((LAYERS + 1, WIDTH)).astype(np.float32)
    tokens[SIGNAL_LAYER] += SIGNAL * (2 * sample.label - 1)
    return tokens


class FakeCache:
    """Stands in for `cached_inputs` (CLIP tokens); records every (sample, view) asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[Sample, str]] = []

    def __call__(self, model, samples, view: str = "clean", **_: object) -> np.ndarray:
        self.asked += [(s, view) for s in samples]
        return np.stack([synthetic_tokens(s, view) for s in samples]) if samples else np.zeros((0, LAYERS + 1, WIDTH))

    def folders(self, label: int | None = None) -> Counter:
        return Counter(s.info["dataset"] for s, _ in self.asked if label is None or s.label == label)


@pytest.fixture
def cache(monkeypatch) -> FakeCache:
    fake = FakeCache()
    monkeypatch.setattr(probe_module, "cached_inputs", fake)
    return fake


def make_folder(root: Path, n_real: int, n_fake: int, source: str) -> Path:
    """A labels.csv folder of tiny JPEGs (never read: the tokens are faked) with a `source` column."""
    for sub in ("real", "fake"):
        (root / sub).mkdir(parents=True)
    rows = ["file,label,source"]
    for label, n in (("REAL", n_real), ("FAKE", n_fake)):
        for i in range(n):
            name = f"{label.lower()}/{i}.jpg"
            Image.fromarray(np.full((8, 8, 3), 40 * (label == "FAKE") + i % 100, np.uint8)).save(root / name)
            rows.append(f"{name},{label},{source if label == 'FAKE' else 'camera'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("probe_data")
    return {
        "alpha": make_folder(base / "alpha", 60, 60, "GAN"),
        "beta": make_folder(base / "beta", 40, 40, "diffusion"),
        "gamma": make_folder(base / "gamma", 30, 30, "other"),
    }


def config(model: str, folders: dict[str, Path], tmp_path: Path, *, also: tuple[dict, ...] = (), **extra: object) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "probe-test",
            "model": model,
            "data": {"root": str(folders["alpha"]), "also": list(also), "val_fraction": 0.25, "calib_fraction": 0.2},
            "tracker": "none",
            "threads": 1,
            "run_dir": str(tmp_path / "run"),
            "out": str(tmp_path / "out"),
            **extra,
        }
    )


def sample(dataset: str, label: int, i: int) -> Sample:
    return Sample(
        path=Path(f"/d/{dataset}/{label}/{i}.jpg"), label=label, group=f"{dataset}{i}", split="train", info={"dataset": dataset}
    )


def test_cell_weights_give_every_dataset_and_class_the_same_total():
    counts = {("a", 0): 30, ("a", 1): 10, ("b", 0): 5, ("b", 1): 15}
    samples = [sample(d, label, i) for (d, label), n in counts.items() for i in range(n)]
    w = cell_weights(samples)
    assert w.shape == (len(samples),) and w.mean() == pytest.approx(1.0)
    totals = {cell: w[[(s.info["dataset"], s.label) == cell for s in samples]].sum() for cell in counts}
    assert all(t == pytest.approx(len(samples) / len(counts)) for t in totals.values())
    # within a cell every sample weighs the same; a cell's samples weigh inversely to its size
    first = {cell: w[[(s.info["dataset"], s.label) == cell for s in samples]] for cell in counts}
    assert all(np.allclose(v, v[0]) for v in first.values())
    assert first[("b", 0)][0] == pytest.approx(6 * first[("a", 0)][0])
    # one cell only: no reweighting
    np.testing.assert_allclose(cell_weights([sample("a", 1, i) for i in range(7)]), np.ones(7))


def test_linear_head_trains_reports_per_folder_and_exports(cache, folders, tmp_path):
    cfg = config(
        LINEAR,
        folders,
        tmp_path,
        also=({"root": str(folders["beta"])}, {"root": str(folders["gamma"]), "labels": ["REAL"]}),
        probe={"views": ["clean", "jpeg70"], "c_grid": [0.01, 0.1], "robustness": ["jpeg70"]},
    )
    card = run_probe_training(cfg)
    ds = "alpha+beta+gamma"
    metrics = card["metrics"]
    assert metrics[f"{ds}/val"]["auc"] > 0.9 and metrics[f"{ds}/val jpeg70"]["auc"] > 0.9
    # per folder when there are several (a folder with reals only: its real recall), with its subgroups inside
    assert metrics[f"{ds}/val alpha"]["auc"] > 0.9 and metrics[f"{ds}/val beta"]["auc"] > 0.9
    assert f"{ds}/val alpha source=GAN" in metrics and f"{ds}/val jpeg70 beta source=diffusion" in metrics
    gamma = {key: row for key, row in metrics.items() if " gamma" in key}
    assert set(gamma) == {f"{ds}/val gamma reals", f"{ds}/val jpeg70 gamma reals"}
    assert all("auc" not in row and 0.0 <= row["real_recall"] <= 1.0 for row in gamma.values())
    # the REAL-only source gave reals to every split and no fake anywhere
    assert cache.folders(label=0)["gamma"] > 0 and cache.folders(label=1)["gamma"] == 0
    assert {view for _, view in cache.asked} == {"clean", "jpeg70"}
    # the C was picked on calib, among the grid
    assert card["extra"]["chosen_c"] in (0.01, 0.1) and set(card["extra"]["calib_logloss_by_c"]) == {"0.01", "0.1"}
    assert card["extra"]["layers"] == [4, 6, 8, 10, 12]
    thresholds = card["thresholds"]
    assert 0.0 <= thresholds["real_below"] <= thresholds["fake_at_or_above"] <= 1.0 and card["temperature"] > 0
    # exported: fp16 weights whose sha256 is on the card, and they are the fitted head
    weights = tmp_path / "out" / "aigen_clip_b16.faces_flux.pt"
    assert sha256_file(weights) == card["sha256"]
    assert json.loads(weights.with_suffix(".json").read_text())["sha256"] == card["sha256"]
    assert json.loads((tmp_path / "run" / "card.json").read_text())["metrics"] == json.loads(json.dumps(metrics))
    assert (tmp_path / "run" / "report").is_dir()
    state = torch.load(weights, weights_only=True)
    assert set(state) == {"feat_mean", "feat_std", "head.weight", "head.bias"}
    model = create_model(LINEAR, pretrained=False)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    val = [s for s, view in cache.asked if view == "clean" and s.split == "val"]
    tokens = torch.from_numpy(np.stack([synthetic_tokens(s, "clean") for s in val]))
    with torch.no_grad():
        logits = model.classifier(model.cached_features(tokens)).reshape(-1).numpy()
    assert binary_metrics(np.array([s.label for s in val]), 1 / (1 + np.exp(-logits)))["auc"] > 0.9


def test_mlp_head_trains_for_the_given_epochs(cache, folders, tmp_path):
    cfg = config(MLP, folders, tmp_path, schedule={"epochs": EPOCHS}, batch_size=32, probe={})
    card = run_probe_training(cfg)
    assert card["metrics"]["alpha/val"]["auc"] > 0.9
    assert not any(key.startswith("alpha/val alpha") for key in card["metrics"])  # one folder: no per-folder section
    assert "alpha/val source=GAN" in card["metrics"]
    assert len(card["extra"]["calib_logloss_by_epoch"]) == EPOCHS and 1 <= card["extra"]["best_epoch"] <= EPOCHS
    assert card["extra"]["layers"] == list(range(LAYERS + 1))
    weights = tmp_path / "out" / "faceswap_clip_b16.dfdc_ffpp.pt"
    assert sha256_file(weights) == card["sha256"]
    state = torch.load(weights, weights_only=True)
    assert set(state) == {"feat_mean", "feat_std", "head.1.weight", "head.1.bias", "head.4.weight", "head.4.bias"}
    assert state["head.1.weight"].shape == (256, (LAYERS + 1) * WIDTH)
    assert {view for _, view in cache.asked} == {"clean"}


def test_a_probe_recipe_for_a_model_without_a_frozen_backbone_is_refused(cache, folders, tmp_path):
    cfg = config(NOT_CLIP, folders, tmp_path, probe={})
    with pytest.raises(FakescopeError, match=f"{NOT_CLIP}: a probe recipe needs a frozen-backbone model"):
        run_probe_training(cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run" / "card.json").exists()
