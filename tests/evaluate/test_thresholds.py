import numpy as np
import pytest

from fakescope.errors import FakescopeError
from fakescope.evaluate import threshold_for_fnr, threshold_for_fpr, verdict_thresholds


def fpr_at(y, p, t):
    return float(np.mean(p[y == 0] >= t))


def fnr_at(y, p, t):
    return float(np.mean(p[y == 1] < t))


def scored(seed: int, n: int = 300, *, signal: float = 0.3, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(signal * y + rng.random(n) * (1 - signal), 0, 1)
    return y, (np.round(p, decimals) if decimals is not None else p)


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, None), (2, 1), (3, 2)])
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_fpr_threshold_meets_target_and_is_the_smallest(seed, decimals, target):
    y, p = scored(seed, decimals=decimals)
    t = threshold_for_fpr(y, p, target)
    assert fpr_at(y, p, t) <= target
    assert fpr_at(y, p, np.nextafter(t, -np.inf)) > target


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, None), (2, 1), (3, 2)])
@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.2, 0.5])
def test_fnr_threshold_meets_target_and_is_the_largest(seed, decimals, target):
    y, p = scored(seed, decimals=decimals)
    t = threshold_for_fnr(y, p, target)
    assert fnr_at(y, p, t) <= target
    assert fnr_at(y, p, np.nextafter(t, np.inf)) > target


def test_known_small_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    # 1 of 4 reals may be flagged: the cut must sit just above the 2nd-highest real (0.3)
    assert threshold_for_fpr(y, p, 0.25) == np.nextafter(0.3, 1)
    assert threshold_for_fpr(y, p, 0.0) == np.nextafter(0.6, 1)
    # 1 of 4 fakes may fall below: the cut is the 2nd-lowest fake (0.7)
    assert threshold_for_fnr(y, p, 0.25) == 0.7
    assert threshold_for_fnr(y, p, 0.0) == 0.4


@pytest.mark.parametrize("seed,signal", [(0, 0.0), (1, 0.3), (2, 0.7), (3, 0.95)])
@pytest.mark.parametrize("fpr,fnr", [(0.05, 0.05), (0.01, 0.2), (0.3, 0.0)])
def test_verdict_thresholds_ordered_and_on_target(seed, signal, fpr, fnr):
    y, p = scored(seed, signal=signal)
    v = verdict_thresholds(y, p, fpr=fpr, fnr=fnr)
    assert v["real_below"] <= v["fake_at_or_above"]
    assert v["measured_fpr"] <= fpr and v["measured_fnr"] <= fnr
    assert v["measured_fpr"] == fpr_at(y, p, v["fake_at_or_above"])
    assert v["measured_fnr"] == fnr_at(y, p, v["real_below"])
    assert (v["fpr_target"], v["fnr_target"]) == (fpr, fnr)


def test_separable_scores_collapse_the_band_and_uninformative_ones_widen_it():
    # fakes all above reals: the FNR cut lands above the FPR cut, so there is nothing to call suspicious
    y, p = scored(0, n=2000, signal=0.95)
    v = verdict_thresholds(y, p)
    assert threshold_for_fnr(y, p, 0.05) > threshold_for_fpr(y, p, 0.05)
    assert v["real_below"] == v["fake_at_or_above"] == threshold_for_fpr(y, p, 0.05)
    assert v["measured_fpr"] <= 0.05 and v["measured_fnr"] <= 0.05
    # scores unrelated to labels: only the extremes can be trusted, almost everything is suspicious
    y, p = scored(1, n=2000, signal=0.0)
    v = verdict_thresholds(y, p)
    assert v["real_below"] < 0.1 and v["fake_at_or_above"] > 0.9


def test_saturated_real_scores_keep_the_cut_inside_0_1():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.2, 1.0, 1.0, 0.9, 1.0])
    assert threshold_for_fpr(y, p, 0.05) == 1.0
    v = verdict_thresholds(y, p)
    assert v["fake_at_or_above"] == 1.0 and v["measured_fpr"] == pytest.approx(2 / 3)
    assert 0.0 <= v["real_below"] <= v["fake_at_or_above"] <= 1.0


def test_bad_input_is_one_clear_error():
    with pytest.raises(FakescopeError, match="REAL"):
        threshold_for_fpr([1, 1], [0.2, 0.9], 0.05)
    with pytest.raises(FakescopeError, match="FAKE"):
        threshold_for_fnr([0, 0], [0.2, 0.9], 0.05)
    with pytest.raises(FakescopeError, match="fpr"):
        threshold_for_fpr([0, 1], [0.2, 0.9], 1.0)
    with pytest.raises(FakescopeError, match="length"):
        verdict_thresholds([0, 1, 1], [0.2, 0.9])
