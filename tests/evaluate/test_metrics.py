import numpy as np
import pytest
from sklearn import metrics as skm

from fakescope.evaluate import binary_metrics, fit_temperature
from fakescope.evaluate.metrics import log_loss


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    m = binary_metrics(y, p)
    assert m["logloss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), rel=1e-9)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    pred = p >= 0.5
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["real_recall"] == pytest.approx(skm.recall_score(1 - y, ~pred))
    assert m["n"] == 500


def test_ece_by_hand():
    # bin [0.1, 0.2): p=0.1, y=0 -> |0.1-0| ; bin [0.9, 1.0]: p=0.9 twice, y=1,0 -> |0.9-0.5|
    m = binary_metrics([0, 1, 0], [0.1, 0.9, 0.9])
    assert m["ece"] == pytest.approx(0.1 / 3 + 0.4 * 2 / 3)
    assert binary_metrics([0, 1], [0.0, 1.0])["ece"] == pytest.approx(0.0)


def test_logloss_clips_confident_mistakes():
    assert log_loss([1], [0.0]) == pytest.approx(-np.log(1e-7))


def test_single_class_auc_is_nan_not_a_crash():
    assert np.isnan(binary_metrics([1, 1], [0.2, 0.9])["auc"])


def test_empty_input_is_rejected():
    with pytest.raises(ValueError):
        binary_metrics([], [])


def test_temperature_recovers_overconfidence_and_lowers_logloss():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    overconfident = true_logits * 3.0
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(3.0, rel=0.15)
    before = log_loss(y, 1 / (1 + np.exp(-overconfident)))
    after = log_loss(y, 1 / (1 + np.exp(-overconfident / t)))
    assert after < before - 0.05
