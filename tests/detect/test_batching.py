"""Dynamic batching: concurrent analyses share forwards, each caller gets its own rows, a lone call never waits."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from fakescope.detect.batching import DynamicBatcher, analysis_of

LONG_WAIT_MS = 10_000.0  # a window no test may sit through: reaching it would mean a call waited for nothing


class RecordingModel:
    """prob = row sum, so every caller can check that it got its own rows back."""

    def __init__(self, fail: bool = False) -> None:
        self.batch_sizes: list[int] = []
        self.fail = fail
        self.pretrained_cfg = "cfg"

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.batch_sizes.append(len(x))
        if self.fail:
            raise RuntimeError("model exploded")
        return {"prob": x.sum(dim=(1, 2, 3)), "logits": -x.sum(dim=(1, 2, 3))}


def run_analyses(batcher: DynamicBatcher, inputs: list[torch.Tensor]) -> list[object]:
    """One thread per analysis, all opened before any calls (as `Detector.detect_concurrently` does)."""
    out: list[object] = [None] * len(inputs)
    opened = threading.Barrier(len(inputs))

    def analyse(i: int) -> None:
        with analysis_of(batcher):
            opened.wait()
            try:
                out[i] = batcher(inputs[i])
            except RuntimeError as err:
                out[i] = err

    threads = [threading.Thread(target=analyse, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_concurrent_analyses_share_one_forward_and_get_their_own_rows():
    model = RecordingModel()
    batcher = DynamicBatcher(model, max_wait_ms=LONG_WAIT_MS, max_batch=64)
    inputs = [torch.full((n, 1, 2, 2), float(i)) for i, n in enumerate([1, 2, 3, 1])]
    start = time.monotonic()
    outputs = run_analyses(batcher, inputs)
    assert time.monotonic() - start < LONG_WAIT_MS / 1000 / 2, "the batch ran as soon as every analysis had called"
    assert model.batch_sizes == [7] and batcher.forwards == 1 and batcher.calls == 4
    for i, (x, out) in enumerate(zip(inputs, outputs, strict=True)):
        assert torch.equal(out["prob"], torch.full((len(x),), 4.0 * i))
        assert torch.equal(out["logits"], -out["prob"])


def test_a_lone_analysis_does_not_wait_for_the_window():
    model = RecordingModel()
    batcher = DynamicBatcher(model, max_wait_ms=LONG_WAIT_MS)
    start = time.monotonic()
    with analysis_of(batcher):
        batcher(torch.ones(2, 1, 2, 2))
        batcher(torch.ones(1, 1, 2, 2))
    batcher(torch.ones(1, 1, 2, 2))
    assert time.monotonic() - start < LONG_WAIT_MS / 1000 / 2
    assert model.batch_sizes == [2, 1, 1]


def test_max_batch_splits_forwards_without_splitting_a_call():
    model = RecordingModel()
    batcher = DynamicBatcher(model, max_wait_ms=LONG_WAIT_MS, max_batch=5)
    outputs = run_analyses(batcher, [torch.ones(3, 1, 1, 1), torch.ones(3, 1, 1, 1), torch.ones(2, 1, 1, 1)])
    assert max(model.batch_sizes) <= 5 and len(model.batch_sizes) >= 2 and sum(model.batch_sizes) == 8
    assert [len(o["prob"]) for o in outputs] == [3, 3, 2]


def test_an_error_reaches_every_caller_of_the_batch():
    batcher = DynamicBatcher(RecordingModel(fail=True), max_wait_ms=LONG_WAIT_MS)
    outputs = run_analyses(batcher, [torch.ones(1, 1, 1, 1)] * 3)
    assert all(isinstance(o, RuntimeError) and "model exploded" in str(o) for o in outputs)


def test_the_batcher_looks_like_its_model_and_checks_settings():
    batcher = DynamicBatcher(RecordingModel())
    assert batcher.pretrained_cfg == "cfg"
    with pytest.raises(ValueError, match="max_batch"):
        DynamicBatcher(RecordingModel(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        DynamicBatcher(RecordingModel(), max_wait_ms=-1)


def test_detector_files_analysed_together_score_as_alone(pretrained_detector, tmp_path):
    from PIL import Image

    from tests.conftest import shared

    faces = sorted(shared("dfdc_faces", "fake").iterdir())[:2] + sorted(shared("dfdc_faces", "real").iterdir())[:2]
    paths = []
    for i, face in enumerate(faces):  # each face pasted into a bigger picture, so the face detector finds it
        canvas = Image.new("RGB", (640, 480), (90, 110, 120))
        canvas.paste(Image.open(face).convert("RGB").resize((200, 200)), (200 + 10 * i, 120))
        paths.append(tmp_path / f"photo{i}.jpg")
        canvas.save(paths[-1], quality=95)
    from fakescope.detect import Detector

    def face_only() -> Detector:
        return Detector(
            pretrained_detector.model, model_name=pretrained_detector.model_name, face_detector=pretrained_detector.face_detector
        )

    alone = [face_only().detect(p) for p in paths]
    batched = face_only().batch_calls(max_wait_ms=LONG_WAIT_MS)
    together = batched.detect_concurrently(paths)
    assert [r.status for r in together] == ["ok"] * 4
    np.testing.assert_allclose([r.score for r in together], [r.score for r in alone], atol=1e-4)
    assert batched.model.forwards < batched.model.calls == 4
