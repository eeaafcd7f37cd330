import pytest

from fakescope.detect.fusion import fuse_detectors, media_score, soften, timeline, track_score
from fakescope.detect.verdict import Thresholds, agreed_thresholds


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
        "authentic",
        "authentic",
        "suspicious",
        "suspicious",
        "manipulated",
        "manipulated",
    ]
    with pytest.raises(ValueError):
        Thresholds(suspicious=0.8, manipulated=0.2)


def test_detectors_fuse_by_max_with_one_hot_weights():
    assert fuse_detectors([0.2, 0.7]) == (0.7, [0.0, 1.0])
    assert fuse_detectors([0.9, 0.1]) == (0.9, [1.0, 0.0])
    assert fuse_detectors([0.4, 0.4]) == (0.4, [1.0, 0.0])  # tie: the first (face) detector
    assert fuse_detectors([0.3]) == (0.3, [1.0])
    with pytest.raises(ValueError):
        fuse_detectors([])


def test_soften_divides_the_logit_by_the_temperature():
    assert soften(0.9, 2.0) == pytest.approx(0.75)  # logit 2.197 -> 1.099
    assert soften(0.1, 2.0) == pytest.approx(0.25)
    assert soften(0.5, 2.0) == pytest.approx(0.5)
    assert soften(0.8, 1.0) == pytest.approx(0.8)
    assert 0.5 < soften(1.0, 2.0) < 1.0 and 0.0 < soften(0.0, 2.0) < 0.5
    with pytest.raises(ValueError):
        soften(0.7, 0.0)


def test_card_thresholds_map_onto_verdict_bands():
    t = Thresholds.from_card({"real_below": 0.2, "fake_at_or_above": 0.9, "measured_fpr": 0.05})
    assert t == Thresholds(suspicious=0.2, manipulated=0.9)
    assert [t.verdict(s) for s in (0.19, 0.2, 0.89, 0.9)] == ["authentic", "suspicious", "suspicious", "manipulated"]


def test_cards_must_all_agree_for_their_bands_to_be_used():
    a = {"real_below": 0.2, "fake_at_or_above": 0.9}
    b = {"real_below": 0.3, "fake_at_or_above": 0.8}
    assert agreed_thresholds([a]) == Thresholds(0.2, 0.9)
    assert agreed_thresholds([a, dict(a, measured_fpr=0.04)]) == Thresholds(0.2, 0.9)
    assert agreed_thresholds([a, b]) == Thresholds()
    assert agreed_thresholds([a, None]) == Thresholds()
    assert agreed_thresholds([None]) == Thresholds()
    assert agreed_thresholds([]) == Thresholds()


def test_modalities_average_unless_one_is_confidently_fake():
    from fakescope.detect.fusion import ModalityWeights, fuse_modalities

    even = ModalityWeights()
    assert fuse_modalities({"video": 0.2, "audio": 0.6}, even) == (pytest.approx(0.4), {"video": 0.5, "audio": 0.5})
    skewed = ModalityWeights(video=0.75, audio=0.25)
    score, shares = fuse_modalities({"video": 0.2, "audio": 0.6}, skewed)
    assert score == pytest.approx(0.3) and shares == {"video": 0.75, "audio": 0.25}
    # A cloned voice over honest faces is not averaged away.
    assert fuse_modalities({"video": 0.1, "audio": 0.95}, skewed) == (0.95, {"video": 0.0, "audio": 1.0})
    assert fuse_modalities({"video": 0.92, "audio": 0.97}, even) == (0.97, {"video": 0.0, "audio": 1.0})
    # One modality scored: it carries the whole weight, even when configured at 0.
    assert fuse_modalities({"video": 0.3}, even) == (0.3, {"video": 1.0})
    assert fuse_modalities({"audio": 0.3}, ModalityWeights(video=1.0, audio=0.0)) == (0.3, {"audio": 1.0})
    assert fuse_modalities({"video": 0.3, "audio": 0.8}, ModalityWeights(video=1.0, audio=0.0)) == (
        0.3,
        {"video": 1.0, "audio": 0.0},
    )
    with pytest.raises(ValueError):
        fuse_modalities({}, even)
    with pytest.raises(ValueError):
        ModalityWeights(video=0.0, audio=0.0)
    with pytest.raises(ValueError):
        ModalityWeights(confident=0.4)
