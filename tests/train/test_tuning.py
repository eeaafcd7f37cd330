"""Light tuning (train.tuning): the head and the model's own copy of the tower's last block train together from
cached tokens and hidden states, the shared tower never moves, the best calib epoch is kept, and a tuned recipe
runs end to end (caches faked, a random-weight tower whose first blocks pass the state through)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import sigmoid
from fakescope.models import create_model
from fakescope.models.clip import LAYERS, TOKENS, WIDTH
from fakescope.train import probe as probe_module
from fakescope.train import tuning
from fakescope.train.config import TrainConfig, load_config
from fakescope.train.probe import Fit, head_logits, run_probe_training
from fakescope.train.tuning import fit_tuned, tuned_logits
from tests.train.test_probe import FakeCache, config, make_folder

TUNED, FROZEN = "faceswap-clip-b16.dfdc_ffpp_tuned", "faceswap-clip-b16.dfdc_ffpp"
RECIPE = Path("configs/faceswap-clip-b16-dfdc_ffpp-tuned.yaml")


def synthetic_hidden(key: str, label: int) -> np.ndarray:
    """Noise fixed per file, with the label written into the class token's first dimensions."""
    hidden = np.random.default_rng(zlib.crc32(key.encode())).standard_normal((TOKENS, WIDTH)).astype(np.float16)
    hidden[0, :64] += 2 * label - 1
    return hidden


def side(n: int, seed: int) -> Fit:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    hidden = np.stack([synthetic_hidden(f"{seed}/{i}", label) for i, label in enumerate(y)])
    return Fit(rng.standard_normal((n, LAYERS + 1, WIDTH)).astype(np.float32), y, np.ones(n), hidden)


def tuning_cfg(**extra: object) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "tune",
            "model": TUNED,
            "data": {"root": "unused"},
            "probe": {"tune_blocks": 1, "tune_lr": 1e-4},
            "schedule": {"epochs": 3},
            "batch_size": 8,
            "threads": 1,
            "tracker": "none",
            **extra,
        }
    )


def test_tuning_trains_the_head_and_its_own_block_and_never_the_tower(random_clip_tower):
    model = create_model(TUNED, pretrained=False)
    train, calib = side(16, 1), side(12, 2)
    model.fit_standardisation(train.x)
    stats = model.feat_mean.clone(), model.feat_std.clone()
    before_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    tower_before = {k: v.clone() for k, v in random_clip_tower.state_dict().items()}
    choice = fit_tuned(model, train, calib, tuning_cfg())
    assert all(torch.equal(v, tower_before[k]) for k, v in random_clip_tower.state_dict().items()), "the shared tower moved"
    torch.testing.assert_close((model.feat_mean, model.feat_std), stats, rtol=0, atol=0)
    assert any(not torch.equal(v, before_head[k]) for k, v in model.head.state_dict().items())
    started = random_clip_tower.vision_model.encoder.layers[LAYERS - 1].state_dict()
    moved = {k: (v - started[k]).abs().max().item() for k, v in model.blocks[0].state_dict().items()}
    assert max(moved.values()) > 0, "the block did not train"
    assert max(moved.values()) < 0.05, "it started from the tower's block and moves at tune_lr"
    # the kept epoch is the best on calib, and it is what the model now scores
    history = choice["calib_logloss_by_epoch"]
    assert len(history) == 3 and choice["best_epoch"] == int(np.argmin(history)) + 1
    assert choice["tuned_blocks"] == 1 and choice["tune_lr"] == 1e-4
    loss = binary_metrics(calib.y, sigmoid(tuned_logits(model, calib.x, calib.hidden)))["logloss"]
    assert loss == pytest.approx(min(history), abs=1e-4)
    with pytest.raises(FakescopeError, match="scores cached hidden states too"):
        head_logits(model, calib.x)


def test_a_tuned_recipe_trains_scores_val_through_the_block_and_exports_it(random_clip_tower, monkeypatch, tmp_path):
    root = make_folder(tmp_path / "alpha", 50, 50, "GAN")
    cache = FakeCache()
    asked: list[tuple[int, str, int]] = []

    def fake_hidden(model, samples, view="clean", **_: object) -> np.ndarray:
        asked.append((len(samples), view, model.frozen_blocks))
        return np.stack([synthetic_hidden(f"{s.path.parent.name}/{s.path.name}", s.label) for s in samples])

    monkeypatch.setattr(probe_module, "cached_inputs", cache)
    monkeypatch.setattr(tuning, "cached_hidden", fake_hidden)
    cfg = config(TUNED, {"alpha": root}, tmp_path, schedule={"epochs": 2}, batch_size=32, probe={"tune_blocks": 1})
    card = run_probe_training(cfg)
    assert card["metrics"]["alpha/val"]["auc"] > 0.9
    assert card["extra"]["tuned_blocks"] == 1 and len(card["extra"]["calib_logloss_by_epoch"]) == 2
    # train, calib and val, each read once, at the depth the model's block starts from
    assert len(asked) == 3 and sum(n for n, _, _ in asked) == 100
    assert {(view, blocks) for _, view, blocks in asked} == {("clean", LAYERS - 1)}
    state = torch.load(tmp_path / "out" / "faceswap_clip_b16.dfdc_ffpp_tuned.pt", weights_only=True)
    assert "blocks.0.mlp.fc1.weight" in state and state["head.1.weight"].shape == (256, (LAYERS + 1) * WIDTH)


def test_tune_blocks_must_match_the_model(monkeypatch, tmp_path):
    cache = FakeCache()
    monkeypatch.setattr(probe_module, "cached_inputs", cache)
    root = make_folder(tmp_path / "alpha", 10, 10, "GAN")
    with pytest.raises(FakescopeError, match=f"probe.tune_blocks is 1 but {FROZEN} tunes 0 blocks"):
        run_probe_training(config(FROZEN, {"alpha": root}, tmp_path, probe={"tune_blocks": 1}))
    with pytest.raises(FakescopeError, match=f"probe.tune_blocks is 0 but {TUNED} tunes 1 blocks"):
        run_probe_training(config(TUNED, {"alpha": root}, tmp_path, probe={}))
    assert not cache.asked, "refused before any token is read"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("probe.tune_blocks=3", "probe.tune_blocks: Input should be less than or equal to 2"),
        ("probe.tune_lr=0", "probe.tune_lr: Input should be greater than 0"),
        ("probe={tune_lr: 1.0e-4}", "probe: tune_lr is set but tune_blocks is 0: nothing is tuned"),
    ],
)
def test_bad_tuning_settings_are_one_line_errors(override, message):
    with pytest.raises(FakescopeError, match=message):
        load_config(RECIPE, [override])


def test_the_tuned_recipe_keeps_the_frozen_recipes_data_and_seed():
    tuned, frozen = load_config(RECIPE), load_config(Path("configs/faceswap-clip-b16-dfdc_ffpp.yaml"))
    assert tuned.model == TUNED and tuned.probe is not None and tuned.probe.tune_blocks == 1
    assert tuned.data == frozen.data and tuned.seed == frozen.seed  # the same val files: the cards compare
