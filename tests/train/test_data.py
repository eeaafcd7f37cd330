import pytest

from fakescope.errors import FakescopeError
from fakescope.train.data import read_labels_csv, split_groups
from tests.conftest import shared


def test_dfdc_faces_splits_never_share_a_source_video():
    samples = read_labels_csv(shared("dfdc_faces"))
    assert len(samples) == 8000
    train = {s.group for s in samples if s.split == "train"}
    val = {s.group for s in samples if s.split == "val"}
    assert train and val and not train & val
    assert sum(s.label for s in samples) == 4000


def test_calibration_holdout_is_split_by_group():
    samples = [s for s in read_labels_csv(shared("dfdc_faces")) if s.split == "train"]
    kept, held = split_groups(samples, 0.1, seed=3)
    assert len(kept) + len(held) == len(samples)
    assert not {s.group for s in kept} & {s.group for s in held}
    assert 0.08 < len(held) / len(samples) < 0.12
    assert split_groups(samples, 0.1, seed=3)[1] == held


def test_bad_label_names_file_and_line(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label\na.jpg,REAL\nb.jpg,MAYBE\n")
    with pytest.raises(FakescopeError, match=r"labels.csv:3: label must be REAL or FAKE"):
        read_labels_csv(tmp_path)


def test_missing_column_and_missing_file(tmp_path):
    with pytest.raises(FakescopeError, match="not found"):
        read_labels_csv(tmp_path)
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,REAL\n")
    with pytest.raises(FakescopeError, match="missing column 'file'"):
        read_labels_csv(tmp_path)
