"""The face benchmark's measurements on tiny inputs, and the script in its smoke mode (figures printed, never timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fakescope.faces import Face, HaarFaceDetector, YuFaceDetector
from fakescope.faces.bench import FaceDetectorRun, face_detector_rows, labelled_clips, run_face_detectors, sparse_rows
from tests.conftest import ROOT, SHARED_DATA, shared


def test_labelled_clips_are_the_34_with_labels() -> None:
    clips = labelled_clips(SHARED_DATA)
    assert len(clips) == 34 and all(path.exists() for path, _ in clips)
    assert sum(label for _, label in clips) == 23  # 7 + 16 FAKE


def test_face_detectors_run_on_the_same_frames() -> None:
    clip = shared("videos", "519.mp4")
    runs = run_face_detectors([clip], {"yuface": YuFaceDetector(), "haar": HaarFaceDetector()}, num_frames=4)
    assert runs["yuface"].frames == runs["haar"].frames == 4
    assert runs["yuface"].recall == 1.0 and len(runs["yuface"].seconds) == 1
    rows = {row["detector"]: row for row in face_detector_rows(runs, 32, reference="yuface")}
    assert rows["yuface"]["recall"] == 1.0 and rows["yuface"]["mean_s_per_frames"] > 0
    assert "median_iou_vs_yuface" not in rows["yuface"]
    assert 0.5 < rows["haar"]["median_iou_vs_yuface"] <= 1.0


def test_sparse_rows_replay_the_detections() -> None:
    def face(x: float) -> Face:
        return Face(box=(x, 0.0, x + 100.0, 100.0), score=0.9)

    steady = [[face(2.0 * i)] for i in range(9)]  # drifts slowly: interpolated exactly
    gone = [[face(0.0)], [], [face(0.0)]]  # a miss between two detections is not filled in
    run = FaceDetectorRun("scripted", faces={"steady": steady, "gone": gone})
    rows = {row["every"]: row for row in sparse_rows(run, (1, 2), (0.5,))}
    assert rows[1] == {
        "every": 1,
        "min_iou": 0.5,
        "detected_share": 1.0,
        "recall": 11 / 12,
        "filled": 0,
        "mean_iou": None,
        "p5_iou": None,
    }
    assert rows[2]["detected_share"] == 7 / 12  # 0, 2, 4, 6, 8 and 0, 2
    assert rows[2]["filled"] == 4 and rows[2]["mean_iou"] == 1.0
    assert rows[2]["recall"] == 1.0  # the filled-in frame of "gone" now has a face


def test_script_smoke_mode(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path), "FAKESCOPE_SHARED_DATA": str(SHARED_DATA)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_faces.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    ).stdout
    report = json.loads(out)
    assert {row["detector"] for row in report["detectors"]} == {"mtcnn", "yuface", "yuface-omp", "haar"}
    assert all(row["frames"] == 4 for row in report["detectors"])
    assert [(row["detector"], row["every"]) for row in report["end_to_end"]] == [("yuface", 2), ("yuface", 1), ("mtcnn", 1)]
    for row in report["end_to_end"]:
        assert row["status"] == "ok" and row["frames"] == 4 and row["duration"] == 1.0
        assert row["x_decode"] == row["total_s"] / row["decode_only_s"]
