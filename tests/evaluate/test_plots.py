import struct

import numpy as np
import pytest

from fakescope.errors import FakescopeError
from fakescope.evaluate import confusion_png, pr_curve_png, reliability_png, roc_curve_png, training_curves_png


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    return y, np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)


def test_each_plot_writes_a_small_png_and_closes_its_figure(tmp_path, scores):
    import matplotlib.pyplot as plt

    y, p = scores
    written = [
        roc_curve_png(y, p, tmp_path / "roc.png", "frame level"),
        pr_curve_png(y, p, tmp_path / "pr.png"),
        reliability_png(y, p, tmp_path / "rel.png", bins=5),
        confusion_png(y, p, tmp_path / "sub" / "cm.png", threshold=0.4),
    ]
    assert [w.name for w in written] == ["roc.png", "pr.png", "rel.png", "cm.png"]
    for path in written:
        assert png_size(path) == (450, 400)
    assert plt.get_fignums() == []
    assert plt.get_backend().lower() == "agg"


def test_training_curves_with_and_without_calib(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 0.7 / e,
            "val": {"logloss": 0.6 / e, "auc": 0.6 + 0.1 * e},
            "calib": {"logloss": 0.65 / e, "auc": float("nan") if e == 1 else 0.7},
        }
        for e in (1, 2, 3)
    ]
    path = training_curves_png(history, tmp_path / "curves.png")
    assert png_size(path) == (900, 400)
    no_calib = [{k: v for k, v in row.items() if k != "calib"} for row in history]
    assert training_curves_png(no_calib, tmp_path / "curves2.png").stat().st_size > 1000


def test_plot_input_errors(tmp_path):
    with pytest.raises(FakescopeError, match="both"):
        roc_curve_png([1, 1], [0.2, 0.3], tmp_path / "x.png")
    with pytest.raises(FakescopeError, match="empty history"):
        training_curves_png([], tmp_path / "x.png")
    with pytest.raises(FakescopeError, match="train_loss"):
        training_curves_png([{"epoch": 1}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
