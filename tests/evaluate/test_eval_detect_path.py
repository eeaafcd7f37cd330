"""`fakescope eval` on image folders scores through the detect path by default, `--crops` the model input alone.

Users saw eval report a better figure than `fakescope detect` gave on the same files because eval
fed each file straight into the model: these pin that the default is the Detector's score.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.constants import DEFAULT_IMAGE_MODEL, DEFAULT_MODEL
from fakescope.detect import Detector
from fakescope.errors import FakescopeError
from fakescope.evaluate.runner import CROPS_LEVEL, PICTURE_LEVEL, evaluate_dataset, score_model_input, score_pictures
from fakescope.evaluate.submission import UNSCORED
from tests.conftest import shared

runner = CliRunner()


def _copy_folder(root: Path, source: str, per_class: int) -> Path:
    """`per_class` real and fake pictures of a shared data set in the real/ + fake/ layout."""
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for src in sorted(shared(source, label).glob("*.jpg"))[:per_class]:
            shutil.copy(src, root / label / src.name)
    return root


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return _copy_folder(tmp_path_factory.mktemp("faces"), "dfdc_faces", 3)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    return _copy_folder(tmp_path_factory.mktemp("pictures"), "ai_faces", 3)


def test_face_model_scores_are_the_detectors_and_perturbed_files_are_detected_as_png(faces, monkeypatch):
    seen: list[Path] = []
    detect = Detector.detect

    def spy(self: Detector, path: str | Path):
        seen.append(Path(path))
        return detect(self, path)

    monkeypatch.setattr(Detector, "detect", spy)
    scores = score_pictures(faces, DEFAULT_MODEL, split="all", perturbations=["jpeg70"])
    monkeypatch.undo()

    assert set(scores.sections) == {PICTURE_LEVEL, f"{PICTURE_LEVEL}, jpeg70"}
    labels, probs = scores.sections[PICTURE_LEVEL]
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1] and not scores.unscored
    assert probs.tolist() == [r.score for r in scores.results] and all(r.status == "ok" for r in scores.results)
    originals = {p for p in faces.rglob("*.jpg")}
    assert set(seen[:6]) == originals
    assert len(seen) == 12 and all(p.suffix == ".png" and p not in originals for p in seen[6:])
    assert not np.allclose(scores.sections[f"{PICTURE_LEVEL}, jpeg70"][1], probs)

    same = Detector.from_pretrained(DEFAULT_MODEL, image_model=None, audio_model=None).detect(scores.results[0].file)
    assert same.score == pytest.approx(probs[0])
    crops = score_model_input(faces, DEFAULT_MODEL, split="all").sections[CROPS_LEVEL]
    assert np.array_equal(crops[0], labels) and not np.allclose(crops[1], probs), "the detect path is not the crop path"


def test_image_model_is_reported_alone_and_fused_with_the_face_model(pictures):
    scores = score_pictures(pictures, DEFAULT_IMAGE_MODEL, split="all", perturbations=["resize0.5"])
    alone, fused = f"{PICTURE_LEVEL}, {DEFAULT_IMAGE_MODEL} alone", f"{PICTURE_LEVEL}, fused"
    assert set(scores.sections) == {alone, fused, f"{alone}, resize0.5", f"{fused}, resize0.5"}
    for i, result in enumerate(scores.results):
        by_name = {d.name: d.score for d in result.detectors}
        assert set(by_name) == {DEFAULT_MODEL, DEFAULT_IMAGE_MODEL}
        assert scores.sections[alone][1][i] == by_name[DEFAULT_IMAGE_MODEL]
        assert scores.sections[fused][1][i] == result.score
    assert not np.allclose(scores.sections[alone][1], scores.sections[fused][1])


def test_pictures_the_detector_cannot_score_count_as_unscored_and_are_listed(faces, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(faces, root)
    Image.new("RGB", (96, 96), (128, 128, 128)).save(root / "real" / "flat.png")
    scores = score_pictures(root, DEFAULT_MODEL, split="all", perturbations=["blur1"], face_detector="haar")
    flat = [i for i, r in enumerate(scores.results) if Path(r.file).name == "flat.png"]
    assert len(flat) == 1 and scores.sections[PICTURE_LEVEL][1][flat[0]] == UNSCORED
    assert scores.sections[f"{PICTURE_LEVEL}, blur1"][1][flat[0]] == UNSCORED
    assert [u.split(":")[0] for u in scores.unscored] == ["flat.png", "flat.png (blur1)"]
    assert all(r.model_versions["faces"].startswith("haar") for r in scores.results), "--face-detector is applied"


def test_crops_flag_gives_the_model_input_sections(faces, tmp_path):
    args = ["eval", str(faces), "--split", "all", "--crops", "--perturb", "jpeg70", "--out", str(tmp_path / "r"), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert set(summary["sections"]) == {CROPS_LEVEL, f"{CROPS_LEVEL}, jpeg70"}
    assert summary["sections"][CROPS_LEVEL]["metrics"]["n"] == 6
    assert summary["meta"]["scored"].startswith("crops (model input only)")


def test_both_paths_score_the_same_val_split(tmp_path):
    root = _copy_folder(tmp_path / "data", "dfdc_faces", 10)
    detected = score_pictures(root, DEFAULT_MODEL, split="val").sections[PICTURE_LEVEL][0]
    cropped = score_model_input(root, DEFAULT_MODEL, split="val").sections[CROPS_LEVEL][0]
    assert 0 < len(detected) < 20 and np.array_equal(detected, cropped)


def test_crops_is_refused_on_video_folders_and_audio_models(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "metadata.json").write_text(json.dumps({"a.mp4": {"label": "REAL"}}))
    res = runner.invoke(app, ["eval", str(videos), "--crops", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "--crops applies to image and face-crop folders" in res.output
    with pytest.raises(FakescopeError, match="is an audio model"):
        evaluate_dataset(tmp_path, "audio-bigru-attn.speech", out_dir=tmp_path / "r", crops=True)
