import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.data import (
    Sample,
    VideoSample,
    assign_splits,
    load_samples,
    read_class_folders,
    read_dfdc_metadata,
    read_labels_csv,
    split_groups,
    stratified_split_groups,
)
from fakescope.errors import FakescopeError
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


def groups_by_split(samples) -> tuple[set[str], set[str]]:
    return {s.group for s in samples if s.split == "train"}, {s.group for s in samples if s.split == "val"}


def assert_no_leak(samples) -> None:
    assert {s.split for s in samples} == {"train", "val"}
    train, val = groups_by_split(samples)
    assert train and val and not train & val


def write_image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def write_dfdc(root: Path, entries: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in entries:
        (root / name).write_bytes(b"")
    (root / "metadata.json").write_text(json.dumps(entries))
    return root


def fake_share(samples) -> float:
    return sum(s.label for s in samples) / len(samples)


def pairs_metadata(n_reals: int, fakes_per_real: int) -> dict:
    entries = {}
    for r in range(n_reals):
        entries[f"real{r:02d}.mp4"] = {"label": "REAL", "original": None}
        for f in range(fakes_per_real):
            entries[f"fake{r:02d}_{f}.mp4"] = {"label": "FAKE", "original": f"real{r:02d}.mp4"}
    return entries


def test_dfdc_faces_load_samples_keeps_its_split_and_no_original_straddles():
    samples = load_samples(shared("dfdc_faces"))
    assert len(samples) == 8000
    assert_no_leak(samples)
    declared = {s.path: s.split for s in read_labels_csv(shared("dfdc_faces"))}
    assert all(declared[s.path] == s.split for s in samples)


def test_ai_faces_without_split_column_is_split_per_file_keeping_the_class_ratio():
    samples = load_samples(shared("ai_faces"), val_fraction=0.15)
    assert len(samples) == 400
    assert all(s.group == s.path.relative_to(shared("ai_faces")).as_posix() for s in samples)
    assert_no_leak(samples)
    val = [s for s in samples if s.split == "val"]
    train = [s for s in samples if s.split == "train"]
    assert 0.13 < len(val) / len(samples) < 0.17
    assert abs(fake_share(val) - fake_share(train)) < 0.02
    assert load_samples(shared("ai_faces"), val_fraction=0.15) == samples


def test_labels_csv_without_split_is_split_by_original(tmp_path):
    rows = [f"real/{i}.jpg,REAL,src{i}.mp4" for i in range(20)] + [f"fake/{i}.jpg,FAKE,src{i}.mp4" for i in range(20)]
    (tmp_path / "labels.csv").write_text("file,label,original\n" + "\n".join(rows) + "\n")
    samples = load_samples(tmp_path, val_fraction=0.25, seed=1)
    assert_no_leak(samples)
    assert sum(s.split == "val" for s in samples) == 10


def test_declared_split_that_leaks_is_an_error(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label,original,split\na.jpg,REAL,x.mp4,train\nb.jpg,FAKE,x.mp4,val\n")
    with pytest.raises(FakescopeError, match=r"labels.csv: group 'x.mp4' is in both train and val"):
        load_samples(tmp_path)


def test_split_missing_on_some_rows_or_unknown_is_an_error(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label,split\na.jpg,REAL,val\nb.jpg,FAKE,\n")
    with pytest.raises(FakescopeError, match=r"labels.csv: 'b.jpg' has no split"):
        load_samples(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label,split\na.jpg,REAL,test\n")
    with pytest.raises(FakescopeError, match=r"labels.csv:2: split must be train or val, got 'test'"):
        load_samples(tmp_path)


def test_speaker_column_is_a_group_but_source_is_not(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label,speaker,source\na.wav,REAL,george,FFHQ\nb.wav,FAKE,,GAN\n")
    assert [s.group for s in read_labels_csv(tmp_path)] == ["george", "b.wav"]


def test_image_folders_any_case_nested_and_only_images(tmp_path):
    write_image(tmp_path / "REAL" / "a.jpg")
    write_image(tmp_path / "REAL" / "sub" / "b.PNG")
    write_image(tmp_path / "Fake" / "c.webp")
    write_image(tmp_path / "Fake" / ".hidden" / "d.jpg")
    (tmp_path / "Fake" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "other" / "e.jpg")
    samples = read_class_folders(tmp_path)
    assert [(s.path.relative_to(tmp_path).as_posix(), s.label) for s in samples] == [
        ("Fake/c.webp", 1),
        ("REAL/a.jpg", 0),
        ("REAL/sub/b.PNG", 0),
    ]
    assert [s.group for s in samples] == ["Fake/c.webp", "REAL/a.jpg", "REAL/sub/b.PNG"]


def test_image_folders_load_samples_splits_by_file_stratified(tmp_path):
    for i in range(30):
        write_image(tmp_path / "real" / f"r{i}.png", i)
    for i in range(10):
        write_image(tmp_path / "fake" / f"f{i}.jpg", i)
    samples = load_samples(tmp_path, val_fraction=0.2, seed=5)
    assert len(samples) == 40
    assert_no_leak(samples)
    val = [s for s in samples if s.split == "val"]
    assert (sum(s.label == 0 for s in val), sum(s.label == 1 for s in val)) == (6, 2)


def test_image_folders_labels_csv_takes_precedence(tmp_path):
    write_image(tmp_path / "real" / "a.jpg")
    write_image(tmp_path / "fake" / "b.jpg")
    (tmp_path / "labels.csv").write_text("file,label,group,split\nreal/a.jpg,REAL,alice,train\nfake/b.jpg,FAKE,bob,val\n")
    samples = load_samples(tmp_path)
    assert [(s.group, s.split) for s in samples] == [("alice", "train"), ("bob", "val")]


def test_unknown_layout_and_empty_image_folders_are_errors(tmp_path):
    with pytest.raises(FakescopeError, match="no such folder"):
        load_samples(tmp_path / "missing")
    with pytest.raises(FakescopeError, match="no labels.csv, metadata.json or real/ and fake/ folders"):
        load_samples(tmp_path)
    (tmp_path / "real").mkdir()
    with pytest.raises(FakescopeError, match="no files under real/ or fake/"):
        load_samples(tmp_path)


def test_dfdc_metadata_groups_fakes_with_their_original(tmp_path):
    root = write_dfdc(tmp_path, pairs_metadata(1, 2) | {"lone.mp4": {"label": "fake", "original": "gone.mp4", "split": "val"}})
    videos = {v.path.name: v for v in read_dfdc_metadata(root)}
    assert videos["real00.mp4"] == VideoSample(root / "real00.mp4", 0, "real00.mp4", None)
    assert videos["fake00_0.mp4"].group == videos["fake00_1.mp4"].group == "real00.mp4"
    assert (videos["lone.mp4"].label, videos["lone.mp4"].group, videos["lone.mp4"].split) == (1, "gone.mp4", "val")
    tagged = write_dfdc(tmp_path / "tagged", {"clip.mp4": {"label": "REAL", "dataset": "FF++ c40"}})
    assert read_dfdc_metadata(tagged)[0].dataset == "FF++ c40" and videos["real00.mp4"].dataset is None


def test_dfdc_layout_split_never_separates_a_real_from_its_fakes(tmp_path):
    root = write_dfdc(tmp_path, pairs_metadata(20, 3))
    videos = assign_splits(read_dfdc_metadata(root), 0.2, seed=7, source=root / "metadata.json")
    assert_no_leak(videos)
    split_of = {v.path.name: v.split for v in videos}
    assert all(split_of[f"fake{r:02d}_{f}.mp4"] == split_of[f"real{r:02d}.mp4"] for r in range(20) for f in range(3))
    assert sum(v.split == "val" for v in videos) == 4 * 4


def test_dfdc_metadata_that_says_train_everywhere_is_resplit(tmp_path):
    entries = pairs_metadata(10, 1)
    for entry in entries.values():
        entry["split"] = "train"
    root = write_dfdc(tmp_path, entries)
    videos = assign_splits(read_dfdc_metadata(root), 0.2, seed=7, source=root / "metadata.json")
    assert_no_leak(videos)


@pytest.mark.parametrize("folder", ["videos", "videos_more"])
def test_shared_video_metadata_parses_and_pairs_stay_together(folder):
    root = shared(folder)
    videos = read_dfdc_metadata(root)
    assert len(videos) == {"videos": 10, "videos_more": 24}[folder]
    split = assign_splits(videos, 0.3, seed=1, source=root / "metadata.json")
    train, val = groups_by_split(split)
    assert not train & val
    names = {v.path.name: v for v in split}
    meta = json.loads((root / "metadata.json").read_text())
    for name, entry in meta.items():
        if entry["label"] == "FAKE" and entry.get("original") in names:
            assert names[name].split == names[entry["original"]].split


def test_stratified_split_keeps_mixed_and_pure_groups_in_proportion():
    samples = [Sample(Path(f"p{g}_{k}"), k, f"pair{g}", "") for g in range(40) for k in (0, 1)]
    samples += [Sample(Path(f"r{g}"), 0, f"real{g}", "") for g in range(20)]
    train, val = stratified_split_groups(samples, 0.25, seed=0)
    assert len({s.group for s in val if s.group.startswith("pair")}) == 10
    assert len({s.group for s in val if s.group.startswith("real")}) == 5
    assert not {s.group for s in train} & {s.group for s in val}
    with pytest.raises(FakescopeError, match="val fraction"):
        stratified_split_groups(samples, 1.0, seed=0)


METADATA_ERRORS = [
    ('{"abc.mp4": {"label": "maybe"}}', r"metadata.json: 'abc.mp4': label must be REAL or FAKE, got 'maybe'"),
    ('{"abc.mp4": {"original": "x.mp4"}}', r"metadata.json: 'abc.mp4': missing key 'label'"),
    ('{\n "abc.mp4": {\n  "label": "REAL",\n    ]\n}', r"metadata.json: not valid JSON \(line 4 column 5\)"),
    (
        '{"abc.mp4": {"label": "REAL"}, "nothere.mp4": {"label": "FAKE"}}',
        r"metadata.json: 'nothere.mp4' listed but file not found",
    ),
    ('["abc.mp4"]', r"metadata.json: top level must be an object .*got list"),
    ('{"abc.mp4": "FAKE"}', r"metadata.json: 'abc.mp4': entry must be an object, got str"),
    ('{"abc.mp4": {"label": "FAKE", "split": "test"}}', r"metadata.json: 'abc.mp4': split must be train or val, got 'test'"),
    ('{"abc.mp4": {"label": "FAKE", "original": 3}}', r"metadata.json: 'abc.mp4': original must be a video file name or null"),
    ('{"abc.mp4": {"label": "FAKE", "dataset": ""}}', r"metadata.json: 'abc.mp4': dataset must be a name or null"),
    ("{}", r"metadata.json: lists no videos"),
]


@pytest.mark.parametrize(("text", "message"), METADATA_ERRORS)
def test_malformed_metadata_names_file_and_key(tmp_path, text, message):
    (tmp_path / "abc.mp4").write_bytes(b"")
    (tmp_path / "metadata.json").write_text(text)
    with pytest.raises(FakescopeError, match=message) as err:
        load_samples(tmp_path)
    assert str(tmp_path / "metadata.json") in str(err.value)
    assert "\n" not in str(err.value)
