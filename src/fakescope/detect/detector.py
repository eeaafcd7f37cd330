"""`Detector`: the one entry point the CLI, scans and the service call."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fakescope.constants import DEFAULT_AUDIO_MODEL, DEFAULT_IMAGE_MODEL, __version__
from fakescope.detect.batching import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, DynamicBatcher, analysis_of
from fakescope.detect.cache import ResultCache
from fakescope.detect.failures import failed_result, failure_reason
from fakescope.detect.fusion import ModalityWeights, PictureFusion, VideoCalibration
from fakescope.detect.options import AUTO, DEFAULT_OPTIONS, DetectorOptions
from fakescope.detect.pipeline import PIPELINES, Analysis, PipelineContext
from fakescope.detect.result import Result
from fakescope.detect.scoring import model_device
from fakescope.detect.timing import StageTimer
from fakescope.detect.verdict import Thresholds, agreed_thresholds
from fakescope.errors import FakescopeError, ModelError
from fakescope.faces import FaceDetector, create_face_detector
from fakescope.media import probe
from fakescope.media.probe import check_file
from fakescope.models import ClassifierModel, list_models, sha256_file
from fakescope.models.config import InputKind
from fakescope.models.info import weights_version

log = logging.getLogger(__name__)


class Detector:
    """Face swaps in images and videos, fully AI-generated images when an image model is loaded,
    synthetic speech in audio files and in videos' sound when an audio model is loaded.

    `model` scores face crops (images and videos); the optional `image_model` scores the whole
    picture of an image (never video frames); the optional `audio_model` scores speech windows.
    An image's score fuses its detectors, a video's its faces and sound (`weights`; see
    detect.fusion). Verdict bands: `thresholds` if given, else the bands the cards of the
    models behind the score agree on (verdict.agreed_thresholds), else the defaults.
    With a `cache`, a file whose content was already scored by the same settings is answered
    from it (Result.cached) without being decoded again. Faces are looked for on every
    `detect_every`-th sampled frame of a video, the frames between filled in (faces.sparse).
    A file's crops go through the face model `batch_size` at a time (one forward for most videos).
    """

    def __init__(
        self,
        model: ClassifierModel,
        *,
        model_name: str,
        image_model: ClassifierModel | None = None,
        image_model_name: str | None = None,
        audio_model: ClassifierModel | None = None,
        audio_model_name: str | None = None,
        face_detector: FaceDetector | None = None,
        num_frames: int = DEFAULT_OPTIONS.frames,
        detect_every: int = DEFAULT_OPTIONS.face_every,
        batch_size: int = DEFAULT_OPTIONS.batch,
        thresholds: Thresholds | None = None,
        weights: ModalityWeights | None = None,
        cache: ResultCache | None = None,
    ) -> None:
        if num_frames < 1:
            raise ValueError("num_frames must be at least 1")
        if detect_every < 1:
            raise ValueError("detect_every must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if image_model is not None and not image_model_name:
            raise ValueError("image_model_name is required with an image_model")
        if audio_model is not None and not audio_model_name:
            raise ValueError("audio_model_name is required with an audio_model")
        _check_input_kind(model, model_name, "face")
        self.model = model.eval()
        self.model_name = model_name
        self.image_model = image_model.eval() if image_model is not None else None
        self.image_model_name = image_model_name if image_model is not None else None
        if self.image_model is not None:
            _check_input_kind(self.image_model, str(image_model_name), "image")
        self.audio_model = audio_model.eval() if audio_model is not None else None
        self.audio_model_name = audio_model_name if audio_model is not None else None
        if self.audio_model is not None:
            _check_input_kind(self.audio_model, str(audio_model_name), "audio")
        self.face_detector = face_detector or create_face_detector()
        self.num_frames = num_frames
        self.detect_every = detect_every
        self.batch_size = batch_size
        self.thresholds = thresholds
        self.weights = weights or ModalityWeights()
        self.device = str(model_device(model))
        self.cache = cache
        # A learned fusion of the face and picture scores, where one was fitted for this pair (detect.fusion).
        self.picture_fusion = None if self.image_model is None else PictureFusion.shipped(model_name, str(image_model_name))
        # Track and video scores on the video scale, where a calibration was fitted for this face model (detect.fusion).
        self.video_calibration = VideoCalibration.shipped(model_name)

    @classmethod
    def from_options(
        cls, options: DetectorOptions, *, weights: ModalityWeights | None = None, thresholds: Thresholds | None = None
    ) -> Detector:
        """Load the registered models `options` names, with their shipped, checksum-verified weights.

        `image_model` / `audio_model`: "auto" adds DEFAULT_IMAGE_MODEL / DEFAULT_AUDIO_MODEL
        when its weights ship and skips it otherwise; None leaves that detector out; a name
        loads that model (ModelError if its weights are missing). `cache_size` repeated files are
        answered from a ResultCache (0: no cache).

        `backend`: "onnx" runs the face model through its checked ONNX export (in `onnx_dir`,
        default the shipped ones; ModelError if there is none), "torch" through torch, "auto"
        (default) ONNX on CPU wherever an export ships and torch otherwise. The image and audio
        models follow the face model's backend where they have an export and use torch where
        not (audio models cannot be exported). `threads`: CPU threads for torch and ONNX Runtime.

        `weights`: fusion weights other than those of `options.audio_weight` (another `confident`);
        `thresholds`: verdict bands instead of those the models' cards agree on.
        """
        from fakescope.models.onnx import choose_backend, load_model  # onnxruntime loads with the first Detector only

        device, onnx_dir, threads = options.device, options.onnx_dir, options.threads
        if threads is not None:
            torch.set_num_threads(max(1, threads))
        face_backend = choose_backend(options.model, options.backend, device=device, onnx_dir=onnx_dir)
        # The image and audio models follow: torch with torch, else ONNX wherever they have an export.
        extra_backend = "torch" if face_backend == "torch" else AUTO

        def load(model_name: str, chosen: str) -> ClassifierModel:
            chosen = choose_backend(model_name, chosen, device=device, onnx_dir=onnx_dir)
            return load_model(model_name, backend=chosen, onnx_dir=onnx_dir, threads=threads, device=device)

        image_name = resolve_optional_model(options.image_model, DEFAULT_IMAGE_MODEL)
        audio_name = resolve_optional_model(options.audio_model, DEFAULT_AUDIO_MODEL)
        return cls(
            load(options.model, face_backend),
            model_name=options.model,
            image_model=None if image_name is None else load(image_name, extra_backend),
            image_model_name=image_name,
            audio_model=None if audio_name is None else load(audio_name, extra_backend),
            audio_model_name=audio_name,
            face_detector=create_face_detector(options.face_detector),
            num_frames=options.frames,
            detect_every=options.face_every,
            batch_size=options.batch,
            thresholds=thresholds,
            weights=weights or ModalityWeights(video=1.0 - options.audio_weight, audio=options.audio_weight),
            cache=ResultCache(options.cache_size) if options.cache_size > 0 else None,
        )

    @classmethod
    def from_pretrained(
        cls,
        name: str = DEFAULT_OPTIONS.model,
        *,
        image_model: str | None = AUTO,
        audio_model: str | None = AUTO,
        device: str = DEFAULT_OPTIONS.device,
        face_detector: str = DEFAULT_OPTIONS.face_detector,
        cache_size: int = DEFAULT_OPTIONS.cache_size,
        backend: str = AUTO,
        threads: int | None = None,
        onnx_dir: str | Path | None = None,
        num_frames: int = DEFAULT_OPTIONS.frames,
        detect_every: int = DEFAULT_OPTIONS.face_every,
        batch_size: int = DEFAULT_OPTIONS.batch,
        weights: ModalityWeights | None = None,
        thresholds: Thresholds | None = None,
    ) -> Detector:
        """`from_options` by keywords, the library's way in: `Detector.from_pretrained()` loads the
        default models. Settings are named as in the constructor; DetectorOptions says what each does."""
        options = DetectorOptions(
            model=name,
            frames=num_frames,
            face_detector=face_detector,
            image_model=image_model,
            audio_model=audio_model,
            backend=backend,
            threads=threads,
            batch=batch_size,
            face_every=detect_every,
            cache_size=cache_size,
            onnx_dir=None if onnx_dir is None else Path(onnx_dir),
            device=device,
        )
        return cls.from_options(options, weights=weights, thresholds=thresholds)

    def model_versions(self) -> dict[str, str]:
        versions = {"fakescope": __version__, self.model_name: _short_sha(self.model)}
        for name, extra in self._optional_models().items():
            versions[name] = _short_sha(extra)
        versions["faces"] = self.face_detector.name
        return versions

    @property
    def fingerprint(self) -> str:
        """Everything that shapes a Result besides the file: a cached Result is reused only when this matches."""
        settings = {
            "models": self.model_versions(),
            "frames": self.num_frames,
            "weights": asdict(self.weights),
            "detect_every": self.detect_every,
            "thresholds": None if self.thresholds is None else asdict(self.thresholds),
            "fusion": [None if f is None else asdict(f) for f in (self.picture_fusion, self.video_calibration)],
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def _optional_models(self) -> dict[str, ClassifierModel]:
        models = {self.image_model_name: self.image_model, self.audio_model_name: self.audio_model}
        return {name: m for name, m in models.items() if name and m is not None}

    def thresholds_for(self, result: Result) -> Thresholds:
        """Verdict bands for a Result's score: those the cards of every detector that scored it agree on."""
        if self.thresholds is not None:
            return self.thresholds
        fusion = self.picture_fusion
        if fusion is not None and fusion.thresholds and result.media_type == "image" and len(result.detectors) == 2:
            return Thresholds.from_card(fusion.thresholds)
        calibration = self.video_calibration
        faces_only = [d.name for d in result.detectors] == [self.model_name]
        if calibration is not None and calibration.thresholds and result.media_type == "video" and faces_only:
            return Thresholds.from_card(calibration.thresholds)
        models = {self.model_name: self.model, **self._optional_models()}
        behind = [models[d.name] for d in result.detectors if d.name in models] or [self.model]
        return agreed_thresholds([m.pretrained_cfg.thresholds for m in behind])

    def batch_calls(self, *, max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_batch: int = DEFAULT_MAX_BATCH) -> Detector:
        """Let files analysed at once on several threads (`detect_concurrently`) share model forwards
        (detect.batching): worth it for many small files, such as a service's face photos."""
        if not isinstance(self.model, DynamicBatcher):
            self.model = DynamicBatcher(self.model, max_wait_ms=max_wait_ms, max_batch=max_batch)
        if self.image_model is not None and not isinstance(self.image_model, DynamicBatcher):
            self.image_model = DynamicBatcher(self.image_model, max_wait_ms=max_wait_ms, max_batch=max_batch)
        return self

    def detect_concurrently(self, paths: Sequence[str | Path]) -> list[Result]:
        """`detect` on each file, one thread each, Results in input order (see `batch_calls`)."""
        if len(paths) <= 1:
            return [self.detect(p) for p in paths]
        with ThreadPoolExecutor(len(paths), thread_name_prefix="detect") as pool:
            return list(pool.map(self.detect, paths))

    def detect(self, path: str | Path) -> Result:
        """Score one file. Any failure gives status "error" with a one-line reason, never an exception
        (detect.failures: the one never-raise net, which scans and the service rely on)."""
        return self.analyse(path).result

    def analyse(self, path: str | Path) -> Analysis:
        """`detect`, plus the decoded pictures the Result's face boxes refer to (none when it came
        from the cache or failed), so face thumbnails need not decode the file again."""
        try:
            with analysis_of(self.model, self.image_model):
                return self._analyse(path)
        except Exception as err:  # noqa: BLE001 - the never-raise net: a bug in one file's analysis becomes its Result
            return Analysis(failed_result(path, err))

    def _analyse(self, path: str | Path) -> Analysis:
        start = time.perf_counter()
        path = Path(path)
        digest = self._digest(path)
        if digest is not None and self.cache is not None and (hit := self.cache.get(digest, self.fingerprint)):
            hit.file, hit.cached = str(path), True
            hit.processing_time = round(time.perf_counter() - start, 4)
            return Analysis(hit)
        result = Result(file=str(path), device=self.device, model_versions=self.model_versions())
        pictures: dict[int, np.ndarray] = {}
        picture_scale = 1.0
        timer = StageTimer()
        try:
            with timer.stage("decode"):
                info = probe(path)
                result.media_type = info.kind
                result.sha256 = digest or sha256_file(path)
            ctx = PipelineContext(
                self.model,
                self.model_name,
                self.face_detector,
                self.num_frames,
                self.image_model,
                self.image_model_name or "",
                self.audio_model,
                self.audio_model_name or "",
                self.weights,
                self.detect_every,
                self.batch_size,
                self.picture_fusion,
                self.video_calibration,
            )
            analysis = PIPELINES[info.kind](ctx, info, result, timer)
            result, pictures, picture_scale = analysis.result, analysis.pictures, analysis.picture_scale
        except FakescopeError as err:  # bad input is an answer, with what was learnt before it showed
            result.status, result.reason = "error", failure_reason(err)
        if result.status == "ok" and result.score is not None:
            result.verdict = self.thresholds_for(result).verdict(result.score)
        result.timings = {k: round(v, 4) for k, v in timer.seconds.items()}
        result.processing_time = round(time.perf_counter() - start, 4)
        if self.cache is not None and result.sha256:
            self.cache.put(result.sha256, self.fingerprint, result)
        return Analysis(result, pictures, picture_scale)

    def _digest(self, path: Path) -> str | None:
        """The content hash the cache is keyed by, taken only once `check_file` (a stat and the first
        bytes) found a regular file within the size limit: a FIFO, a device or a huge file is never
        read to its end for it. None leaves such a file, or a missing or unreadable one, to `probe`'s errors."""
        if self.cache is None:
            return None
        try:
            check_file(path)
            return self.cache.digest(path)
        except (OSError, FakescopeError):
            return None


def resolve_optional_model(choice: str | None, default: str) -> str | None:
    """The extra model `from_pretrained` loads: "auto" means `default` if its weights ship."""
    if choice != AUTO:
        return choice
    if list_models(default, pretrained=True):
        return default
    log.debug("%s weights not shipped yet: it is left out", default)
    return None


def _check_input_kind(model: ClassifierModel, name: str, kind: InputKind) -> None:
    """A whole-picture model in the face slot (or the reverse) would score the wrong input silently."""
    roles = {
        "face": "a face model (looks at face crops)",
        "image": "an image model (looks at whole pictures)",
        "audio": "an audio model (listens to speech)",
        "face_sequence": "a temporal face model (looks at face tracks over time)",
    }
    actual = model.pretrained_cfg.input_kind
    if actual == "face_sequence" and kind == "face":  # face tracks over time: a face model for videos
        return
    if actual != kind:
        raise ModelError(f"{name}: is {roles[actual]}, not {roles[kind].split(' (')[0]}; pass it as the {actual} model")


def _short_sha(model: ClassifierModel) -> str:
    return weights_version(model.pretrained_cfg)
