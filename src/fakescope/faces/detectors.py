"""Face detectors behind one contract: images in, faces in each image's own pixels out.

Every detector first shrinks an image so its long side is at most `max_side`: detection
cost grows with the pixel count while faces worth classifying stay findable at 640 px
(MTCNN on 32 frames: 5.8 s at 720p, 1.6 s at 640x360 on a 2-core CPU). Boxes and landmarks
are mapped back to the original pixels, so callers crop from the full-resolution frame.
yuface (libfacedetection) and MTCNN boxes agree (same centre and size within 0.5% of the
side on the labelled clips), so the models' crop margins fit either.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from fakescope.errors import ModelError
from fakescope.faces.types import Face

log = logging.getLogger(__name__)

FACE_DETECTORS = ("yuface", "mtcnn", "haar")
# On the 34 labelled clips, 32 frames each, in one run of benchmarks/bench_faces.py: yuface
# found a face in 100% of the frames (MTCNN 99.9%, Haar 94.9%) in 0.81 s per 32 frames (MTCNN
# 1.63 s, Haar 2.27 s), its boxes matching MTCNN's by a median IoU of 0.91. The shipped face
# model's video AUC on them was 0.692 with yuface and 0.708 with MTCNN: 4 of 253 real/fake pairs,
# one of them a fake clip that MTCNN scored high through a face in a photo on the wall.
DEFAULT_FACE_DETECTOR = "yuface"

# Smallest face (in shrunk-image pixels) MTCNN's image pyramid starts from. 20 instead of
# 12 cut MTCNN time per 32 frames by 30% at 720p and 55% at 1080p with the same share of
# frames with a face on the 34 shared clips; at max_side 640 faces from 28 px up are still
# found in a 1080p frame.
_MTCNN_MIN_NET_FACE = 20.0

# The yuface wheel warns that detection may degrade on images larger than this.
_YUFACE_MAX_SIDE = 960


class FaceDetector(Protocol):
    """Finds faces: one list per image, largest face first, boxes in that image's pixels."""

    @property
    def name(self) -> str: ...

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


@dataclass(frozen=True)
class _Scaled:
    """An image shrunk for detection and the factors that map its pixels back."""

    image: np.ndarray
    scale_x: float
    scale_y: float
    width: int
    height: int


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def _shrink(image: np.ndarray, max_side: int) -> _Scaled:
    _check_image(image)
    height, width = image.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1.0:
        return _Scaled(image, 1.0, 1.0, width, height)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return _Scaled(small, width / new_w, height / new_h, width, height)


def _to_face(
    box: Sequence[float],
    score: float,
    points: np.ndarray | None,
    scaled: _Scaled,
) -> Face:
    """Map a detection on the shrunk image back to the original and clip it to the image."""
    sx, sy, w, h = scaled.scale_x, scaled.scale_y, scaled.width, scaled.height
    x1, y1, x2, y2 = (float(v) for v in box)
    mapped = (
        min(max(x1 * sx, 0.0), w),
        min(max(y1 * sy, 0.0), h),
        min(max(x2 * sx, 0.0), w),
        min(max(y2 * sy, 0.0), h),
    )
    landmarks = None
    if points is not None:
        landmarks = tuple(
            (min(max(float(px) * sx, 0.0), w), min(max(float(py) * sy, 0.0), h))
            for px, py in points
        )
    return Face(box=mapped, score=float(score), landmarks=landmarks)


def _keep(faces: list[Face], *, min_face_size: float, min_score: float) -> list[Face]:
    """Drop weak and small faces (long side below `min_face_size`), largest first."""
    kept = [
        f
        for f in faces
        if f.score >= min_score and max(f.width, f.height) >= min_face_size
    ]
    return sorted(kept, key=lambda f: f.area, reverse=True)


