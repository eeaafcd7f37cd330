"""Face sequences: windows of one video's crops, in frame order, that carry the video's labels."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.data import Sample, SequenceSample
from fakescope.data.sequences import face_sequences
from fakescope.errors import FakescopeError

# Frame indices as the crop cache writes them: sampled every 3 frames, so 9 and 12 sit beside 10-ish names.
LENGTHS = {"alpha": 7, "beta": 3, "gamma": 12}
LABELS = {"alpha": 0, "beta": 1, "gamma": 0}
SPLITS = {"alpha": "train", "beta": "val", "gamma": "train"}


def _colour(video: str, position: int) -> tuple[int, int, int]:
    """A distinct flat colour per crop, so the read order can be checked pixel by pixel."""
    return (10 * position + 5, {"alpha": 40, "beta": 120, "gamma": 200}[video], 255 - 10 * position)


def _crop_cache(root: Path, indices: dict[str, list[int]] | None = None) -> list[Sample]:
    crops = []
    for video, n in LENGTHS.items():
        folder = root / "key" / video
        folder.mkdir(parents=True)
        for position, index in enumerate((indices or {}).get(video, [3 * i for i in range(n)])):
            path = folder / f"{index}.jpg"
            Image.new("RGB", (16, 16), _colour(video, position)).save(path, format="JPEG", quality=95)
            group = f"src-{video}" if LABELS[video] == 0 else "src-alpha"
            crops.append(Sample(path, LABELS[video], group, SPLITS[video], {"video": f"{video}.mp4"}))
    # Given shuffled, as a reader might list them: the order must come from the names.
    return [crops[i] for i in np.random.default_rng(0).permutation(len(crops))]


@pytest.fixture
def crops(tmp_path):
    return _crop_cache(tmp_path)


def _indices(sequence: SequenceSample) -> list[int]:
    return [int(p.stem) for p in sequence.frames]


def test_windows_start_every_stride_and_cover_every_crop(crops):
    sequences = face_sequences(crops, length=4, stride=3)
    assert [(s.video, s.start) for s in sequences] == [
        ("alpha", 0),
        ("alpha", 3),  # 3 + 4 = 7: ends at the last crop, no extra window
        ("beta", 0),
        ("gamma", 0),
        ("gamma", 3),
        ("gamma", 6),
        ("gamma", 8),  # 6 + 4 = 10 < 12: one more window ending at the last crop
    ]
    gamma = [s for s in sequences if s.video == "gamma"]
    assert _indices(gamma[0]) == [0, 3, 6, 9]
    assert _indices(gamma[1]) == [9, 12, 15, 18], "frame 12 after 9: numeric, not lexical order"
    assert _indices(gamma[-1]) == [24, 27, 30, 33]
    assert all(len(s.frames) == 4 for s in sequences if s.video != "beta")
    for video, n in LENGTHS.items():
        covered = {p for s in sequences if s.video == video for p in s.frames}
        assert len(covered) == n, f"every crop of {video} is in some sequence"


def test_short_track_gives_one_shorter_sequence(crops):
    beta = [s for s in face_sequences(crops, length=5, stride=2) if s.video == "beta"]
    assert len(beta) == 1
    assert beta[0].start == 0 and _indices(beta[0]) == [0, 3, 6]


def test_length_one_and_stride_larger_than_length(crops):
    singles = face_sequences(crops, length=1, stride=1)
    assert len(singles) == sum(LENGTHS.values())
    sparse = [s for s in face_sequences(crops, length=2, stride=5) if s.video == "gamma"]
    assert [s.start for s in sparse] == [0, 5, 10]  # 10 + 2 = 12 reaches the end
    alpha = [s for s in face_sequences(crops, length=2, stride=4) if s.video == "alpha"]
    assert [s.start for s in alpha] == [0, 4, 5]  # 4 + 2 = 6 < 7: last window 5..6


def test_sequences_inherit_label_group_split_and_info(crops):
    for sequence in face_sequences(crops, length=3, stride=3):
        assert sequence.label == LABELS[sequence.video]
        assert sequence.split == SPLITS[sequence.video]
        assert sequence.group == ("src-alpha" if sequence.video in ("alpha", "beta") else "src-gamma")
        assert sequence.info == {"video": f"{sequence.video}.mp4"}
        assert all(p.parent.name == sequence.video for p in sequence.frames)


def test_non_contiguous_indices_sort_numerically(tmp_path):
    crops = _crop_cache(tmp_path, {"alpha": [2, 9, 10, 11, 100, 21, 1], "gamma": list(range(0, 120, 10))})
    alpha = face_sequences(crops, length=7, stride=7)[0]
    assert _indices(alpha) == [1, 2, 9, 10, 11, 21, 100]


@pytest.mark.parametrize(("field", "value"), [("label", 1), ("split", "val"), ("group", "elsewhere")])
def test_a_folder_that_mixes_videos_is_refused(crops, field, value):
    odd = next(c for c in crops if c.path.parent.name == "gamma")
    mixed = [replace(odd, **{field: value}) if c is odd else c for c in crops]
    with pytest.raises(FakescopeError, match=f"gamma.*disagree on {field}"):
        face_sequences(mixed, length=4, stride=2)


@pytest.mark.parametrize(("length", "stride"), [(0, 1), (4, 0), (-2, 3)])
def test_bad_length_or_stride(crops, length, stride):
    with pytest.raises(FakescopeError, match="length and stride must be at least 1"):
        face_sequences(crops, length=length, stride=stride)


def test_file_names_must_be_frame_indices(tmp_path, crops):
    odd = tmp_path / "key" / "alpha" / "cover.jpg"
    with pytest.raises(FakescopeError, match="frame index"):
        face_sequences([*crops, Sample(odd, 0, "src-alpha", "train")], length=2, stride=1)


def test_no_crops_no_sequences():
    assert face_sequences([], length=3, stride=1) == []
