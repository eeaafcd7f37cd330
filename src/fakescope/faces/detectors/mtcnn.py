"""MTCNN (facenet-pytorch): three small cascaded networks, batched over images of the same size."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from fakescope.faces.detectors.base import ScaledImage, keep_faces, shrink, to_face
from fakescope.faces.types import Face

# Smallest face (in shrunk-image pixels) MTCNN's image pyramid starts from. 20 instead of
# 12 makes MTCNN much faster with the same share of frames with a face (see docs/RESULTS.md,
# face detectors); at max_side 640 faces from 28 px up are still found in a 1080p frame.
_MTCNN_MIN_NET_FACE = 20.0


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
        scaled = [shrink(image, self.max_side) for image in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, item in enumerate(scaled):
            groups.setdefault(item.image.shape, []).append(index)
        results: list[list[Face]] = [[] for _ in images]
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, faces in zip(chunk, self._detect_same_size([scaled[i] for i in chunk]), strict=True):
                    results[index] = faces
        return results

    def _detect_same_size(self, batch: list[ScaledImage]) -> list[list[Face]]:
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
        for item, image_boxes, image_points in zip(batch, boxes, points, strict=True):
            faces = [
                to_face(box[:4], box[4], pts, item)
                for box, pts in zip(
                    np.asarray(image_boxes, dtype=np.float64).reshape(-1, 5),
                    np.asarray(image_points, dtype=np.float64).reshape(-1, 5, 2),
                    strict=True,
                )
            ]
            out.append(keep_faces(faces, min_face_size=self.min_face_size, min_score=self.min_score))
        return out
