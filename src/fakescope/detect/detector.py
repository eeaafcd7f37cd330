"""`Detector`: the one entry point the CLI, scans and the service call."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fakescope import __version__
from fakescope.detect.pipeline import PIPELINES, PipelineContext, StageTimer
from fakescope.detect.result import Result
from fakescope.detect.verdict import Thresholds
from fakescope.errors import FakescopeError, UnsupportedMediaError
from fakescope.faces import FaceDetector, create_face_detector
from fakescope.media import probe
from fakescope.models import DEFAULT_MODEL, DeepfakeDetector, create_model, sha256_file

log = logging.getLogger(__name__)


class Detector:
    """Face-swap detector for images and videos: `Detector.from_pretrained().detect("clip.mp4")`."""

    def __init__(
        self,
        model: DeepfakeDetector,
        *,
        model_name: str,
        face_detector: FaceDetector | None = None,
        num_frames: int = 32,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        if num_frames < 1:
            raise ValueError("num_frames must be at least 1")
        self.model = model.eval()
        self.model_name = model_name
        self.face_detector = face_detector or create_face_detector("mtcnn")
        self.num_frames = num_frames
        self.thresholds = thresholds
        self.device = str(next(model.parameters()).device)

    @classmethod
    def from_pretrained(
        cls, name: str = DEFAULT_MODEL, *, device: str = "cpu", face_detector: str = "mtcnn", **kwargs: object
    ) -> Detector:
        """Load a registered model with its shipped, checksum-verified weights."""
        model = create_model(name, pretrained=True).to(device)
        return cls(model, model_name=name, face_detector=create_face_detector(face_detector), **kwargs)

    def model_versions(self) -> dict[str, str]:
        sha = self.model.pretrained_cfg.sha256 or "untrained"
        return {"fakescope": __version__, self.model_name: sha[:12], "faces": self.face_detector.name}

    def detect(self, path: str | Path) -> Result:
        """Score one file. Bad input gives status "error" with a one-line reason, never an exception."""
        start = time.perf_counter()
        path = Path(path)
        result = Result(file=str(path), device=self.device, model_versions=self.model_versions())
        timer = StageTimer()
        try:
            with timer.stage("decode"):
                info = probe(path)
                result.media_type = info.kind
                result.sha256 = sha256_file(path)
            pipeline = PIPELINES.get(info.kind)
            if pipeline is None:
                raise UnsupportedMediaError(f"{path.name}: {info.kind} files are not supported yet (images and videos are)")
            ctx = PipelineContext(self.model, self.model_name, self.face_detector, self.num_frames)
            result = pipeline(ctx, info, result, timer)
        except FakescopeError as err:
            result.status, result.reason = "error", str(err)
        if result.status == "ok" and result.score is not None:
            result.verdict = self.thresholds.verdict(result.score)
        result.timings = {k: round(v, 4) for k, v in timer.seconds.items()}
        result.processing_time = round(time.perf_counter() - start, 4)
        return result

