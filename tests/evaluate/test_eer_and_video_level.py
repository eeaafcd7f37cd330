import numpy as np
import pytest
from sklearn import metrics as skm

from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics, equal_error_rate, expected_calibration_error, fit_temperature, video_level
from fakescope.evaluate.metrics import log_loss

EXISTING_KEYS = {"n", "logloss", "auc", "accuracy", "precision", "recall", "real_recall", "ece"}


def brute_force_eer(y: np.ndarray, p: np.ndarray) -> float:
    """ROC points by hand, each segment sampled densely, the point where FPR and FNR meet."""
    cuts = np.concatenate([[np.inf], np.unique(p)[::-1]])
    fpr = np.array([np.mean(p[y == 0] >= t) for t in cuts])
    fnr = np.array([1 - np.mean(p[y == 1] >= t) for t in cuts])
    s = np.linspace(0, 1, 2001)[:, None]
    dense_fpr = (fpr[:-1] + s * (fpr[1:] - fpr[:-1])).ravel()
    dense_fnr = (fnr[:-1] + s * (fnr[1:] - fnr[:-1])).ravel()
    best = np.argmin(np.abs(dense_fpr - dense_fnr))
    return float((dense_fpr[best] + dense_fnr[best]) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 150)
    p = np.round(np.clip(0.25 * y + rng.random(150) * 0.75, 0, 1), 2)  # rounding makes ties
    assert equal_error_rate(y, p) == pytest.approx(brute_force_eer(y, p), abs=1e-4)


def test_eer_known_cases():
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert equal_error_rate([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2]) == 1.0
    # one tied pair: the ROC is the diagonal, crossed at its midpoint
    assert equal_error_rate([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    assert equal_error_rate(rng.integers(0, 2, 20000), rng.random(20000)) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(equal_error_rate([1, 1, 1], [0.1, 0.5, 0.9]))


@pytest.mark.parametrize("seed", [4, 5])
def test_binary_metrics_match_sklearn_and_keep_keys(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    p = rng.beta(2 + 3 * y, 5 - 3 * y)
    m = binary_metrics(y, p, threshold=0.4)
    pred = p >= 0.4
    assert EXISTING_KEYS | {"eer"} == set(m)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["logloss"] == pytest.approx(skm.log_loss(y, p), rel=1e-9)
    assert m["eer"] == pytest.approx(brute_force_eer(y, p), abs=1e-4)


def test_logloss_matches_sklearn_including_clipping():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.0, 1.0, 0.3, 0.6, 0.999999999])
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), rel=1e-12)


def test_eer_is_nan_for_one_class_in_binary_metrics():
    m = binary_metrics([0, 0, 0], [0.1, 0.4, 0.7])
    assert np.isnan(m["eer"]) and np.isnan(m["auc"])


def test_overconfidence_raises_ece_and_temperature_brings_it_down():
    rng = np.random.default_rng(6)
    logits = rng.normal(0, 1.5, 8000)
    y = (rng.random(8000) < 1 / (1 + np.exp(-logits))).astype(int)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    calibrated = expected_calibration_error(y, sigmoid(logits))
    over = 3.0 * logits
    before = expected_calibration_error(y[4000:], sigmoid(over[4000:]))
    assert before > calibrated + 0.05
    t = fit_temperature(over[:4000], y[:4000])  # fitted on one half, measured on the other
    after = expected_calibration_error(y[4000:], sigmoid(over[4000:] / t))
    assert after < before / 2


def test_video_level_aggregates_in_first_appearance_order():
    labels = [1, 0, 1, 0, 1]
    probs = [0.9, 0.2, 0.5, 0.4, 0.7]
    groups = ["b.mp4", "a.mp4", "b.mp4", "a.mp4", "b.mp4"]
    y, p, names = video_level(labels, probs, groups)
    assert names == ["b.mp4", "a.mp4"]
    assert y.tolist() == [1, 0]
    assert p == pytest.approx([0.7, 0.3])
    assert video_level(labels, probs, groups, reduce="max")[1] == pytest.approx([0.9, 0.4])
    assert video_level(labels, probs, groups, reduce="median")[1] == pytest.approx([0.7, 0.3])
    assert video_level(labels, probs, groups, reduce=np.min)[1] == pytest.approx([0.5, 0.2])


def test_video_level_rejects_mixed_labels_and_bad_input():
    with pytest.raises(FakescopeError, match="clip_7"):
        video_level([0, 1, 0], [0.1, 0.2, 0.3], ["clip_7", "clip_7", "clip_8"])
    with pytest.raises(FakescopeError, match="reduce"):
        video_level([0], [0.1], ["a"], reduce="mode")
    with pytest.raises(FakescopeError, match="length"):
        video_level([0, 1], [0.1], ["a", "b"])
