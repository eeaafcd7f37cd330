import pytest

from fakescope.detect.fusion import media_score, timeline, track_score
from fakescope.detect.verdict import Thresholds


def test_track_score_is_mean_of_top_half():
    assert track_score([0.1, 0.9, 0.8, 0.2]) == pytest.approx(0.85)
    assert track_score([0.3]) == pytest.approx(0.3)
    assert track_score([0.1, 0.2, 0.9], top_fraction=1.0) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        track_score([])


def test_most_suspicious_identity_drives_the_video():
    assert media_score([0.1, 0.7, 0.3]) == 0.7
    with pytest.raises(ValueError):
        media_score([])


def test_timeline_bins_per_second_with_max_score():
    bins = timeline([0.1, 0.6, 1.2, 3.5], [0.2, 0.4, 0.9, 0.1], duration=4.0)
    assert bins == [(0.0, 1.0, 0.4), (1.0, 2.0, 0.9), (3.0, 4.0, 0.1)]


def test_verdict_thresholds():
    t = Thresholds(suspicious=0.3, manipulated=0.7)
    assert [t.verdict(s) for s in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [
        "authentic", "authentic", "suspicious", "suspicious", "manipulated", "manipulated"]
    with pytest.raises(ValueError):
        Thresholds(suspicious=0.8, manipulated=0.2)
