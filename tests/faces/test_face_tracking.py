from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakescope.faces import Face, Track, filter_tracks, track_faces, tracking


def face_at(cx: float, cy: float, size: float = 100.0, score: float = 0.99) -> Face:
    half = size / 2
    return Face(box=(cx - half, cy - half, cx + half, cy + half), score=score)


def times(n: int) -> list[float]:
    return [i * 0.3 for i in range(n)]


@pytest.fixture(params=["hungarian", "greedy"], autouse=True)
def matcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run every test with scipy's assignment and with the greedy fallback."""
    if request.param == "greedy":
        monkeypatch.setattr(tracking, "linear_sum_assignment", None)
    elif tracking.linear_sum_assignment is None:
        pytest.skip("scipy not installed")
    yield request.param


def test_two_people_crossing_far_apart_stay_two_tracks() -> None:
    frames = []
    for i in range(10):
        a = face_at(300 + 40 * i, 100)
        b = face_at(660 - 40 * i, 450)
        frames.append([a, b] if i % 2 else [b, a])
    tracks = track_faces(frames, times(10))
    assert len(tracks) == 2
    for track in tracks:
        assert len(track) == 10
        assert len({round(f.center[1]) for f in track.faces}) == 1
    assert tracks[0].faces[0] is frames[0][0]


def test_moving_face_with_a_gap_of_two_frames_stays_one_track() -> None:
    frames = [[] if i in (4, 5) else [face_at(100 + 30 * i, 200)] for i in range(10)]
    tracks = track_faces(frames, times(10))
    assert len(tracks) == 1
    assert tracks[0].frame_indices == [0, 1, 2, 3, 6, 7, 8, 9]
    assert tracks[0].first_timestamp == 0.0
    assert tracks[0].last_timestamp == pytest.approx(2.7)


def test_zooming_face_matches_by_centre_distance() -> None:
    frames = [[face_at(300, 300, 60)], [face_at(310, 300, 180)], [face_at(320, 305, 60)]]
    tracks = track_faces(frames, times(3))
    assert len(tracks) == 1


def test_long_absence_closes_the_track() -> None:
    frames = [[face_at(200, 200)], *([[]] * 5), [face_at(200, 200)]]
    tracks = track_faces(frames, times(7), max_missed=4)
    assert [t.frame_indices for t in tracks] == [[0], [6]]


def test_two_faces_of_one_frame_never_share_a_track() -> None:
    frames = [[face_at(200, 200)], [face_at(200, 200), face_at(205, 205)]]
    tracks = track_faces(frames, times(2))
    assert len(tracks) == 2
    assert all(len(set(t.frame_indices)) == len(t) for t in tracks)


def test_one_frame_false_positive_is_filtered() -> None:
    frames = [[face_at(400, 300)] for _ in range(10)]
    frames[5] = [face_at(400, 300), face_at(50, 50, 40, 0.91)]
    tracks = track_faces(frames, times(10))
    assert len(tracks) == 2
    kept = filter_tracks(tracks)
    assert len(kept) == 1
    assert len(kept[0]) == 10
    assert kept[0].track_id == 0


def test_filter_renumbers_by_first_appearance() -> None:
    frames: list[list[Face]] = [[face_at(50, 50, 40)]]
    frames += [[face_at(300, 300)] for _ in range(3)]
    frames += [[face_at(300, 300), face_at(800, 300)] for _ in range(6)]
    tracks = track_faces(frames, times(10))
    assert [(t.track_id, len(t)) for t in tracks] == [(0, 1), (1, 9), (2, 6)]
    kept = filter_tracks(tracks)
    assert [(t.track_id, t.first_frame, len(t)) for t in kept] == [(0, 1, 9), (1, 4, 6)]
    assert [t.track_id for t in tracks] == [0, 1, 2]


def test_filter_drops_short_tracks_relative_to_the_longest() -> None:
    tracks = [
        Track(0, [tracking.Detection(i, float(i), face_at(100, 100)) for i in range(20)]),
        Track(1, [tracking.Detection(i, float(i), face_at(600, 100)) for i in range(4)]),
    ]
    assert [len(t) for t in filter_tracks(tracks)] == [20]
    assert [len(t) for t in filter_tracks(tracks, min_fraction=0.2)] == [20, 4]


def test_filter_keeps_the_longest_when_everything_would_go() -> None:
    frames = [[face_at(100, 100)], [face_at(600, 100)], []]
    kept = filter_tracks(track_faces(frames, times(3)))
    assert len(kept) == 1
    assert kept[0].track_id == 0
    assert filter_tracks([]) == []


def test_track_summary() -> None:
    frames = [[face_at(100, 100, score=0.9)], [face_at(110, 100, score=0.7)]]
    (track,) = track_faces(frames, [1.0, 2.0])
    assert track.mean_box == pytest.approx((55.0, 50.0, 155.0, 150.0))
    assert track.mean_score == pytest.approx(0.8)


def test_timestamps_must_match_frames() -> None:
    with pytest.raises(ValueError):
        track_faces([[], []], [0.0])


def test_fast_motion_matches_by_centre_distance() -> None:
    frames = [[face_at(100 + 70 * i, 300)] for i in range(6)]
    assert len(track_faces(frames, times(6))) == 1
    assert len(track_faces(frames, times(6), max_center_distance=0.5)) == 6


def test_a_large_false_box_does_not_capture_the_track() -> None:
    frames: list[list[Face]] = [[face_at(400, 380)] for _ in range(7)]
    frames.append([Face(box=(0.0, 0.0, 470.0, 500.0), score=0.98)])
    frames += [[]] * 3
    frames += [[face_at(410, 385)] for _ in range(5)]
    kept = filter_tracks(track_faces(frames, times(len(frames))))
    assert [t.frame_indices for t in kept] == [[0, 1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15]]
