"""`Detector`: the one entry point the CLI, scans and the service call."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fakescope import __version__
from fakescope.detect.pipeline import PIPELINES, PipelineContext, StageTimer
from fakescope.detect.result import MediaType, Result
from fakescope.detect.verdict import Thresholds, agreed_thresholds
from fakescope.errors import FakescopeError, ModelError, UnsupportedMediaError
from fakescope.faces import FaceDetector, create_face_detector
from fakescope.media import probe
from fakescope.models import DEFAULT_MODEL, DeepfakeDetector, create_model, list_models, sha256_file
from fakescope.models.config import InputKind
from fakescope.models.registry import DEFAULT_IMAGE_MODEL

log = logging.getLogger(__name__)

AUTO = "auto"


class Detector:
    """Face swaps in images and videos, plus fully AI-generated images when an image model is loaded.

    `model` scores face crops (images and videos); the optional `image_model` scores the whole
    picture of an image (never video frames). An image's score fuses both (detect.fusion).
    Verdict bands: `thresholds` if given, else the bands the models' cards agree on
    (verdict.agreed_thresholds), else the defaults.
    """

    def __init__(
        self,
        model: DeepfakeDetector,
        *,
        model_name: str,
        image_model: DeepfakeDetector | None = None,
        image_model_name: str | None = None,
        face_detector: FaceDetector | None = None,
        num_frames: int = 32,
        thresholds: Thresholds | None = None,
    ) -> None:
        if num_frames < 1:
            raise ValueError("num_frames must be at least 1")
        if image_model is not None and not image_model_name:
            raise ValueError("image_model_name is required with an image_model")
        _check_input_kind(model, model_name, "face")
        self.model = model.eval()
        self.model_name = model_name
        self.image_model = image_model.eval() if image_model is not None else None
        self.image_model_name = image_model_name if image_model is not None else None
        if self.image_model is not None:
            _check_input_kind(self.image_model, str(image_model_name), "image")
        self.face_detector = face_detector or create_face_detector("mtcnn")
        self.num_frames = num_frames
        self.thresholds = thresholds
        self.device = str(next(model.parameters()).device)

    @classmethod
    def from_pretrained(
        cls,
        name: str = DEFAULT_MODEL,
        *,
        image_model: str | None = AUTO,
        device: str = "cpu",
        face_detector: str = "mtcnn",
        **kwargs: object,
    ) -> Detector:
        """Load registered models with their shipped, checksum-verified weights.

        `image_model`: "auto" adds DEFAULT_IMAGE_MODEL when its weights ship and skips it
        otherwise; None scores faces only; a name loads that model (ModelError if its weights
        are missing).
        """
        model = create_model(name, pretrained=True).to(device)
        image_name = resolve_image_model(image_model)
        extra = None if image_name is None else create_model(image_name, pretrained=True).to(device)
        return cls(
            model,
            model_name=name,
            image_model=extra,
            image_model_name=image_name,
            face_detector=create_face_detector(face_detector),
            **kwargs,
        )

    def model_versions(self) -> dict[str, str]:
        versions = {"fakescope": __version__, self.model_name: _short_sha(self.model)}
        if self.image_model is not None and self.image_model_name:
            versions[self.image_model_name] = _short_sha(self.image_model)
        versions["faces"] = self.face_detector.name
        return versions

    def thresholds_for(self, media_type: MediaType | None) -> Thresholds:
        """Verdict bands for a score of this media type: the models behind an image score are both detectors."""
        if self.thresholds is not None:
            return self.thresholds
        models = [self.model]
        if media_type == "image" and self.image_model is not None:
            models.append(self.image_model)
        return agreed_thresholds([m.pretrained_cfg.thresholds for m in models])

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
            ctx = PipelineContext(
                self.model, self.model_name, self.face_detector, self.num_frames, self.image_model, self.image_model_name or ""
            )
            result = pipeline(ctx, info, result, timer)
        except FakescopeError as err:
            result.status, result.reason = "error", str(err)
        if result.status == "ok" and result.score is not None:
            result.verdict = self.thresholds_for(result.media_type).verdict(result.score)
        result.timings = {k: round(v, 4) for k, v in timer.seconds.items()}
        result.processing_time = round(time.perf_counter() - start, 4)
        return result


def resolve_image_model(choice: str | None) -> str | None:
    """The image model `from_pretrained` loads: "auto" means DEFAULT_IMAGE_MODEL if its weights ship."""
    if choice != AUTO:
        return choice
    if list_models(DEFAULT_IMAGE_MODEL, pretrained=True):
        return DEFAULT_IMAGE_MODEL
    log.debug("%s weights not shipped yet: images are scored by the face model only", DEFAULT_IMAGE_MODEL)
    return None


def _check_input_kind(model: DeepfakeDetector, name: str, kind: InputKind) -> None:
    """A whole-picture model in the face slot (or the reverse) would score the wrong input silently."""
    roles = {"face": "a face model (looks at face crops)", "image": "an image model (looks at whole pictures)"}
    actual = model.pretrained_cfg.input_kind
    if actual != kind:
        raise ModelError(f"{name}: is {roles[actual]}, not {roles[kind].split(' (')[0]}; pass it as the {actual} model")


def _short_sha(model: DeepfakeDetector) -> str:
    return (model.pretrained_cfg.sha256 or "untrained")[:12]