class MTCNNFaceDetector:
    """facenet-pytorch MTCNN, batched over images of the same size.

    `min_face_size` and the boxes are in the original images' pixels (the shrunk image is
    searched for faces of at least 20 px, so `max_side` also bounds the smallest face).
    `min_score` is applied after the three network stages (`thresholds`); 0.9 removes most
    textured-background hits. The networks are built on first use (or by `load()`), so
    constructing is free. Torch's thread settings are left to the caller.
    """

    name = "mtcnn"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 32,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        batch_size: int = 16,
        factor: float = 0.709,
        device: str = "cpu",
    ) -> None:
        if max_side < 32:
            raise ValueError(f"max_side must be >= 32, got {max_side}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.min_score = min_score
        self.batch_size = batch_size
        self.factor = factor
        self.device = device
        self._nets: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build the networks now; raises ImportError when facenet-pytorch is missing."""
        with self._lock:
            if self._nets is None:
                from facenet_pytorch import MTCNN

                self._nets = MTCNN(device=self.device).eval()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.load()
        scaled = [_shrink(image, self.max_side) for image in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, item in enumerate(scaled):
            groups.setdefault(item.image.shape, []).append(index)
        results: list[list[Face]] = [[] for _ in images]
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, faces in zip(chunk, self._detect_same_size([scaled[i] for i in chunk])):
                    results[index] = faces
        return results

    def _detect_same_size(self, batch: list[_Scaled]) -> list[list[Face]]:
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        first = batch[0]
        net_min = max(_MTCNN_MIN_NET_FACE, self.min_face_size / max(first.scale_x, first.scale_y))
        if min(first.image.shape[:2]) < net_min:
            return [[] for _ in batch]
        pixels = torch.from_numpy(np.stack([item.image for item in batch])).float()
        nets = self._nets
        with torch.no_grad():
            boxes, points = detect_face(
                pixels,
                net_min,
                nets.pnet,
                nets.rnet,
                nets.onet,
                list(self.thresholds),
                self.factor,
                nets.device,
            )
        out = []
        for item, image_boxes, image_points in zip(batch, boxes, points):
            faces = [
                _to_face(box[:4], box[4], pts, item)
                for box, pts in zip(
                    np.asarray(image_boxes, dtype=np.float64).reshape(-1, 5),
                    np.asarray(image_points, dtype=np.float64).reshape(-1, 5, 2),
                )
            ]
            out.append(_keep(faces, min_face_size=self.min_face_size, min_score=self.min_score))
        return out


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade: no torch, no weights to ship, a last resort.

    It misses profiles and fires on textures more than MTCNN. `score` is the logistic of
    the cascade's last-stage sum (`levelWeights`); `min_score=0.9` drops half its background
    hits and 2% of its real faces, which took the shared clips with a single track after
    filtering from 24 to 31 of 34.
    """

    name = "haar"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 32,
        min_score: float = 0.9,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        if max_side < 32:
            raise ValueError(f"max_side must be >= 32, got {max_side}")
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.cascade = cascade
        self._classifier: cv2.CascadeClassifier | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the cascade file now; raises OSError when OpenCV ships no such cascade."""
        with self._lock:
            if self._classifier is None:
                path = cv2.data.haarcascades + self.cascade
                classifier = cv2.CascadeClassifier(path)
                if classifier.empty():
                    raise OSError(f"cannot load Haar cascade {path}")
                self._classifier = classifier

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.load()
        return [self._detect_one(_shrink(image, self.max_side)) for image in images]

    def _detect_one(self, scaled: _Scaled) -> list[Face]:
        assert self._classifier is not None
        net_min = max(1, math.floor(self.min_face_size / max(scaled.scale_x, scaled.scale_y)))
        grey = cv2.equalizeHist(cv2.cvtColor(scaled.image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self._classifier.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(net_min, net_min),
            outputRejectLevels=True,
        )
        faces = [
            _to_face((x, y, x + w, y + h), 1.0 / (1.0 + math.exp(-float(weight))), None, scaled)
            for (x, y, w, h), weight in zip(rects, np.ravel(weights))
        ]
        return _keep(faces, min_face_size=self.min_face_size, min_score=self.min_score)


class YuFaceDetector:
    """libfacedetection (the `yuface` wheel: a small CNN with its weights compiled in, no torch).

    It reads BGR, so the shrunk image is converted (cheap at 640 px). Scores are the
    library's 0-100 confidences over 100. Each image is one call; the library spreads a
    call over OpenMP threads: `threads` per call (None: the OpenMP default, `OMP_NUM_THREADS`
    or one per core). One is the default: on an idle 2-core machine two were no faster (0.80 s
    against 0.81 s per 32 frames), and with the cores busy elsewhere (load 5-8) OpenMP threads
    spinning while they wait made two take 7-18 s where one took 2.0-2.7 s.
    `min_score=0.6`: on the labelled clips faces scored 0.72-0.97, other hits 0.3-0.54.
    `min_face_size` is in the original pixels; faces below about 10 px in the shrunk image
    are not found, so `max_side` bounds the smallest face as for MTCNN.
    """

    name = "yuface"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 32,
        min_score: float = 0.6,
        threads: int | None = 1,
    ) -> None:
        if not 32 <= max_side <= _YUFACE_MAX_SIDE:
            raise ValueError(f"max_side must be in [32, {_YUFACE_MAX_SIDE}], got {max_side}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.threads = threads
        self._detect: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._runtimes: list[Any] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import the library now; raises ImportError when the `yuface` wheel is missing."""
        with self._lock:
            if self._detect is None:
                import torch  # noqa: F401 - first, so the OpenMP runtime yuface's calls bind to is loaded and listed
                import yuface

                self._runtimes = openmp_runtimes(yuface)
                self._detect = yuface.detect

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.load()
        if self.threads is None:
            return [self._detect_one(_shrink(image, self.max_side)) for image in images]
        with openmp_threads(self.threads, self._runtimes):
            return [self._detect_one(_shrink(image, self.max_side)) for image in images]

    def _detect_one(self, scaled: _Scaled) -> list[Face]:
        assert self._detect is not None
        bgr = cv2.cvtColor(scaled.image, cv2.COLOR_RGB2BGR)
        confs, boxes, points = self._detect(bgr, conf=self.min_score)
        faces = [
            _to_face((x, y, x + w, y + h), float(conf) / 100.0, pts.reshape(5, 2), scaled)
            for conf, (x, y, w, h), pts in zip(confs.tolist(), boxes.tolist(), np.asarray(points, dtype=np.float64))
        ]
        return _keep(faces, min_face_size=self.min_face_size, min_score=self.min_score)


@contextmanager
def openmp_threads(threads: int, runtimes: Sequence[Any]) -> Iterator[None]:
    """`threads` OpenMP threads for this thread's parallel regions in each of `runtimes` (`openmp_runtimes`), restored after.

    The wheel bundles its own libgomp, but when torch was imported first its libgomp (loaded
    globally) is the one the wheel's OpenMP calls bind to. Setting only the bundled runtime
    then changes nothing: measured, yuface ran 16 frames in 4.3 s instead of 0.8 s with the
    other core busy, as two threads spun waiting for each other. The setting is per calling
    thread, so torch's own thread count is given back afterwards.
    """
    before = [runtime.omp_get_max_threads() for runtime in runtimes]
    for runtime in runtimes:
        runtime.omp_set_num_threads(threads)
    try:
        yield
    finally:
        for runtime, n in zip(runtimes, before, strict=True):
            runtime.omp_set_num_threads(n)


def openmp_runtimes(module: Any) -> list[Any]:
    """libgomp copies mapped into this process (Linux), and the one bundled with `module`'s wheel.

    Read once per detector (reading the memory map took 4.7 ms, 5% of a photo's analysis)."""
    import ctypes

    package = Path(module.__file__).parent
    paths = {str(p) for p in package.parent.glob(f"{package.name}.libs/libgomp*.so*")}
    try:
        with open("/proc/self/maps") as maps:
            paths |= {fields[5] for fields in map(str.split, maps) if len(fields) == 6 and "libgomp" in Path(fields[5]).name}
    except OSError:
        pass
    runtimes = []
    for path in sorted(paths):
        try:
            runtime = ctypes.CDLL(path)
            runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
            runtime.omp_get_max_threads.restype = ctypes.c_int
        except (OSError, AttributeError):
            continue
        runtimes.append(runtime)
    return runtimes


DetectorSource = FaceDetector | Callable[[], FaceDetector]


def _build(source: DetectorSource) -> FaceDetector:
    is_factory = isinstance(source, type) or not hasattr(source, "detect")
    detector: FaceDetector = source() if is_factory else source  # type: ignore[operator,assignment]
    load = getattr(detector, "load", None)
    if callable(load):
        load()
    return detector


class FallbackFaceDetector:
    """Use `primary`; if it cannot be built (package or weights missing) use `fallback`.

    Either may be a detector or a zero-argument factory. The choice is made once, on first
    use, with one warning; errors raised while detecting are not hidden.
    """

    def __init__(self, primary: DetectorSource, fallback: DetectorSource) -> None:
        self._primary = primary
        self._fallback = fallback
        self._active: FaceDetector | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> FaceDetector:
        """The detector in use (builds it on first access)."""
        return self._resolve()

    def _resolve(self) -> FaceDetector:
        with self._lock:
            if self._active is None:
                try:
                    self._active = _build(self._primary)
                except (ImportError, OSError, RuntimeError) as err:
                    fallback = _build(self._fallback)
                    log.warning(
                        "primary face detector unavailable (%s: %s); using %r instead",
                        type(err).__name__,
                        err,
                        fallback.name,
                    )
                    self._active = fallback
            return self._active

    @property
    def name(self) -> str:
        return self.active.name

    def load(self) -> None:
        self._resolve()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self.active.detect(images)


_SHARED = ("max_side", "min_face_size")


def create_face_detector(name: str = DEFAULT_FACE_DETECTOR, **kwargs: Any) -> FaceDetector:
    """Detector by name: "yuface" (the default), "mtcnn" or "haar".

    Each falls back to the next when its package is missing: yuface to MTCNN, MTCNN to Haar;
    `max_side` and `min_face_size` also configure the fallbacks (scores are not comparable
    across detectors, so `min_score` and the rest do not).
    """
    shared = {k: v for k, v in kwargs.items() if k in _SHARED}
    if name == "yuface":
        return FallbackFaceDetector(YuFaceDetector(**kwargs), create_face_detector("mtcnn", **shared))
    if name == "mtcnn":
        return FallbackFaceDetector(MTCNNFaceDetector(**kwargs), HaarFaceDetector(**shared))
    if name == "haar":
        return HaarFaceDetector(**kwargs)
    raise ModelError(f"unknown face detector {name!r} (choose one of: {', '.join(FACE_DETECTORS)})")
